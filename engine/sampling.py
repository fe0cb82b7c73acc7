"""Sampling the built-in MNIST models: digits from noise, with or without CFG, with any sampler.

These glue the samplers (the contract is in ``engine.trajectory``) to the built-in adapters: the
starting noise comes from the caller's generator, guidance wraps the model (``CFGModel``), the
result is a ``Trajectory``. Every sampler is picked by name through ``engine.samplers.sample``:
"ddpm" (the course's loop), "ddim", "dpmpp-2m" for ``ddpm-class``; "euler" (the course's),
"midpoint", "heun", "rk4" for the flows. ``snapshot`` is what training records after epochs
1, 5, 10 (the spec's "results after epoch N" figures) as small arrays.
"""

from __future__ import annotations

import torch

from .adapters import MNISTDDPM, FlowModel, device_of
from .config import TrainConfig
from .course import DDPM_GUIDANCE, EULER_STEPS, FLOW_GUIDANCE, SIGMA_GRID, STRIDE, guidance_for
from .forward import add_noise_sigma
from .guidance import CFGModel
from .samplers import check_sampler, sample
from .trajectory import StepCallback, Trajectory, to_unit


def digit_labels(labels, per_label: int) -> torch.Tensor:
    """[0, 1] x 2 -> [0, 0, 1, 1]: ``per_label`` images of each label, grouped."""
    return torch.as_tensor(list(labels), dtype=torch.long).repeat_interleave(per_label)


def default_guidance(cfg: TrainConfig) -> float | None:
    """The CFG scale a model samples at unless told otherwise: the course's (gamma 7 for the DDPM,
    5 for a class flow); 1 (no CFG: one network call a step) for a flow whose training pairs had
    guidance baked in (reflow, ``engine.reflow``); None for a model without classes."""
    if cfg.arch == "class" and cfg.guidance_baked > 0:
        return 1.0
    return guidance_for("ddpm" if cfg.objective == "ddpm" else "flow", cfg.arch == "class")


def sample_flow(
    flow: FlowModel,
    labels: torch.Tensor | None,
    count: int,
    num_ts: int = EULER_STEPS,
    guidance: float | None = FLOW_GUIDANCE,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    record: bool = True,
    *,
    sampler: str = "euler",
    ts=None,
) -> Trajectory:
    """``count`` digits from a flow model with ``num_ts`` steps of ``sampler`` (the course:
    300 Euler steps, Algorithm B.2/B.4) or on the time grid ``ts``; a class model with
    ``labels`` samples with CFG scale ``guidance`` (1 or None: the conditional model alone, one
    network call). [0, 1] pixel units."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    check_sampler("flow", sampler)
    noise = torch.randn(count, 1, 28, 28, generator=generator)
    model, cond = flow, None
    if flow.class_conditioned and labels is not None:
        model = CFGModel(flow, flow.null_cond(1), guidance) if guidance not in (None, 1.0) else flow
        cond = flow.encode(labels)
    return sample(model, noise, sampler, None if ts is not None else num_ts, cond=cond, ts=ts,
                  callback=callback, record=record)


def sample_ddpm(
    ddpm: MNISTDDPM,
    labels: torch.Tensor,
    stride: int | None = None,
    guidance: float = DDPM_GUIDANCE,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    record: bool = True,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float | None = None,
) -> Trajectory:
    """Digits from pure noise with CFG (CS180 A1.6), [-1, 1] pixel units: the course's strided
    loop ("ddpm": ``stride``, 30 by default, or ``steps`` evenly spaced steps), "ddim" (``eta``)
    or "dpmpp-2m" in ``steps`` steps (default 20)."""
    check_sampler("ddpm", sampler)
    labels = torch.as_tensor(labels, dtype=torch.long)
    noise = torch.randn(labels.shape[0], 1, 28, 28, generator=generator)
    model, cond = CFGModel(ddpm, ddpm.null_cond(1), guidance), ddpm.encode(labels)
    if sampler != "ddpm" or steps is not None:
        stride = None
    return sample(model, noise, sampler, steps, cond=cond, generator=generator, callback=callback,
                  record=record, schedule=ddpm.schedule, stride=stride, eta=eta)


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
        guidance = default_guidance(cfg)
        samples = sample_flow(flow, labels, len(labels), EULER_STEPS, guidance, gen, record=False)
        samples = samples.final.clamp(0, 1)
        meta |= {"num_ts": EULER_STEPS, "guidance": guidance}
        return {"samples": samples, "labels": labels}, meta
    if cfg.objective == "ddpm":
        traj = sample_ddpm(MNISTDDPM(net, amp=amp), labels, STRIDE, DDPM_GUIDANCE, gen, record=False)
        meta |= {"stride": STRIDE, "guidance": DDPM_GUIDANCE}
        return {"samples": torch.from_numpy(to_unit(traj.final)), "labels": labels}, meta
    return {}, meta
