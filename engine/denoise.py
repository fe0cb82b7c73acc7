"""Denoising (CS180 Part A1.2-A1.5): classical blur, one-step, and iterative DDPM.

Convention (DDPM): x_0 is clean, t counts down from 999. A *model* is any callable
``model(x_t, t, cond) -> out`` with t a (B,) long tensor of timesteps; ``out`` is the noise
estimate eps_hat (B, C, H, W), or (B, 2C, H, W) = [eps_hat, v] when the model also predicts its
variance (DeepFloyd IF's "learned_range" head), in which case the loop uses that variance.

One step (Eq. A.1 solved for x_0):  x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t).
Iterative (Eq. A.3), from t to the next strided t' < t, with alpha_t = abar_t / abar_t',
beta_t = 1 - alpha_t:
    x_t' = sqrt(abar_t') beta_t / (1 - abar_t) * x0_hat
         + sqrt(alpha_t) (1 - abar_t') / (1 - abar_t) * x_t + v_sigma
where v_sigma ~ N(0, var), var = (1 - abar_t') / (1 - abar_t) beta_t (fixed posterior
variance), or for a learned variance exp(f log beta_t + (1 - f) log var) with f = (v + 1) / 2,
exactly diffusers' ``DDPMScheduler.step``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .forward import noise_coefficients
from .metrics import psnr
from .schedule import Schedule
from .trajectory import Recorder, StepCallback, Trajectory

DDPM_RANGE = (-1.0, 1.0)  # the pixels every Part A model works in (ddpm-class and DeepFloyd IF)


# ----------------------------------------------------------------------------- blur


def gaussian_blur(x: torch.Tensor, kernel_size: int = 5, sigma: float = 2.0) -> torch.Tensor:
    """The classical baseline (Part A1.2): torchvision's Gaussian blur, odd kernel, reflect padding.

    Written out (the kernel as ``torchvision.transforms.v2.functional.gaussian_blur`` builds it,
    the same padding and grouped convolution; tests/engine/test_denoise.py checks they agree
    exactly): importing torchvision costs a server 165 MB and 1.1 CPU-s for these few lines."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
    if not sigma > 0:
        raise ValueError(f"blur sigma must be > 0, got {sigma}")
    shape = x.shape
    image = x.reshape((-1,) + shape[-3:]) if x.ndim != 3 else x.unsqueeze(0)
    lim = (kernel_size - 1) / (2.0 * math.sqrt(2.0))
    grid = torch.linspace(-lim, lim, kernel_size, dtype=x.dtype)
    k1 = torch.softmax(grid.div(float(sigma)).pow(2).neg(), 0)
    kernel = torch.mm(k1[:, None], k1[None, :]).expand(shape[-3], 1, kernel_size, kernel_size)
    pad = kernel_size // 2
    out = F.conv2d(F.pad(image, [pad] * 4, mode="reflect"), kernel, groups=shape[-3])
    return out.reshape(shape)


