"""Flow matching (CS180 Part B2, Lipman et al. 2023; Liu et al. rectified flow).

Convention: x_0 ~ N(0, I) is noise, x_1 is data, t runs 0 -> 1 (the *opposite* of DDPM's t).
The path x_t = (1 - t) x_0 + t x_1 has velocity u = x_1 - x_0, which the UNet learns
(Algorithm B.1 / B.3). Sampling integrates the ODE dx/dt = u(x_t, t) from t = 0 to 1: the
course uses Euler steps (Algorithm B.2 / B.4); straighter paths let higher-order steps (midpoint,
Heun, RK4: what Meta's flow_matching ODESolver runs through torchdiffeq) reach the same images
with fewer network evaluations (NFE). Classifier-free guidance wraps the model
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


# One step of each solver from (x, t) over dt; ``k1 = u(x, t)`` is already known (it also gives
# the clean estimate x1_hat), so a step costs NFE - 1 more calls of u.


def euler_step(u, x, t, dt, k1):
    return x + dt * k1


def midpoint_step(u, x, t, dt, k1):
    return x + dt * u(x + dt / 2 * k1, t + dt / 2)


def heun_step(u, x, t, dt, k1):
    """Heun's method (the trapezoid rule with an Euler predictor)."""
    k2 = u(x + dt * k1, t + dt)
    return x + dt / 2 * (k1 + k2)


def rk4_step(u, x, t, dt, k1):
    """Fourth order, Kutta's 3/8 rule: torchdiffeq's fixed-grid "rk4" (and Meta's flow_matching)."""
    k2 = u(x + dt * k1 / 3, t + dt / 3)
    k3 = u(x + dt * (k2 - k1 / 3), t + 2 * dt / 3)
    k4 = u(x + dt * (k1 - k2 + k3), t + dt)
    return x + dt * (k1 + 3 * (k2 + k3) + k4) / 8


# (step, NFE per step); "euler" (the course's) first
SOLVERS = {
    "euler": (euler_step, 1),
    "midpoint": (midpoint_step, 2),
    "heun": (heun_step, 2),
    "rk4": (rk4_step, 4),
}


def time_grid(steps: int | None = None, ts=None) -> torch.Tensor:
    """A uniform grid 0, 1/steps, ..., 1, or the given ``ts``: increasing, from 0 to 1."""
    if ts is None:
        if steps is None or steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        return torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    ts = torch.as_tensor(ts, dtype=torch.float64)
    if ts.ndim != 1 or len(ts) < 2 or ts[0] != 0 or ts[-1] != 1 or bool((ts[1:] <= ts[:-1]).any()):
        raise ValueError("a time grid must increase strictly from 0 to 1")
    return ts


def crowded_grid(steps: int, power: int = 2) -> torch.Tensor:
    """t = 1 - (1 - s)^power on a uniform grid of s: steps crowded near t = 1, where a trained
    flow's velocity turns fastest (docs/performance.md, "time grids"; docs/likelihood.md)."""
    s = time_grid(steps)
    return 1 - (1 - s) ** power


@torch.inference_mode()
def ode_sample(
    model: Callable,
    x: torch.Tensor,
    grid,
    *,
    cond: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    record: bool = True,
    method: str = "euler",
) -> Trajectory:
    """Integrate dx/dt = u(x, t) from noise ``x`` at t = 0 to t = 1 with ``method`` ("euler",
    "midpoint", "heun", "rk4") on the time ``grid`` (``time_grid(steps)``: uniform; or any
    strictly increasing grid from 0 to 1). ``generator`` is unused: the ODE is deterministic.

    ``model(x, t, cond)`` gives the velocity (wrap it in ``CFGModel`` for guidance: one batched
    call per evaluation). Returns the ``Trajectory`` in [0, 1] pixel units (unclipped) with
    x1_hat = x_t + (1 - t) u(x_t, t) at each state and NFE = steps x the method's stages.
    """
    if method not in SOLVERS:
        raise ValueError(f"unknown ODE solver {method!r}; choose from {', '.join(SOLVERS)}")
    step, stages = SOLVERS[method]
    grid = time_grid(ts=grid)
    x = x.clone() if x.dtype == torch.float64 else x.float().clone()  # float64: tests
    b = x.shape[0]

    def u(x, t):
        return model(x, torch.full((b,), float(t), dtype=x.dtype, device=x.device), cond).to(x.dtype)

    rec = Recorder(x, 0.0, len(grid) - 1, record, callback)
    for i in range(len(grid) - 1):
        t, dt = float(grid[i]), float(grid[i + 1] - grid[i])
        # 1. velocity at (x_t, t) and the clean image it points at
        k1 = u(x, t)
        x1_hat = x + (1 - t) * k1
        # 2. one step of the solver to t + dt
        x = step(u, x, t, dt, k1)
        rec.step(i, float(grid[i + 1]), x, x1_hat)
    return rec.result(stages * (len(grid) - 1), FLOW_RANGE)


def _solver(method: str):
    def sampler(model, x, grid, *, cond=None, generator=None, callback=None, record=True) -> Trajectory:
        return ode_sample(
            model, x, grid, cond=cond, generator=generator, callback=callback, record=record, method=method
        )

    sampler.__name__ = f"{method}_sample"
    sampler.__doc__ = f"``ode_sample`` with the {method} solver: the sampler contract's shape."
    return sampler


euler_sample = _solver("euler")  # the course's sampler (Algorithm B.2 / B.4) on time_grid(300)
midpoint_sample = _solver("midpoint")
heun_sample = _solver("heun")
rk4_sample = _solver("rk4")
