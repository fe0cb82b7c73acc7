"""Part B, computed: what the Part B pages show, from the built-in models and their run files.

Conventions, as on the pages. Single-step denoiser (B1): z = x + sigma eps, D_theta(z) ~ x.
Flow matching (B2, Lipman et al.): x_0 ~ N(0, I) is noise, x_1 is data, t runs 0 -> 1 and the
clean estimate is x1_hat = x_t + (1 - t) u. DDPM (Part A): x_0 is the clean image and t counts
*down* from 999; pixels live in [-1, 1]. The two ts are opposite.

Plain functions of a network (or an adapter) and small parameters, returning numpy; no
Streamlit: ``dashboard.cache`` caches them, the pages render them. Trajectories are the
engine's ``Trajectory``, in [0, 1] pixel units.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dashboard.curves import Curve
from dashboard.parta import Progress, step_progress
from engine.adapters import (
    MNISTDDPM,
    MODEL_NAMES,
    MODELS_DIR,
    model_path,
    quality_summary,
    read_manifest,
    read_quality,
)
from engine.checkpoints import atomic_write_text, load_tensors
from engine.course import DDPM_GUIDANCE, SIGMA_GRID, STRIDE
from engine.data import load_mnist, mnist_mean_image
from engine.device import cpu_amp
from engine.fewer_steps import fastest_within  # noqa: F401  -- the pages pick the point to name
from engine.flow import crowded_grid
from engine.forward import add_noise_sigma
from engine.metrics import psnr
from engine.runs import RunFiles, read_log
from engine.sampling import default_guidance, digit_labels, sample_ddpm, sample_flow
from engine.schedule import strided_timesteps
from engine.trajectory import Trajectory

SWEEP_SIGMAS = tuple(round(0.1 * i, 2) for i in range(11))
__all__ = ["SIGMA_GRID", "SWEEP_SIGMAS"]


# ----------------------------------------------------------------------------- models and run files


def models_dir() -> Path:
    """Shipped models, or ``DIFFLAB_MODELS_DIR`` (tests and development point it elsewhere)."""
    return Path(os.environ.get("DIFFLAB_MODELS_DIR", MODELS_DIR))


def model_folder(name: str) -> Path:
    return models_dir() / name


def stamp(name: str) -> float:
    """The weights file's mtime (0 when missing): part of every cache key, so a model that
    finishes training is picked up without a restart."""
    try:
        return model_path(name, models_dir()).stat().st_mtime
    except OSError:
        return 0.0


def snapshot_epochs(name: str) -> list[int]:
    """Epochs with a saved snapshot (``snapshots/epoch_XX.safetensors``), ascending."""
    return RunFiles(model_folder(name)).snapshot_epochs()


def app_dir() -> Path:
    """What the app computes and keeps (``DIFFLAB_APP_DIR``, default cache/app; not shipped)."""
    return Path(os.environ.get("DIFFLAB_APP_DIR", MODELS_DIR.parent / "app"))


def fewer_steps_reports(name: str) -> dict[str, dict]:
    """The quality-against-NFE curves of model ``name``: "shipped" (beside the model, made by
    ``python -m engine fewer-steps``) and "this machine" (measured from the page), where present."""
    out = {}
    for label, path in (("shipped", model_folder(name) / "fewer_steps.json"),
                        ("this machine", app_dir() / "fewer_steps" / f"{name}.json")):
        try:
            report = json.loads(path.read_text())
            if isinstance(report, dict) and isinstance(report.get("points"), list) and report["points"]:
                out[label] = report
        except (OSError, ValueError):
            continue
    return out


def time_grid_report(name: str = "flow-class") -> dict | None:
    """The shipped time-grid measurement (``scripts/flow_time_grids.py``): FD and accuracy of
    few-step solvers on a uniform grid and on grids crowded near t = 1 or t = 0; None if missing."""
    try:
        report = json.loads((model_folder(name) / "time_grids.json").read_text())
        return report if isinstance(report, dict) and isinstance(report.get("rows"), list) else None
    except (OSError, ValueError):
        return None


def save_fewer_steps(name: str, report: dict) -> Path:
    """Keep a report measured on this machine (atomically) for the page to show."""
    path = app_dir() / "fewer_steps" / f"{name}.json"
    atomic_write_text(path, json.dumps(report, indent=1) + "\n")
    return path


def model_table(loaded: dict) -> list[dict]:
    """One row per built-in model for Home: on disk or missing (with the command that trains
    it), final loss, quality (from ``quality.json``), epochs, where and how long it trained."""
    root, rows = models_dir(), []
    for name in MODEL_NAMES:
        m = read_manifest(name, root)
        if m is None:
            rows.append(
                {
                    "model": name,
                    "status": "missing",
                    "final loss": None,
                    "quality": None,
                    "epochs": None,
                    "trained on": None,
                    "command": f"python -m engine train {name} --out {root / name}",
                }
            )
            continue
        rows.append(
            {
                "model": name,
                "status": "loaded" if name in loaded else "on disk",
                "final loss": m.get("final_loss"),
                "quality": quality_summary(read_quality(name, root)) or "not measured yet",
                "epochs": m.get("config", {}).get("epochs"),
                "trained on": f"{m.get('machine', '?')}, {m.get('wall_time_s', '?')} s",
                "command": m.get("command"),
            }
        )
    return rows


def read_snapshot(path: Path) -> tuple[dict, dict]:
    """Arrays (float32 numpy) and meta of one snapshot file."""
    tensors, meta = load_tensors(path)
    return {k: v.float().numpy() for k, v in tensors.items()}, meta


def read_curve(path: Path, label: str) -> Curve | None:
    """The log at ``path`` as a ``Curve``; None when it is missing or empty."""
    recs = read_log(Path(path))
    if not recs:
        return None
    cols = [
        np.array([r.get(k, np.nan) for r in recs], dtype=np.float64) for k in ("step", "epoch", "loss", "lr")
    ]
    return Curve(label, *cols)


def read_lr_sweep(path: Path) -> dict | None:
    """The constant-LR sweep summary (scripts/lr_sweep_summary.py), or None when it is missing
    or not readable: the page then leaves the chart out."""
    try:
        data = json.loads(path.read_text())
        runs = [(float(r["lr"]), [float(v) for v in r["epoch_mean_loss"]]) for r in data["runs"]]
        accuracy = {float(r["lr"]): float(r["accuracy"]) for r in data["runs"] if "accuracy" in r}
        ref = data.get("reference") or {}
        ref_curve = [float(v) for v in ref.get("epoch_mean_loss", [])]
        return {
            "runs": runs,
            "reference": ref_curve,
            "chosen_lr": float(data["chosen_lr"]),
            "accuracy": accuracy,
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ----------------------------------------------------------------------------- B1: denoiser


@dataclass(frozen=True)
class DenoiseGrid:
    sigmas: np.ndarray  # (S,)
    clean: np.ndarray  # (N, 28, 28) in [0, 1]
    noisy: np.ndarray  # (S, N, 28, 28), unclamped
    denoised: np.ndarray  # (S, N, 28, 28)
    psnr_noisy: np.ndarray  # (S,) over the N digits
    psnr_denoised: np.ndarray


def _run_denoiser(net: torch.nn.Module, z: torch.Tensor, batch: int = 128) -> torch.Tensor:
    amp = cpu_amp()
    with torch.inference_mode(), torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
        return torch.cat([net(b).float() for b in z.split(batch)])


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(min(psnr(a.clamp(0, 1), b), 99.0))


def denoise_grid(net: torch.nn.Module, sigmas: tuple[float, ...], count: int, seed: int) -> DenoiseGrid:
    """``count`` random test digits (chosen by ``seed``), noised at each sigma with the same
    eps (z = x + sigma eps), and the denoiser's D(z)."""
    gen = torch.Generator().manual_seed(int(seed))
    test = load_mnist("test")
    clean = test.images[torch.randperm(test.images.shape[0], generator=gen)[:count]]
    eps = torch.randn(clean.shape, generator=gen)
    noisy = torch.stack([add_noise_sigma(clean, s, noise=eps) for s in sigmas])
    den = _run_denoiser(net, noisy.flatten(0, 1)).reshape(noisy.shape)
    return DenoiseGrid(
        np.array(sigmas, dtype=np.float32),
        clean[:, 0].numpy(),
        noisy[:, :, 0].numpy(),
        den[:, :, 0].numpy(),
        np.array([_psnr(noisy[i], clean) for i in range(len(sigmas))]),
        np.array([_psnr(den[i], clean) for i in range(len(sigmas))]),
    )


