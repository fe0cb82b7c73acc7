"""Forward processes: how clean data becomes noisy.

- DDPM (Part A, Eq. A.2): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; x_0 clean, t = 0..999.
- Part B1 noising: z = x + sigma * eps.
- Flow matching (Part B2, Lipman et al.): x_t = (1 - t) x_0 + t x_1 with x_0 = noise and
  x_1 = data, t running 0 -> 1. Note the conventions are opposite: DDPM's "x_0" is data,
  flow matching's "x_0" is noise.

The training losses of the two noising processes sit beside them: ``denoiser_loss`` (B1.2)
and ``eps_loss`` (DDPM epsilon-prediction); the flow-matching loss is in ``engine.flow``.

Randomness is always an argument: pass ``noise``, or a ``generator`` to draw it from.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .schedule import Schedule, append_dims


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def forward(
    x_0: torch.Tensor,
    t,
    schedule: Schedule,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """q(x_t | x_0) sample (Eq. A.2). x_0 (B, C, H, W); t an int or (B,) ints."""
    noise = _noise_for(x_0, noise, generator)
    signal, sigma = noise_coefficients(t, schedule, x_0)
    return signal * x_0 + sigma * noise


def check_batch_t(t: torch.Tensor, batch: int) -> None:
    """A scalar t, or one t per image: (B,) timesteps must not silently broadcast to a new batch."""
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, batch)):
        raise ValueError(f"expected one timestep or {batch} timesteps (B,), got shape {tuple(t.shape)}")


def noise_coefficients(t, schedule: Schedule, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sqrt(abar_t), sqrt(1 - abar_t)) broadcast against ``like``, computed in float64 so that
    1 - abar_t near t = 0 (abar ~ 0.99996) keeps its precision, then cast to ``like``'s dtype."""
    t = schedule.check_t(t)
    check_batch_t(t, like.shape[0])
    abar = schedule.alphas_cumprod[t.cpu()]
    return tuple(
        append_dims(v, like.ndim).to(device=like.device, dtype=like.dtype)
        for v in (abar.sqrt(), (1 - abar).sqrt())
    )


def add_noise_sigma(
    x: torch.Tensor,
    sigma: float,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """z = x + sigma * eps (Part B1.2)."""
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    return x + sigma * _noise_for(x, noise, generator)


def _noise_for(x: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None):
    """The given noise (checked against ``x``'s shape), or fresh N(0, I) from ``generator``."""
    if noise is None:
        return randn_like(x, generator)
    if noise.shape != x.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} != image shape {tuple(x.shape)}")
    return noise


def flow_path(x_0: torch.Tensor, x_1: torch.Tensor, t) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t x_1 (x_0 noise, x_1 data); t a float or (B,) in [0, 1]."""
    if x_0.shape != x_1.shape:
        raise ValueError(f"noise shape {tuple(x_0.shape)} != data shape {tuple(x_1.shape)}")
    t = torch.as_tensor(t, dtype=x_1.dtype, device=x_1.device)
    if t.numel() and not bool(((t >= 0) & (t <= 1)).all()):  # also rejects NaN
        raise ValueError(f"flow-matching t must be in [0, 1], got {t.tolist()}")
    check_batch_t(t, x_1.shape[0])
    t = append_dims(t, x_1.ndim)
    return (1 - t) * x_0 + t * x_1


def denoiser_loss(denoiser, x: torch.Tensor, noise: torch.Tensor, sigma: float,
                  pure_noise: bool = False) -> torch.Tensor:
    """|| D(z) - x ||^2 with z = x + sigma eps (Part B1.2), or z = eps (B1.2.3, pure noise)."""
    z = noise if pure_noise else add_noise_sigma(x, sigma, noise=noise)
    return F.mse_loss(denoiser(z).float(), x.float())


def eps_loss(model, x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, schedule: Schedule,
             cond=None) -> torch.Tensor:
    """|| eps_theta(x_t, t, c) - eps ||^2 with x_t from Eq. A.2 (Ho et al. 2020, Algorithm 1).
    ``model(x_t, t, cond)`` takes the integer timesteps t (B,); pixels in [-1, 1]."""
    x_t = forward(x_0, t, schedule, noise=noise)
    return F.mse_loss(model(x_t, t, cond).float(), noise)