def best_blur_sigma(
    noisy: torch.Tensor,
    clean: torch.Tensor,
    sigmas: Sequence[float] = tuple(s / 4 for s in range(1, 25)),
    kernel_for: Callable[[float], int] = lambda s: 2 * int(3 * s + 0.5) + 1,
    data_range: float = 1.0,
) -> tuple[float, float]:
    """The blur sigma with the best PSNR against ``clean``: (sigma, psnr). Uses the answer, so it
    is the *best case* for blurring, a fair upper bound to compare the models against."""
    best = (sigmas[0], -float("inf"))
    for s in sigmas:
        k = kernel_for(s)
        k = min(k, 2 * (min(noisy.shape[-2:]) // 2) - 1)
        score = psnr(gaussian_blur(noisy, k, s).clamp(-data_range, data_range), clean, data_range)
        if score > best[1]:
            best = (float(s), float(score))
    return best


# ----------------------------------------------------------------------------- one step


def split_output(out: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Model output -> (eps_hat, predicted variance or None)."""
    if out.shape[1] == channels:
        return out, None
    if out.shape[1] == 2 * channels:
        eps, v = out.split(channels, dim=1)
        return eps, v
    raise ValueError(f"model returned {out.shape[1]} channels for a {channels}-channel image")


def predict_x0(x_t: torch.Tensor, eps_hat: torch.Tensor, t, schedule: Schedule) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) (Eq. A.2 solved for x_0)."""
    if eps_hat.shape != x_t.shape:
        raise ValueError(f"eps_hat shape {tuple(eps_hat.shape)} != x_t shape {tuple(x_t.shape)}")
    signal, sigma = noise_coefficients(t, schedule, x_t)
    return (x_t - sigma * eps_hat) / signal


def _timesteps_tensor(t: int, batch: int, device) -> torch.Tensor:
    return torch.full((batch,), int(t), dtype=torch.long, device=device)


@torch.inference_mode()
def one_step_denoise(model: Callable, x_t: torch.Tensor, t: int, schedule: Schedule, cond=None):
    """Part A1.3: a single noise estimate, turned into x0_hat."""
    schedule.check_t(t)
    out = model(x_t, _timesteps_tensor(t, x_t.shape[0], x_t.device), cond)
    eps, _ = split_output(out.float(), x_t.shape[1])
    return predict_x0(x_t, eps, t, schedule)


# ----------------------------------------------------------------------------- DDPM step


def posterior_variance(t: int, t_prev: int, schedule: Schedule, predicted=None, like=None):
    """Variance of x_t' given x_t, x0 (fixed, or diffusers' learned_range interpolation)."""
    check_step(t, t_prev, schedule)
    abar_t = schedule.alphas_cumprod[t]
    abar_prev = schedule.alphas_cumprod[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
    beta = 1 - abar_t / abar_prev
    var = ((1 - abar_prev) / (1 - abar_t) * beta).clamp(min=1e-20)
    if predicted is None:
        return var.to(like.dtype) if like is not None else var
    frac = (predicted.float() + 1) / 2
    log_var = frac * torch.log(beta).float() + (1 - frac) * torch.log(var).float()
    return torch.exp(log_var)


def ddpm_step(
    x_t: torch.Tensor,
    eps_hat: torch.Tensor,
    t: int,
    t_prev: int,
    schedule: Schedule,
    variance_noise: torch.Tensor | None,
    predicted_variance: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One strided DDPM update (Eq. A.3): returns (x_t', x0_hat). No noise is added when
    ``variance_noise`` is None or t = 0."""
    check_step(t, t_prev, schedule)
    if variance_noise is not None and variance_noise.shape != x_t.shape:
        raise ValueError(
            f"variance_noise shape {tuple(variance_noise.shape)} != x_t shape {tuple(x_t.shape)}"
        )
    ac = schedule.alphas_cumprod
    abar_t = ac[t].item()
    abar_prev = ac[t_prev].item() if t_prev >= 0 else 1.0
    alpha = abar_t / abar_prev
    beta = 1 - alpha
    # 1. clean estimate from the noise estimate
    x0_hat = predict_x0(x_t, eps_hat, t, schedule)
    # 2. posterior mean: a blend of x0_hat and x_t
    mean = (abar_prev**0.5 * beta / (1 - abar_t)) * x0_hat + (
        alpha**0.5 * (1 - abar_prev) / (1 - abar_t)
    ) * x_t
    # 3. posterior noise
    if variance_noise is not None and t > 0:
        var = posterior_variance(t, t_prev, schedule, predicted_variance, like=x_t)
        mean = mean + torch.as_tensor(var, dtype=x_t.dtype, device=x_t.device).sqrt() * variance_noise
    return mean, x0_hat


def check_step(t: int, t_prev: int, schedule: Schedule) -> None:
    """One update goes from t to an earlier t_prev; t_prev = -1 means "past the last step"."""
    schedule.check_t(t)
    if not -1 <= t_prev < t:
        raise ValueError(f"t_prev must be in [-1, t - 1] = [-1, {t - 1}], got {t_prev}")


def check_i_start(i_start: int, timesteps: Sequence[int]) -> None:
    if not 0 <= i_start < len(timesteps) - 1:
        raise ValueError(
            f"i_start must be in [0, {len(timesteps) - 2}] for {len(timesteps)} strided "
            f"timesteps, got {i_start}"
        )


@torch.inference_mode()
def iterative_denoise(
    model: Callable,
    x: torch.Tensor,
    timesteps: Sequence[int],
    *,
    cond=None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    record: bool = True,
    schedule: Schedule | None = None,
    add_variance: bool = True,
    after_step: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
) -> Trajectory:
    """Part A1.4-A1.5: the course's strided DDPM loop. ``x`` is at ``timesteps[0]`` and is denoised
    step by step down to ``timesteps[-1]`` (from pure noise at 990, this is sampling; SDEdit passes
    the grid from its i_start on: ``timesteps[i_start:]``).

    ``after_step(x, t)`` may rewrite x after each step (inpainting); variance noise comes from
    ``generator``. Returns the ``Trajectory`` in [-1, 1] pixels, times = the timesteps.
    """
    schedule = schedule or Schedule.cosine()
    timesteps = list(timesteps)
    if x.ndim != 4:
        raise ValueError(f"x_t must be a batch of images (B, C, H, W), got shape {tuple(x.shape)}")
    if len(timesteps) < 2:
        raise ValueError(f"the loop needs at least two timesteps (one step), got {timesteps}")
    if any(a <= b for a, b in zip(timesteps, timesteps[1:], strict=False)):
        raise ValueError("timesteps must be strictly decreasing")
    schedule.check_t(timesteps)
    x = x.float()
    n = len(timesteps) - 1
    rec = Recorder(x, timesteps[0], n, record, callback)
    for i in range(n):
        t, t_prev = timesteps[i], timesteps[i + 1]
        # 1. noise (and maybe variance) estimate
        out = model(x, _timesteps_tensor(t, x.shape[0], x.device), cond).float()
        eps, v = split_output(out, x.shape[1])
        # 2. DDPM update to t_prev
        noise = None
        if add_variance:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        x, x0_hat = ddpm_step(x, eps, t, t_prev, schedule, noise, v)
        # 3. constraints (inpainting), then record
        if after_step is not None:
            x = after_step(x, t_prev)
        rec.step(i, t_prev, x, x0_hat)
    return rec.result(n, DDPM_RANGE)
