"""Flow matching (CS180 Part B2, Lipman et al. 2023; Liu et al. rectified flow).

Convention: x_0 ~ N(0, I) is noise, x_1 is data, t runs 0 -> 1 (the *opposite* of DDPM's t).
The path x_t = (1 - t) x_0 + t x_1 has velocity u = x_1 - x_0, which the UNet learns
(Algorithm B.1 / B.3). Sampling integrates dx/dt = u(x_t, t) with ``num_ts`` Euler steps from
t = 0 to 1 (Algorithm B.2 / B.4). Classifier-free guidance wraps the model
(``engine.guidance.CFGModel``), exactly as on the DDPM side.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from .forward import flow_path
from .trajectory import Recorder, StepCallback, Trajectory

FLOW_RANGE = (0.0, 1.0)  # MNIST pixels, the data end x_1 of every Part B flow


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


@torch.inference_mode()
def euler_sample(
    model: Callable,
    noise: torch.Tensor,
    num_ts: int = 300,
    cond: torch.Tensor | None = None,
    callback: StepCallback | None = None,
    record: bool = True,
) -> Trajectory:
    """Integrate x from t = 0 (noise) to t = 1 with ``num_ts`` Euler steps (Algorithm B.2).

    ``model(x, t, cond)`` gives the velocity (wrap it in ``CFGModel`` for guidance). Returns the
    ``Trajectory`` in [0, 1] pixel units (unclipped), with x1_hat = x_t + (1 - t) u as the clean
    estimate made at each state.
    """
    if num_ts < 1:
        raise ValueError(f"num_ts must be >= 1, got {num_ts}")
    x = noise.float().clone()
    b = x.shape[0]
    dt = 1.0 / num_ts
    ts = torch.arange(num_ts, dtype=torch.float32) * dt
    rec = Recorder(x, 0.0, num_ts, record, callback)
    for i in range(num_ts):
        t = torch.full((b,), float(ts[i]), device=x.device)
        # 1. velocity at (x_t, t) and the clean image it points at
        u = model(x, t, cond).float()
        x1_hat = x + (1 - ts[i]) * u
        # 2. Euler step x_{t + dt} = x_t + dt * u
        x = x + dt * u
        rec.step(i, (i + 1) / num_ts, x, x1_hat)
    return rec.result(num_ts, FLOW_RANGE)
