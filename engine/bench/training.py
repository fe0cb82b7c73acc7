"""Training-step benchmarks: one optimizer step of a preset with bf16 autocast and channels_last
(as ``engine.train`` runs) against eager fp32, and the step's model FLOP/s against a matmul's."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from ..config import PRESETS, build_model
from ..device import cpu_amp
from ..unet import one_hot
from .common import BenchResult, rate


def train_step_fn(name: str, batch: int, fast: bool) -> tuple[Callable[[], None], torch.nn.Module, tuple]:
    """One optimizer step of preset ``name``: fast = bf16 autocast + channels_last (as training
    runs), reference = eager fp32 with default settings."""
    cfg = PRESETS[name]
    gen = torch.Generator().manual_seed(0)
    model = build_model(cfg)
    amp = cpu_amp() if fast else None
    x = torch.rand(batch, 1, 28, 28, generator=gen)
    if fast and amp is not None:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    t = torch.rand(batch, generator=gen)
    c = one_hot(torch.randint(0, 10, (batch,), generator=gen))
    inputs = (x,) if cfg.arch == "unconditional" else (x, t) if cfg.arch == "time" else (x, t, c)

    def step():
        with torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            loss = F.mse_loss(model(*inputs).float(), x.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, model, inputs


def step_flops(name: str, batch: int) -> float:
    """Model FLOPs of one training step (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    step, _, _ = train_step_fn(name, batch, fast=False)
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def matmul_flops_per_s(dtype: torch.dtype, n: int = 1024, repeats: int = 3) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    return rate(lambda: a @ b, 2 * n**3, repeats)


def bench_training(name: str, batch: int, repeats: int, with_flops: bool) -> list[BenchResult]:
    fast, _, _ = train_step_fn(name, batch, fast=True)
    ref, _, _ = train_step_fn(name, batch, fast=False)
    ours = rate(fast, batch, repeats)
    reference = rate(ref, batch, repeats)
    out = [
        BenchResult(
            f"train step {name} (D={PRESETS[name].num_hiddens}, batch {batch})",
            "samples/s",
            ours,
            reference,
            ours / reference,
            ">= 3.0x",
        )
    ]
    if with_flops:
        flops = step_flops(name, batch) / batch * ours
        for dtype in (torch.bfloat16, torch.float32):
            peak = matmul_flops_per_s(dtype)
            out.append(
                BenchResult(
                    f"train step {name}: model FLOP/s vs {str(dtype)[6:]} matmul",
                    "FLOP/s",
                    flops,
                    peak,
                    flops / peak,
                    "report",
                )
            )
    return out

