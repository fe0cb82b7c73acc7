"""Rectified flow's "reflow" (Liu et al. 2022, §2.2): a flow trained on its teacher's own
(noise, sample) pairs instead of independent ones.

A flow model's ODE maps noise z_0 to a sample z_1 = ODE(z_0) deterministically. Flow matching on
those pairs, x_t = (1 - t) z_0 + t z_1 with target z_1 - z_0, learns paths that are straighter
than the teacher's, because the pairs no longer cross at random; straight paths need few Euler
steps, and at t = 0 the target is exact (one z_1 per z_0), so training there is distillation
into one step. The student starts from the teacher's weights.

Guidance is baked in: the pairs come from the teacher *with* CFG (gamma ``guidance``), so the
student learns the guided flow and samples without CFG (gamma 1, one network call a step).

``make_pairs`` is pure (the noise comes from the seed); ``save_pairs`` / ``load_pairs`` keep a
coupling in one safetensors file with what made it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from . import checkpoints as ckpt
from .flow import ode_sample, time_grid
from .guidance import CFGModel

# The teacher's solver: midpoint, 32 uniform steps. RMS pixel distance to a 200-step midpoint
# reference on flow-class at CFG 5 (docs/reflow.md): 2.9e-3 (worst pixel 0.021), against the
# course's 300 Euler steps' 2.3e-3 (worst 0.075); more steps stay at a floor of ~2.7e-3.
PAIR_SOLVER, PAIR_STEPS = "midpoint", 32


def pair_labels(count: int, seed: int, num_classes: int = 10) -> torch.Tensor:
    """Balanced labels (each class ``count / num_classes`` times, +-1) in a seeded order."""
    g = torch.Generator().manual_seed(seed)
    return (torch.arange(count) % num_classes)[torch.randperm(count, generator=g)]


def pair_noise(count: int, seed: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """z_0 for pairs ``start:stop`` of a coupling: chunks of 1024 from their own generators, so
    any slice is the same tensor whatever the batch size that made it."""
    stop = count if stop is None else stop
    out = []
    for chunk in range(start // 1024, (stop - 1) // 1024 + 1):
        g = torch.Generator().manual_seed(seed * 1_000_003 + chunk + 1)
        z = torch.randn(1024, 1, 28, 28, generator=g)
        lo, hi = max(start - chunk * 1024, 0), min(stop - chunk * 1024, 1024)
        out.append(z[lo:hi])
    return torch.cat(out)


def teacher_endpoints(flow, noise: torch.Tensor, labels: torch.Tensor, *, guidance: float,
                      solver: str = PAIR_SOLVER, steps: int = PAIR_STEPS) -> torch.Tensor:
    """z_1 = ODE(z_0): the teacher's samples from ``noise`` with CFG ``guidance`` (unclipped)."""
    model = CFGModel(flow, flow.null_cond(1), guidance)
    traj = ode_sample(model, noise, time_grid(steps), cond=flow.encode(labels), record=False, method=solver)
    return traj.final


def make_pairs(flow, count: int, seed: int, *, guidance: float, solver: str = PAIR_SOLVER,
               steps: int = PAIR_STEPS, batch: int = 1024, deadline: float | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict[str, torch.Tensor]:
    """Up to ``count`` pairs {"z0", "z1", "labels"} from the teacher ``flow`` (a ``FlowModel``);
    fewer when ``time.monotonic()`` passes ``deadline`` (the pairs made so far, whole batches)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    labels, z0 = pair_labels(count, seed, flow.config.num_classes), pair_noise(count, seed)
    z1 = torch.empty_like(z0)
    done = 0
    while done < count and (deadline is None or done == 0 or time.monotonic() < deadline):
        stop = min(done + batch, count)
        z1[done:stop] = teacher_endpoints(flow, z0[done:stop], labels[done:stop],
                                          guidance=guidance, solver=solver, steps=steps)
        done = stop
        if progress is not None:
            progress(done, count)
    return {"z0": z0[:done], "z1": z1[:done], "labels": labels[:done]}


def save_pairs(path, pairs: dict[str, torch.Tensor], meta: dict) -> None:
    """One file: z_1 in fp16 (its error, ~1e-3, is below the teacher's own), labels, and what
    made them; z_0 is not stored: ``load_pairs`` regenerates it from the seed."""
    ckpt.save_tensors(path, {"z1": pairs["z1"].half(), "labels": pairs["labels"]}, meta)


def load_pairs(path) -> tuple[dict[str, torch.Tensor], dict]:
    """({"z0", "z1", "labels"}, meta) of a file ``save_pairs`` wrote; ``CheckpointError`` when
    it is missing or unreadable, or holds no pairs."""
    tensors, meta = ckpt.load_tensors(Path(path))
    if "z1" not in tensors or "labels" not in tensors or "seed" not in meta:
        raise ckpt.CheckpointError(f"{path} holds no reflow pairs (python -m engine reflow-pairs "
                                   "writes them)")
    count = tensors["z1"].shape[0]
    return {"z0": pair_noise(count, int(meta["seed"])), "z1": tensors["z1"].float(),
            "labels": tensors["labels"].long()}, meta
