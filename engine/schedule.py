"""The DDPM noise schedule (CS180 Part A, DeepFloyd IF's configuration).

Convention (DDPM): x_0 is the clean image and t counts *down* from T - 1 = 999 (pure noise) to
0 (clean). ``alphas_cumprod[t]`` is abar_t in x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
(Eq. A.2). DeepFloyd IF uses diffusers' ``DDPMScheduler`` with ``beta_schedule =
"squaredcos_cap_v2"`` (the cosine schedule of Nichol & Dhariwal 2021); we compute the same
betas here in float64 so importing the engine never imports diffusers, and the tests check
parity with diffusers. A backend with its own scheduler (DeepFloyd) builds a ``Schedule``
from that scheduler's tensors with ``Schedule.from_alphas_cumprod``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .course import FIRST_TIMESTEP, STRIDE

NUM_TRAIN_TIMESTEPS = 1000


def cosine_betas(num_timesteps: int = NUM_TRAIN_TIMESTEPS, max_beta: float = 0.999):
    """beta_t = min(1 - abar(t+1)/abar(t), max_beta), abar(s) = cos^2(((s/T) + 0.008)/1.008 * pi/2)."""

    def abar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1 - abar((i + 1) / num_timesteps) / abar(i / num_timesteps), max_beta)
        for i in range(num_timesteps)
    ]
    return torch.tensor(betas, dtype=torch.float64)


@dataclass(frozen=True, eq=False)
class Schedule:
    """abar_t for t = 0..T-1, stored in float64; ``engine.forward.noise_coefficients`` reads it."""

    alphas_cumprod: torch.Tensor = field(repr=False)

    @classmethod
    def cosine(cls, num_timesteps: int = NUM_TRAIN_TIMESTEPS) -> Schedule:
        betas = cosine_betas(num_timesteps)
        return cls(torch.cumprod(1.0 - betas, dim=0))

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod) -> Schedule:
        ac = torch.as_tensor(alphas_cumprod, dtype=torch.float64).detach().cpu().clone()
        if ac.ndim != 1 or not torch.all((ac > 0) & (ac <= 1)):
            raise ValueError("alphas_cumprod must be a 1-D tensor of values in (0, 1]")
        return cls(ac)

    @property
    def num_timesteps(self) -> int:
        return self.alphas_cumprod.shape[0]

    @property
    def betas(self) -> torch.Tensor:
        prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        return 1.0 - self.alphas_cumprod / prev

    def check_t(self, t) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.long)
        if t.numel() and (t.min() < 0 or t.max() >= self.num_timesteps):
            raise ValueError(f"t must be in [0, {self.num_timesteps - 1}], got {t.tolist()}")
        return t


def append_dims(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """A scalar or (B,) tensor -> shape (B, 1, ..., 1) with ``ndim`` dims (k-diffusion's helper)."""
    if v.ndim == 0:
        return v.reshape((1,) * ndim)
    return v.reshape(v.shape + (1,) * (ndim - v.ndim))


def strided_timesteps(stride: int = STRIDE, start: int = FIRST_TIMESTEP) -> list[int]:
    """[start, start - stride, ..., 0]: 990 -> 0 by 30 gives 34 timesteps, 33 denoising steps."""
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    if start < 0 or start >= NUM_TRAIN_TIMESTEPS:
        raise ValueError(f"start must be in [0, {NUM_TRAIN_TIMESTEPS - 1}], got {start}")
    steps = list(range(start, -1, -stride))
    if steps[-1] != 0:
        steps.append(0)
    return steps


def spaced_timesteps(steps: int, start: int = 990) -> list[int]:
    """``steps`` denoising steps from ``start`` to 0, evenly spaced (rounded): 33 steps give the
    course's 990, 960, ..., 0; 10 steps 990, 891, ..., 0."""
    if not 1 <= steps <= start:
        raise ValueError(f"steps must be in [1, {start}], got {steps}")
    return [round(start * (steps - k) / steps) for k in range(steps + 1)]
