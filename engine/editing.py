"""Image-to-image editing with a diffusion model (CS180 Part A1.7).

- SDEdit (Meng et al. 2022): noise a real image to t = strided_timesteps[i_start] with the
  forward process, then denoise it with the iterative loop (usually with CFG). Small i_start
  = lots of noise = big edits; large i_start = close to the original.
- Inpainting (RePaint, Lugmayr et al. 2022): start from noise and after every step force the
  known pixels back to the original at the current noise level,
  x_t <- m x_t + (1 - m) forward(x_orig, t), where m = 1 marks the region to generate.
- Conditional image-to-image is SDEdit with a class (or text) condition: turn a 3 into an 8.

Convention (DDPM): x_0 is clean, t counts down. Images are in the model's value range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .course import SDEDIT_I_STARTS
from .denoise import check_i_start, iterative_denoise
from .forward import forward, randn_like
from .schedule import Schedule, strided_timesteps
from .trajectory import StepCallback, Trajectory


def sdedit(
    model: Callable,
    x_orig: torch.Tensor,
    i_start: int,
    timesteps: Sequence[int] | None = None,
    schedule: Schedule | None = None,
    cond=None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> Trajectory:
    """Project ``x_orig`` (B, C, H, W) back to the image manifold starting at ``i_start``."""
    schedule, timesteps = _grid(schedule, timesteps)
    check_i_start(i_start, timesteps)
    # 1. noise the real image to timesteps[i_start]
    x_t = forward(x_orig.float(), timesteps[i_start], schedule, generator=generator)
    # 2. denoise from there
    return iterative_denoise(model, x_t, timesteps[i_start:], cond=cond, generator=generator,
                             callback=callback, schedule=schedule)


def _grid(schedule: Schedule | None, timesteps: Sequence[int] | None) -> tuple[Schedule, list[int]]:
    """The course's defaults: the cosine schedule and the 990 -> 0 grid with stride 30."""
    return schedule or Schedule.cosine(), list(timesteps if timesteps is not None else strided_timesteps())


def sdedit_sweep(model, x_orig, i_starts=SDEDIT_I_STARTS, **kwargs) -> list[torch.Tensor]:
    """The spec's row of edits, one per i_start; returns the final images."""
    return [sdedit(model, x_orig, i, **kwargs).final for i in i_starts]


def check_mask(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """A mask broadcastable to the image's (B, C, H, W), values in [0, 1]."""
    mask = torch.as_tensor(mask, dtype=image.dtype, device=image.device)
    while mask.ndim < image.ndim:
        mask = mask.unsqueeze(0)
    if mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"mask size {tuple(mask.shape[-2:])} does not match image size {tuple(image.shape[-2:])}"
        )
    try:
        fits = torch.broadcast_shapes(mask.shape, image.shape) == image.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not broadcast to image shape {tuple(image.shape)}"
        )
    if mask.numel() and not bool(((mask >= 0) & (mask <= 1)).all()):  # also rejects NaN
        raise ValueError("mask values must be in [0, 1] (1 = generate, 0 = keep)")
    return mask


def rectangle_mask(height: int, width: int, top: int, left: int, bottom: int, right: int) -> torch.Tensor:
    """(1, 1, H, W) mask with ones inside rows [top, bottom) and columns [left, right)."""
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise ValueError(f"rectangle ({top}, {left})-({bottom}, {right}) is outside {height}x{width}")
    m = torch.zeros(1, 1, height, width)
    m[..., top:bottom, left:right] = 1
    return m


def inpaint(
    model: Callable,
    x_orig: torch.Tensor,
    mask: torch.Tensor,
    timesteps: Sequence[int] | None = None,
    schedule: Schedule | None = None,
    cond=None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> Trajectory:
    """Fill the ``mask == 1`` region of ``x_orig`` so it agrees with the rest (RePaint)."""
    schedule, timesteps = _grid(schedule, timesteps)
    x_orig = x_orig.float()
    mask = check_mask(mask, x_orig)

    def keep_known(x: torch.Tensor, t: int) -> torch.Tensor:
        known = forward(x_orig, t, schedule, noise=randn_like(x_orig, generator))
        return mask * x + (1 - mask) * known

    # 1. start from pure noise, with the known region already at the first noise level
    x_t = keep_known(randn_like(x_orig, generator), timesteps[0])
    # 2. denoise, re-imposing the known region after every step
    return iterative_denoise(model, x_t, timesteps, cond=cond, generator=generator, callback=callback,
                             schedule=schedule, after_step=keep_known)