@dataclass(frozen=True)
class PureNoiseResult:
    noise: np.ndarray  # (N, 28, 28)
    outputs: np.ndarray  # (N, 28, 28) D(eps)
    mean: np.ndarray  # (28, 28) E[x] over the training set
    rms: np.ndarray  # (N,) RMS(D(eps_i) - E[x])
    rms_of_average: float  # RMS(mean_i D(eps_i) - E[x])


def pure_noise(net: torch.nn.Module, count: int, seed: int) -> PureNoiseResult:
    """The pure-noise model (trained on z = eps) on ``count`` draws of eps, against the
    training-set mean image: the L2-optimal answer when the input carries no information."""
    eps = torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(int(seed)))
    out = _run_denoiser(net, eps)[:, 0].numpy()
    mean = mnist_mean_image()[0].numpy()
    rms = np.sqrt(((out - mean) ** 2).reshape(count, -1).mean(1))
    return PureNoiseResult(
        eps[:, 0].numpy(), out, mean, rms, float(np.sqrt(((out.mean(0) - mean) ** 2).mean()))
    )


def rms(a: np.ndarray, b: np.ndarray | float, axis=None) -> np.ndarray:
    """Root mean square difference (over ``axis``; all of it by default)."""
    return np.sqrt(((np.asarray(a) - np.asarray(b)) ** 2).mean(axis=axis))


