"""Sampling the built-in MNIST models: digits from noise, with or without CFG, with any sampler.

These glue the samplers (the contract is in ``engine.trajectory``) to the built-in adapters: the
starting noise comes from the caller's generator, guidance wraps the model (``CFGModel``), the
result is a ``Trajectory``. Diffusion models (``ddpm-class``): the course's strided loop "ddpm"
(``engine.denoise``), "ddim" and "dpmpp-2m" (``engine.diffusers_samplers``). Flow models: "euler" (the
course's), "midpoint", "heun", "rk4" (``engine.flow``). ``snapshot`` is what training records
after epochs 1, 5, 10 (the spec's "results after epoch N" figures) as small arrays.
"""

from __future__ import annotations

import torch

from .config import TrainConfig
from .denoise import iterative_denoise
from .flow import SOLVERS, ode_sample
from .forward import add_noise_sigma
from .guidance import CFGModel
from .adapters import MNISTDDPM, FlowModel, device_of
from .schedule import spaced_timesteps, strided_timesteps
from .diffusers_samplers import SCHEDULERS, scheduler_sample
from .trajectory import StepCallback, Trajectory, to_unit

SIGMA_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)
DIFFUSION_SAMPLERS = ("ddpm", *SCHEDULERS)  # the course's loop first
FLOW_SAMPLERS = tuple(SOLVERS)  # "euler" (the course's) first


def check_sampler(kind: str, sampler: str) -> None:
    """A diffusion sampler for a DDPM model, an ODE solver for a flow model, else ValueError."""
    fits = DIFFUSION_SAMPLERS if kind == "ddpm" else FLOW_SAMPLERS
    if sampler not in fits:
        raise ValueError(f"sampler {sampler!r} does not fit a {kind} model; choose from {', '.join(fits)}")


def digit_labels(labels, per_label: int) -> torch.Tensor:
    """[0, 1] x 2 -> [0, 0, 1, 1]: ``per_label`` images of each label, grouped."""
    return torch.as_tensor(list(labels), dtype=torch.long).repeat_interleave(per_label)


def sample_flow(
    flow: FlowModel,
    labels: torch.Tensor | None,
    count: int,
    num_ts: int = 300,
    guidance: float | None = 5.0,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    record: bool = True,
    *,
    sampler: str = "euler",
    ts=None,
) -> Trajectory:
    """``count`` digits from a flow model with ``num_ts`` steps of ``sampler`` (the course:
    300 Euler steps, Algorithm B.2/B.4) or on the time grid ``ts``; a class model with
    ``labels`` samples with CFG scale ``guidance``. [0, 1] pixel units."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    check_sampler("flow", sampler)
    noise = torch.randn(count, 1, 28, 28, generator=generator)
    model, cond = flow, None
    if flow.class_conditioned and labels is not None:
        model = CFGModel(flow, flow.null_cond(1), guidance) if guidance is not None else flow
        cond = flow.encode(labels)
    return ode_sample(model, noise, sampler, num_ts, cond, ts, callback, record)


def sample_ddpm(
    ddpm: MNISTDDPM,
    labels: torch.Tensor,
    stride: int = 30,
    guidance: float = 7.0,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    record: bool = True,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float = 0.0,
) -> Trajectory:
    """Digits from pure noise with CFG (CS180 A1.6), [-1, 1] pixel units: the course's strided
    loop ("ddpm": stride 30, or ``steps`` evenly spaced steps), "ddim" (``eta``) or "dpmpp-2m"
    in ``steps`` steps (default 20)."""
    check_sampler("ddpm", sampler)
    labels = torch.as_tensor(labels, dtype=torch.long)
    noise = torch.randn(labels.shape[0], 1, 28, 28, generator=generator)
    model, cond = CFGModel(ddpm, ddpm.null_cond(1), guidance), ddpm.encode(labels)
    if sampler == "ddpm":
        ts = strided_timesteps(stride) if steps is None else spaced_timesteps(steps)
        return iterative_denoise(model, noise, 0, ts, ddpm.schedule, cond, generator, callback=callback,
                                 record=record)
    return scheduler_sample(model, noise, sampler, steps or 20, ddpm.schedule, cond, eta, generator, callback,
                            record)


def snapshot(net: torch.nn.Module, cfg: TrainConfig, epoch: int, amp=None) -> tuple[dict, dict]:
    """Arrays that show what the model does after ``epoch`` (fixed seed 0 inputs)."""
    from .data import load_mnist

    gen = torch.Generator().manual_seed(0)
    meta = {"epoch": epoch, "name": cfg.name, "seed": 0}
    net = net.float().eval()
    dev = device_of(net)  # CUDA while training on a GPU; arrays come back on CPU
    if cfg.objective == "denoiser":
        clean = load_mnist("test").images[:8]
        noise = torch.randn(clean.shape, generator=gen)
        with torch.inference_mode():
            if cfg.pure_noise:
                return {"noise": noise, "denoised": net(noise.to(dev)).cpu()}, meta
            noisy = torch.stack([add_noise_sigma(clean, s, noise=noise) for s in SIGMA_GRID])
            out = net(noisy.flatten(0, 1).to(dev)).cpu().reshape(noisy.shape)
        meta["sigmas"] = list(SIGMA_GRID)
        return {"clean": clean, "noisy": noisy, "denoised": out}, meta
    labels = digit_labels(range(10), 4)
    if cfg.objective == "flow":
        flow = FlowModel(net, cfg, amp)
        samples = sample_flow(flow, labels, len(labels), 300, 5.0, gen, record=False).final.clamp(0, 1)
        meta |= {"num_ts": 300, "guidance": 5.0 if flow.class_conditioned else None}
        return {"samples": samples, "labels": labels}, meta
    if cfg.objective == "ddpm":
        traj = sample_ddpm(MNISTDDPM(net, amp=amp), labels, 30, 7.0, gen, record=False)
        meta |= {"stride": 30, "guidance": 7.0}
        return {"samples": torch.from_numpy(to_unit(traj.final)), "labels": labels}, meta
    return {}, meta
