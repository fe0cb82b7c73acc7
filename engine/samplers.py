"""Every sampler of the lab by name, with one call shape, and the one dispatcher that picks one.

The contract (as k-diffusion's ``sample_*``): a sampler is

    sampler(model, x, grid, *, cond=None, generator=None, callback=None, record=True, **options)
        -> Trajectory

``x`` is the state at ``grid[0]`` and the grid is the run's times, built by the named helpers
below. DDPM samplers (Part A: t counts down, 990 -> 0; ``options``: ``schedule``, and ``eta`` for
DDIM) start from noise at the grid's first timestep; flow samplers (Part B: t runs 0 -> 1) start
from noise at t = 0. ``sample`` builds the grid from a step count and the course's defaults
(``engine.course``) and serves the MNIST models, DeepFloyd IF, the 2D playground and the
dashboard alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .course import EULER_STEPS, FAST_STEPS, STRIDE
from .denoise import iterative_denoise
from .diffusers_samplers import MAX_STEPS, ddim_sample, dpmpp_2m_sample, fast_timesteps
from .flow import euler_sample, heun_sample, midpoint_sample, rk4_sample, time_grid
from .schedule import spaced_timesteps, strided_timesteps
from .trajectory import StepCallback, Trajectory

DIFFUSION = {
    "ddpm": iterative_denoise,
    "ddim": ddim_sample,
    "dpmpp-2m": dpmpp_2m_sample,
}  # the course's first
FLOW = {"euler": euler_sample, "midpoint": midpoint_sample, "heun": heun_sample, "rk4": rk4_sample}
DIFFUSION_SAMPLERS = tuple(DIFFUSION)
FLOW_SAMPLERS = tuple(FLOW)
SAMPLERS: dict[str, Callable[..., Trajectory]] = {**DIFFUSION, **FLOW}


def kind_of(sampler: str) -> str:
    """ "ddpm" for a diffusion sampler, "flow" for an ODE solver, else ValueError."""
    if sampler in DIFFUSION:
        return "ddpm"
    if sampler in FLOW:
        return "flow"
    raise ValueError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")


def check_sampler(kind: str, sampler: str) -> None:
    """A diffusion sampler for a DDPM model, an ODE solver for a flow model, else ValueError."""
    fits = DIFFUSION_SAMPLERS if kind == "ddpm" else FLOW_SAMPLERS
    if sampler not in fits:
        raise ValueError(f"sampler {sampler!r} does not fit a {kind} model; choose from {', '.join(fits)}")


def diffusion_grid(sampler: str, steps: int | None = None, stride: int | None = None) -> list[int]:
    """The timesteps a DDPM sampler runs: the course's strided loop (stride 30: 990, 960, ..., 0)
    or ``steps`` evenly spaced steps for "ddpm"; ``fast_timesteps(steps)`` (default 20) for DDIM and
    DPM-Solver++."""
    if sampler == "ddpm":
        if steps is not None and stride is not None:
            raise ValueError("give the course's loop a stride or a number of steps, not both")
        return strided_timesteps(stride or STRIDE) if steps is None else spaced_timesteps(steps)
    if stride is not None:
        raise ValueError(f"a stride is the course's loop's; {sampler} takes steps")
    return fast_timesteps(FAST_STEPS if steps is None else steps)


def flow_grid(steps: int | None = None, ts=None) -> torch.Tensor:
    """The times a flow solver runs: ``steps`` uniform steps from 0 to 1 (the course's 300 by
    default), or the given grid ``ts``."""
    return time_grid(EULER_STEPS if steps is None and ts is None else steps, ts)


def sample(
    model: Callable,
    x: torch.Tensor,
    sampler: str,
    steps: int | None = None,
    *,
    cond=None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    record: bool = True,
    schedule=None,
    stride: int | None = None,
    eta: float | None = None,
    ts=None,
    threshold: bool = True,
) -> Trajectory:
    """Run ``sampler`` by name on ``model`` from the noise ``x`` in ``steps`` steps (the course's
    settings when None). DDPM samplers take the model's ``schedule``; ``stride`` is the course's
    loop's, ``eta`` DDIM's, ``threshold`` (dynamic thresholding) DDIM's and DPM-Solver++'s, ``ts``
    a flow solver's own time grid."""
    kind = kind_of(sampler)
    if eta and sampler != "ddim":
        raise ValueError(f"eta is DDIM's; {sampler} has none")
    if kind == "flow":
        if stride is not None:
            raise ValueError(f"a stride is the course's DDPM loop's; {sampler} takes steps")
        return FLOW[sampler](
            model, x, flow_grid(steps, ts), cond=cond, generator=generator, callback=callback, record=record
        )
    grid = diffusion_grid(sampler, steps, stride)
    common = {
        "cond": cond,
        "generator": generator,
        "callback": callback,
        "record": record,
        "schedule": schedule,
    }
    if sampler == "ddpm":
        return iterative_denoise(model, x, grid, **common)
    if sampler == "ddim":
        return ddim_sample(model, x, grid, **common, eta=eta or 0.0, threshold=threshold)
    return dpmpp_2m_sample(model, x, grid, **common, threshold=threshold)


__all__ = [
    "DIFFUSION_SAMPLERS",
    "FLOW_SAMPLERS",
    "MAX_STEPS",
    "SAMPLERS",
    "check_sampler",
    "diffusion_grid",
    "flow_grid",
    "kind_of",
    "sample",
]
