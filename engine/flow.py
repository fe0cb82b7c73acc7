"""Flow matching (CS180 Part B2, Lipman et al. 2023; Liu et al. rectified flow).

Convention: x_0 ~ N(0, I) is noise, x_1 is data, t runs 0 -> 1 (the *opposite* of DDPM's t).
The path x_t = (1 - t) x_0 + t x_1 has velocity u = x_1 - x_0, which the UNet learns
(Algorithm B.1 / B.3). Sampling integrates dx/dt = u(x_t, t) with ``num_ts`` Euler steps from
t = 0 to 1 (Algorithm B.2 / B.4); a class model samples with classifier-free guidance
u = u_uncond + gamma (u_cond - u_uncond), conditional and unconditional in one batched call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .forward import flow_path


@dataclass
class FlowTrajectory:
    """x: (S + 1, B, C, H, W) states at t = 0, 1/S, ..., 1; x1_hat: (S, B, ...) predicted data
    x_t + (1 - t) u at each step; speed: (S, B) mean |u| per image."""

    x: torch.Tensor
    x1_hat: torch.Tensor
    speed: torch.Tensor
    ts: torch.Tensor


def flow_matching_loss(
    velocity_model: Callable,
    x_1: torch.Tensor,
    noise: torch.Tensor,
    t: torch.Tensor,
    cond: torch.Tensor | None = None,
) -> torch.Tensor:
    """|| u_theta(x_t, t[, c]) - (x_1 - x_0) ||^2 with x_0 = noise (Eq. B.6)."""
    x_t = flow_path(noise, x_1, t)
    target = x_1 - noise
    pred = velocity_model(x_t, t) if cond is None else velocity_model(x_t, t, cond)
    return F.mse_loss(pred.float(), target.float())


def guided_velocity(model: Callable, x: torch.Tensor, t: torch.Tensor, cond, null_cond, guidance: float):
    """CFG velocity, both branches in one forward pass of batch 2B."""
    out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, null_cond]))
    u_c, u_u = out.float().chunk(2)
    return u_u + guidance * (u_c - u_u)


@torch.inference_mode()
def euler_sample(
    model: Callable,
    noise: torch.Tensor,
    num_ts: int = 300,
    cond: torch.Tensor | None = None,
    null_cond: torch.Tensor | None = None,
    guidance: float | None = None,
    record: bool = False,
    callback: Callable[[int, torch.Tensor], None] | None = None,
):
    """Integrate x from t = 0 (noise) to t = 1 with ``num_ts`` Euler steps.

    ``model(x, t)`` or ``model(x, t, cond)``; with ``guidance`` set, CFG against ``null_cond``.
    Returns the final x_1, or a ``FlowTrajectory`` when ``record`` is true.
    ``callback(i, x)`` runs after each step (progress bars).
    """
    if num_ts < 1:
        raise ValueError(f"num_ts must be >= 1, got {num_ts}")
    if guidance is not None and (not 0 <= guidance < math.inf or cond is None or null_cond is None):
        raise ValueError(f"CFG needs a finite guidance >= 0 (got {guidance}), cond and null_cond")
    x = noise.float().clone()
    b = x.shape[0]
    dt = 1.0 / num_ts
    xs, x1s, speeds = [x.clone()], [], []
    ts = torch.arange(num_ts, dtype=torch.float32) * dt
    for i in range(num_ts):
        t = torch.full((b,), float(ts[i]), device=x.device)
        # 1. velocity at (x_t, t), guided if asked
        if guidance is not None:
            u = guided_velocity(model, x, t, cond, null_cond, guidance)
        elif cond is not None:
            u = model(x, t, cond).float()
        else:
            u = model(x, t).float()
        if record:
            x1s.append(x + (1 - ts[i]) * u)
            speeds.append(u.abs().flatten(1).mean(1))
        # 2. Euler step x_{t + dt} = x_t + dt * u
        x = x + dt * u
        if record:
            xs.append(x.clone())
        if callback is not None:
            callback(i, x)
    if not record:
        return x
    return FlowTrajectory(torch.stack(xs), torch.stack(x1s), torch.stack(speeds), ts)
