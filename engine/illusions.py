"""Optical illusions from a diffusion model's noise estimates (CS180 Part A1.8-A1.9).

Visual anagrams (Geng et al. 2024): one image that shows prompt 1 upright and prompt 2 under a
view (a vertical flip, or a 90 degree rotation):
    eps = (eps_1(x_t) + view^-1(eps_2(view(x_t)))) / 2
Hybrid images (Oliva et al. 2006; factorized diffusion, Geng et al. 2024): prompt 1 from far,
prompt 2 up close:
    eps = lowpass(eps_1) + highpass(eps_2),  lowpass = Gaussian blur (kernel 33, sigma 2).
Both wrap a (possibly CFG-guided) model and are themselves models with the usual signature
``(x_t, t, cond) -> out``, so the ordinary iterative loop samples them. A 2C-channel output
(DeepFloyd's [eps, variance]) keeps the first branch's variance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .denoise import gaussian_blur, split_output
from .guidance import expand_batch


@dataclass(frozen=True)
class View:
    """An invertible image transform applied on the last two (H, W) dims."""

    name: str

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "identity":
            return x
        if self.name == "flip":
            return torch.flip(x, dims=[-2])
        if self.name == "rot90":
            return torch.rot90(x, 1, dims=[-2, -1])
        raise ValueError(f"unknown view {self.name!r}")

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "rot90":
            return torch.rot90(x, -1, dims=[-2, -1])
        return self.apply(x)  # identity and flip are their own inverses


VIEWS = {name: View(name) for name in ("identity", "flip", "rot90")}


def get_view(name: str) -> View:
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}; choose from {sorted(VIEWS)}")
    return VIEWS[name]


class AnagramModel:
    """eps = (eps_1(x) + view^-1(eps_2(view(x)))) / 2, both branches in one batched call."""

    def __init__(self, model: Callable, cond_1, cond_2, view: View | str = "flip"):
        self.model, self.cond_1, self.cond_2 = model, cond_1, cond_2
        self.view = get_view(view) if isinstance(view, str) else view

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond=None) -> torch.Tensor:
        b, c = x_t.shape[0], x_t.shape[1]
        x_in = torch.cat([x_t, self.view.apply(x_t)])
        conds = torch.cat([expand_batch(self.cond_1, b), expand_batch(self.cond_2, b)])
        out = self.model(x_in, torch.cat([t, t]), conds).float()
        eps_1, var_1 = split_output(out[:b], c)
        eps_2, _ = split_output(out[b:], c)
        eps = (eps_1 + self.view.invert(eps_2)) / 2
        return eps if var_1 is None else torch.cat([eps, var_1], dim=1)


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
