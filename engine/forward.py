"""Forward processes: how clean data becomes noisy.

- DDPM (Part A, Eq. A.2): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; x_0 clean, t = 0..999.
- Part B1 noising: z = x + sigma * eps.
- Flow matching (Part B2, Lipman et al.): x_t = (1 - t) x_0 + t x_1 with x_0 = noise and
  x_1 = data, t running 0 -> 1. Note the conventions are opposite: DDPM's "x_0" is data,
  flow matching's "x_0" is noise.

Randomness is always an argument: pass ``noise``, or a ``generator`` to draw it from.
"""

from __future__ import annotations

import math

import torch

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
    if noise is None:
        noise = randn_like(x_0, generator)
    elif noise.shape != x_0.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} != image shape {tuple(x_0.shape)}")
    abar = schedule.abar(t, x_0)
    return abar.sqrt() * x_0 + (1 - abar).sqrt() * noise


def add_noise_sigma(
    x: torch.Tensor,
    sigma: float,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """z = x + sigma * eps (Part B1.2)."""
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    if noise is None:
        noise = randn_like(x, generator)
    return x + sigma * noise


def flow_path(x_0: torch.Tensor, x_1: torch.Tensor, t) -> torch.Tensor:
    """x_t = (1 - t) x_0 + t x_1 (x_0 noise, x_1 data); t a float or (B,) in [0, 1]."""
    t = torch.as_tensor(t, dtype=x_1.dtype, device=x_1.device)
    if t.numel() and (t.min() < 0 or t.max() > 1):
        raise ValueError("flow-matching t must be in [0, 1]")
    t = append_dims(t, x_1.ndim)
    return (1 - t) * x_0 + t * x_1