# ----------------------------------------------------------------------------- B2: flow


def flow_samples(
    flow,
    guidance: float | None,
    steps: int,
    seed: int,
    per_digit: int,
    max_frames: int = 48,
    sampler: str = "euler",
    progress: Progress | None = None,
) -> Trajectory:
    """``per_digit`` samples of each digit (class model, CFG ``guidance``) or 10 * per_digit
    unconditional samples (time model) with ``steps`` steps of ``sampler`` (the course: Euler);
    seeded noise. The trajectory at ``max_frames`` states, float32 numpy in flow pixel units (not
    clipped, so the velocity can be read back from it: see ``flow_speed``)."""
    labels = digit_labels(range(10), per_digit)
    traj = sample_flow(
        flow,
        labels if flow.class_conditioned else None,
        len(labels),
        steps,
        guidance if flow.class_conditioned else None,
        torch.Generator().manual_seed(int(seed)),
        callback=step_progress(progress, "Euler step" if sampler == "euler" else f"{sampler} step"),
        sampler=sampler,
    )
    traj = traj.subsample(max_frames)
    return replace(traj, x=traj.x.numpy(), x_hat=traj.x_hat.numpy())


def flow_speed(traj: Trajectory) -> np.ndarray:
    """Mean |u| per state: x1_hat - x_t = (1 - t) u, so u comes back from a flow trajectory.
    At t = 1 (no step left) the last step's speed is repeated."""
    t = np.asarray(traj.times, dtype=np.float64)
    u = np.abs(traj.x_hat - traj.x).reshape(len(t), -1).mean(1) / np.maximum(1 - t, 1e-12)
    if len(u) > 1 and t[-1] >= 1:
        u[-1] = u[-2]
    return u


