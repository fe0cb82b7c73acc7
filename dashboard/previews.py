"""What the pages draw from a model's weights outside the course's loops, without Streamlit: the
one-step model's digits (``one_step_samples``, docs/reflow.md) and a training run's digits as it
learns (``run_preview``, the Training lab's live grid and the Flow matching page's "Training lab
run"). Flow matching convention: t runs 0 (noise) -> 1 (data)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from dashboard.partb import models_dir
from engine.adapters import load_builtin, load_run
from engine.runs import RunFiles
from engine.sampling import default_guidance, sample_flow

ONE_STEP = "flow-class-reflow"  # the shipped one-step model (docs/reflow.md)


def one_step_samples(flow, labels: tuple[int, ...], seed: int,
                     steps: int = 1) -> tuple[np.ndarray, float, int]:
    """Digits ``labels`` from a distilled flow in ``steps`` Euler steps at its own guidance
    (``default_guidance``: 1 when it is baked in): ((N, 28, 28) in [0, 1], seconds, NFE)."""
    t0 = time.perf_counter()
    traj = sample_flow(flow, torch.tensor(labels), len(labels), steps, default_guidance(flow.config),
                       torch.Generator().manual_seed(int(seed)), record=False)
    return traj.final[:, 0].clamp(0, 1).numpy(), round(time.perf_counter() - t0, 3), traj.nfe


PREVIEW_PER_DIGIT = 3  # the Training lab's live grid: 3 of each digit, from the same noise every time


def run_preview(folder: Path, per_digit: int = PREVIEW_PER_DIGIT, seed: int = 0) -> dict | None:
    """What a class-conditioned flow run draws now, for the Training lab's live grid: its latest
    checkpoint's weights (the EMA's when it keeps one; the finished weights once it is done),
    ``per_digit`` of each digit from fixed noise with the time-to-quality solver (midpoint, 8
    steps crowded near the data, γ 5), and the lab's classifier's accuracy on them. None when
    there is nothing to draw yet (or the run is not a class-conditioned flow)."""
    from engine.bench.time_to_quality import draw, net_from_checkpoint
    from engine.checkpoints import CheckpointError, config_from_dict, read_meta
    from engine.classifier import classify
    from engine.config import TrainConfig
    from engine.toy2d.train import torch_threads

    files = RunFiles(Path(folder))
    try:
        written = [(p.stat().st_mtime, p == files.weights, p) for p in (files.checkpoint, files.weights)
                   if p.exists()]
        if not written:
            return None
        path = max(written)[2]  # the newest; a tie: the finished weights
        meta = read_meta(path)  # the header only: the weights are read once, below
        raw = meta.get("config") or (meta.get("manifest") or {}).get("config")
        cfg = config_from_dict(TrainConfig, raw)
        if cfg.objective != "flow" or cfg.arch != "class":
            return None
        if path == files.checkpoint:
            net = net_from_checkpoint(path, cfg)
        else:
            net, cfg, _ = load_run(folder)
        classifier = load_builtin("classifier", models_dir())[0]
    except (CheckpointError, OSError, KeyError, TypeError, ValueError, AttributeError):
        return None  # not written yet, being replaced or deleted, no classifier: nothing to draw
    with torch_threads(1):  # the run trains on the other cores: do not take them from it
        images, labels = draw(net, cfg, per_digit, seed)
        accuracy = float((classify(classifier, images) == labels).float().mean())
    return {"images": images[:, 0].numpy(), "accuracy": accuracy, "step": int(meta.get("global_step", 0)),
            "seconds": float(meta.get("elapsed_s", 0.0)), "finished": path == files.weights}
