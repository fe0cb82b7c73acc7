"""Sampling the built-in MNIST models: digits from noise, with or without CFG.

These glue the generic loops (``flow.euler_sample``, ``denoise.iterative_denoise``) to the
built-in adapters and convert pixels to [0, 1] for display. ``snapshot`` is what training
records after epochs 1, 5, 10 (the spec's "results after epoch N" figures) as small arrays.
"""

from __future__ import annotations

import torch

from .denoise import DenoiseTrajectory, iterative_denoise
from .flow import FlowTrajectory, euler_sample
from .guidance import CFGModel
from .models import MNISTDDPM, FlowModel, device_of
from .schedule import strided_timesteps
from .train import TrainConfig
from .unet import one_hot

SIGMA_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)


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
    record: bool = False,
    callback=None,
) -> torch.Tensor | FlowTrajectory:
    """Digits in [0, 1] from a flow model (CFG only for class-conditioned models)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    noise = torch.randn(count, 1, 28, 28, generator=generator)
    if flow.class_conditioned and labels is not None:
        cond = one_hot(labels, flow.config.num_classes)
        out = euler_sample(flow, noise, num_ts, cond, flow.null_cond(count), guidance, record, callback)
    else:
        out = euler_sample(flow, noise, num_ts, record=record, callback=callback)
    return out if record else out.clamp(0, 1)


def sample_ddpm(
    ddpm: MNISTDDPM,
    labels: torch.Tensor,
    stride: int = 30,
    guidance: float = 7.0,
    generator: torch.Generator | None = None,
    callback=None,
) -> DenoiseTrajectory:
    """Strided DDPM from pure noise with CFG (CS180 A1.6); trajectory in the model's [-1, 1]."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    ts = strided_timesteps(stride)
    noise = torch.randn(labels.shape[0], 1, 28, 28, generator=generator)
    model = CFGModel(ddpm, ddpm.null_cond(1), guidance, 1)
    return iterative_denoise(
        model, noise, 0, ts, ddpm.schedule, ddpm.encode(labels), generator, callback=callback
    )


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((x + 1) / 2).clamp(0, 1)


def snapshot(net: torch.nn.Module, cfg: TrainConfig, epoch: int, amp=None) -> tuple[dict, dict]:
    """Arrays that show what the model does after ``epoch`` (fixed seed 0 inputs)."""
    from .data import load_mnist

    gen = torch.Generator().manual_seed(0)
    meta = {"epoch": epoch, "name": cfg.name, "seed": 0}
    net = net.float().eval()
    dev = device_of(net)  # CUDA while training on a GPU; arrays come back on CPU
    if cfg.objective == "denoiser":
        test = load_mnist("test")
        clean = test.images[:8]
        noise = torch.randn(clean.shape, generator=gen)
        with torch.inference_mode():
            if cfg.pure_noise:
                return {"noise": noise, "denoised": net(noise.to(dev)).cpu()}, meta
            noisy = torch.stack([clean + s * noise for s in SIGMA_GRID])
            out = net(noisy.flatten(0, 1).to(dev)).cpu().reshape(noisy.shape)
        meta["sigmas"] = list(SIGMA_GRID)
        return {"clean": clean, "noisy": noisy, "denoised": out}, meta
    labels = digit_labels(range(10), 4)
    if cfg.objective == "flow":
        flow = FlowModel(net, cfg, amp)
        samples = sample_flow(flow, labels, len(labels), 300, 5.0, gen)
        meta |= {"num_ts": 300, "guidance": 5.0 if flow.class_conditioned else None}
        return {"samples": samples, "labels": labels}, meta
    if cfg.objective == "ddpm":
        ddpm = MNISTDDPM(net, amp=amp)
        samples = to_unit(sample_ddpm(ddpm, labels, 30, 7.0, gen).final)
        meta |= {"stride": 30, "guidance": 7.0}
        return {"samples": samples, "labels": labels}, meta
    return {}, meta
