"""Optical illusions from a diffusion model's noise estimates (CS180 Part A1.8-A1.9).

Visual anagrams (Geng et al. 2024): one image that reads as condition c_i under view f_i, for
N = 2-4 views (the first usually the identity):
    eps = mean_i f_i^-1(eps_i(f_i(x_t)))
Every view is an orthogonal pixel transform (``engine.views``), so the average is still a noise
estimate. Hybrid images (Oliva et al. 2006; factorized diffusion, Geng et al. 2024): prompt 1
from far, prompt 2 up close:
    eps = lowpass(eps_1) + highpass(eps_2),  lowpass = Gaussian blur (kernel 33, sigma 2).
Both wrap a (possibly CFG-guided) model and are themselves models with the usual signature
``(x_t, t, cond) -> out``, so the ordinary iterative loop samples them. A 2C-channel output
(DeepFloyd's [eps, variance]) averages the variances through the views' permutations
(anagram) or keeps the far branch's (hybrid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .denoise import gaussian_blur, split_output
from .guidance import expand_batch
from .views import VIEWS, View, get_view, transition_frames

__all__ = [
    "VIEWS",
    "AnagramModel",
    "HybridModel",
    "View",
    "fft_magnitude",
    "get_view",
    "transition_frames",
    "viewing_distance",
]
MAX_VIEWS = 4


class AnagramModel:
    """eps = mean_i view_i^-1(eps(view_i(x), c_i)), all N branches in one batched call."""

    def __init__(self, model: Callable, conds: Sequence, views: Sequence[View | str]):
        if len(conds) != len(views) or not 2 <= len(views) <= MAX_VIEWS:
            raise ValueError(
                f"an anagram needs 2-{MAX_VIEWS} views and one condition per view, "
                f"got {len(views)} views and {len(conds)} conditions"
            )
        self.model, self.conds = model, list(conds)
        self.views = [get_view(v) if isinstance(v, str) else v for v in views]

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        b, c, n = x_t.shape[0], x_t.shape[1], len(self.views)
        x_in = torch.cat([v.apply(x_t) for v in self.views])
        conds = torch.cat([expand_batch(ci, b) for ci in self.conds])
        out = self.model(x_in, t.repeat(n), conds).float()
        eps, var = 0, 0
        for i, v in enumerate(self.views):
            eps_i, var_i = split_output(out[i * b : (i + 1) * b], c)
            eps = eps + v.invert(eps_i) / n
            var = None if var_i is None else var + v.unpermute(var_i) / n
        return eps if var is None else torch.cat([eps, var], dim=1)


class HybridModel:
    """eps = lowpass(eps_1) + highpass(eps_2): prompt 1 seen from far, prompt 2 up close."""

    def __init__(self, model: Callable, cond_far, cond_near, kernel_size: int = 33, sigma: float = 2.0):
        if not sigma > 0:
            raise ValueError(f"hybrid sigma must be > 0, got {sigma}")
        self.model, self.cond_far, self.cond_near = model, cond_far, cond_near
        self.kernel_size, self.sigma = kernel_size, sigma

    def lowpass(self, x: torch.Tensor) -> torch.Tensor:
        k = min(self.kernel_size, 2 * ((min(x.shape[-2:]) - 1) // 2) + 1)
        return gaussian_blur(x, k, self.sigma)

    def bands(self, eps_far: torch.Tensor, eps_near: torch.Tensor):
        """(low band of eps_far, high band of eps_near): the two halves of the hybrid noise."""
        return self.lowpass(eps_far), eps_near - self.lowpass(eps_near)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        b, c = x_t.shape[0], x_t.shape[1]
        conds = torch.cat([expand_batch(self.cond_far, b), expand_batch(self.cond_near, b)])
        out = self.model(torch.cat([x_t, x_t]), torch.cat([t, t]), conds).float()
        eps_1, var_1 = split_output(out[:b], c)
        eps_2, _ = split_output(out[b:], c)
        low, high = self.bands(eps_1, eps_2)
        eps = low + high
        return eps if var_1 is None else torch.cat([eps, var_1], dim=1)


def fft_magnitude(x: torch.Tensor) -> torch.Tensor:
    """log(1 + |FFT|), centred, averaged over channels: (..., H, W) -> (H, W) for display."""
    f = torch.fft.fftshift(torch.fft.fft2(x.float()), dim=(-2, -1))
    mag = torch.log1p(f.abs())
    while mag.ndim > 2:
        mag = mag.mean(0)
    return mag


def viewing_distance(x: torch.Tensor, distance: float) -> torch.Tensor:
    """Simulate looking from ``distance`` (1 = close): blur then downsample then upsample."""
    if distance <= 1:
        return x
    size = x.shape[-1]
    small = max(4, int(round(size / distance)))
    blurred = gaussian_blur(x, 2 * int(distance) + 1, distance / 2)
    down = torch.nn.functional.interpolate(blurred, size=(small, small), mode="area")
    return torch.nn.functional.interpolate(down, size=(size, size), mode="nearest")