def ddpm_vs_flow(
    ddpm,
    flow,
    digit: int,
    count: int,
    seed: int,
    ddpm_stride: int,
    ddpm_guidance: float,
    flow_steps: int,
    flow_guidance: float,
    ddpm_sampler: str = "ddpm",
    ddpm_steps: int | None = None,
    flow_sampler: str = "euler",
    max_frames: int = 48,
    progress: Progress | None = None,
) -> tuple[Trajectory, Trajectory, bool]:
    """Both models from the same seed (so the same starting noise), same digit: the DDPM
    trajectory (the course's strided loop, or DDIM / DPM-Solver++ in ``ddpm_steps``) and the flow
    trajectory (``flow_sampler``) in [0, 1], and whether both started from one tensor."""
    labels = torch.full((count,), int(digit), dtype=torch.long)
    n_ddpm = len(strided_timesteps(ddpm_stride)) - 1 if ddpm_sampler == "ddpm" else ddpm_steps or 20
    total = n_ddpm + flow_steps
    gen = lambda: torch.Generator().manual_seed(int(seed))  # noqa: E731  -- the same noise for both
    d = sample_ddpm(
        ddpm,
        labels,
        ddpm_stride,
        ddpm_guidance,
        gen(),
        step_progress(progress, "DDPM step", 0, total),
        sampler=ddpm_sampler,
        steps=ddpm_steps,
    )
    f = sample_flow(
        flow,
        labels,
        count,
        flow_steps,
        flow_guidance,
        gen(),
        step_progress(progress, "Euler step", total - flow_steps, total),
        sampler=flow_sampler,
    )
    # DDPM's x_T is in [-1, 1] units, flow's x_0 in [0, 1] units: the same tensor of N(0, I) draws.
    return d.to_unit(), f.subsample(max_frames).to_unit(), bool(torch.equal(d.x[0], f.x[0]))


TIME_GRIDS = {"uniform": "uniform", "crowded": "crowded near t = 1"}


def compare_samplers(
    model, samplers: tuple[str, ...], steps: int, seed: int, per_digit: int, progress: Progress | None = None,
    grid: str = "uniform",
) -> dict[str, tuple[Trajectory, float]]:
    """The same starting noise (same seed) through each sampler at ``steps`` steps: sampler ->
    (the samples as a [0, 1] trajectory holding the final state, and the seconds it took). A
    class model gets ``per_digit`` digits of each class with its default CFG scale (the
    course's; 1 for a model with guidance baked in). A flow's steps are on the ``grid``
    "uniform" (the course's) or "crowded" near t = 1 (``engine.flow.crowded_grid``)."""
    if grid not in TIME_GRIDS:
        raise ValueError(f"grid must be one of {list(TIME_GRIDS)}, got {grid!r}")
    kind = "ddpm" if isinstance(model, MNISTDDPM) else "flow"
    conditional = kind == "ddpm" or model.class_conditioned
    labels = digit_labels(range(10), per_digit)
    out = {}
    for k, sampler in enumerate(samplers):
        report = (
            None
            if progress is None
            else (
                lambda s, k=k, name=sampler: progress(
                    (k + (s.i + 1) / s.n) / len(samplers), f"{name}: step {s.i + 1} of {s.n}"
                )
            )
        )
        gen = torch.Generator().manual_seed(int(seed))
        t0 = time.perf_counter()
        if kind == "ddpm":
            traj = sample_ddpm(
                model, labels, STRIDE, DDPM_GUIDANCE, gen, report, False, sampler=sampler, steps=steps
            )
        else:
            traj = sample_flow(
                model,
                labels if conditional else None,
                len(labels),
                steps,
                default_guidance(model.config) if conditional else None,
                gen,
                report,
                False,
                sampler=sampler,
                ts=crowded_grid(steps) if grid == "crowded" else None,
            )
        out[sampler] = (traj.to_unit(), round(time.perf_counter() - t0, 2))
    return out


def align_frames(n_a: int, n_b: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs so both trajectories run from start to end over the same number of frames
    (by fraction of the way, not by t: the two t axes mean different things)."""
    n = n or max(n_a, n_b)
    u = np.linspace(0, 1, n)
    return np.round(u * (n_a - 1)).astype(int), np.round(u * (n_b - 1)).astype(int)
