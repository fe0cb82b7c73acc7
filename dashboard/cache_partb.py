"""Part B's cached results: training snapshots and logs, the denoiser's grids, flow samples,
sampler comparisons and DDPM vs flow. Same rules as ``dashboard.cache`` (which holds the models
these use): thin wrappers over ``dashboard.partb``, keyed by small parameters and the model files'
mtimes, with ``_progress`` outside the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from dashboard import partb, previews, viewcache
from dashboard.cache import ddpm_adapter, flow_adapter, load_model, mnist_digit
from dashboard.parta.contract import Progress
from dashboard.partb import models_dir
from engine.checkpoints import CheckpointError
from engine.runs import RunFiles
from engine.trajectory import Trajectory


@st.cache_data(max_entries=32, show_spinner=False)
def snapshot(name: str, epoch: int, root: str, mtime: float) -> tuple[dict, dict]:
    """Arrays and meta of one training snapshot (keyed by the file's mtime)."""
    return partb.read_snapshot(RunFiles(Path(root) / name).snapshot(epoch))


def load_snapshot(name: str, epoch: int) -> tuple[dict, dict] | None:
    """A shipped model's epoch snapshot (arrays, meta), or None when missing or unreadable."""
    path = RunFiles(partb.model_folder(name)).snapshot(epoch)
    try:
        return snapshot(name, epoch, str(models_dir()), path.stat().st_mtime)
    except (OSError, CheckpointError):
        return None


@st.cache_data(max_entries=64, show_spinner=False)
def _curve(path: str, label: str, mtime: float, size: int):
    return partb.read_curve(Path(path), label)


def curve(path: Path, label: str):
    """A training log as a ``Curve``, re-read when the file grows; None when missing or empty."""
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return _curve(str(path), label, info.st_mtime, info.st_size)


def model_curve(name: str, label: str | None = None):
    """The training log of shipped model ``name``."""
    return curve(RunFiles(partb.model_folder(name)).log, label or name)


@st.cache_data(max_entries=16, show_spinner=False)
@viewcache.on_disk(("denoiser",), drop=("root", "mtime"))
def denoise_grid(
    sigmas: tuple[float, ...], count: int, seed: int, root: str, mtime: float
) -> partb.DenoiseGrid:
    return partb.denoise_grid(load_model("denoiser", root).net, sigmas, count, seed)


@st.cache_data(max_entries=8, show_spinner=False)
@viewcache.on_disk(("denoiser-pure-noise",), drop=("root", "mtime"))
def pure_noise(count: int, seed: int, root: str, mtime: float) -> partb.PureNoiseResult:
    return partb.pure_noise(load_model("denoiser-pure-noise", root).net, count, seed)


@st.cache_data(max_entries=8, show_spinner=False)
@viewcache.on_disk(lambda a: (a["name"],), drop=("root", "mtime"))
def flow_samples(
    name: str,
    root: str,
    mtime: float,
    guidance: float | None,
    steps: int,
    seed: int,
    per_digit: int,
    max_frames: int = 48,
    sampler: str = "euler",
    _progress: Progress | None = None,
) -> Trajectory:
    """B2: samples of model ``name`` (CFG for the class model) and their trajectory at
    ``max_frames`` states (``partb.flow_samples``)."""
    return partb.flow_samples(
        flow_adapter(name), guidance, steps, seed, per_digit, max_frames, sampler, progress=_progress
    )


@st.cache_data(max_entries=8, show_spinner=False)
def run_preview(folder: str, stamp: float) -> dict | None:
    """The Training lab's live grid: what the run in ``folder`` draws with its weights of time
    ``stamp`` (``previews.run_preview``); recomputed only when the run writes new weights."""
    return previews.run_preview(Path(folder))


@st.cache_data(max_entries=16, show_spinner=False)
@viewcache.on_disk((previews.ONE_STEP,), drop=("root", "mtime"))
def one_step(labels: tuple[int, ...], seed: int, root: str, mtime: float, steps: int = 1,
             _progress: Progress | None = None):
    """Digits ``labels`` from the one-step model (``previews.one_step_samples``): (images, s, NFE)."""
    return previews.one_step_samples(flow_adapter(previews.ONE_STEP), labels, seed, steps)


@st.cache_data(max_entries=16, show_spinner=False)
@viewcache.on_disk(lambda a: (a["name"],), drop=("root", "mtime"))
def compare_samplers(
    name: str,
    root: str,
    mtime: float,
    samplers: tuple[str, ...],
    steps: int,
    seed: int,
    per_digit: int,
    grid: str = "uniform",
    _progress: Progress | None = None,
) -> dict[str, tuple[Trajectory, float]]:
    """Fewer steps: the same noise through each sampler (``partb.compare_samplers``)."""
    model = ddpm_adapter(name) if name.startswith("ddpm") else flow_adapter(name)
    return partb.compare_samplers(model, samplers, steps, seed, per_digit, progress=_progress, grid=grid)


def sweep_stamps(name: str) -> tuple[float, ...]:
    """What a Fewer steps measurement of ``name`` depends on: its weights and, for a distilled
    model, its teacher's (which it samples too)."""
    from engine.adapters import read_manifest
    from engine.fewer_steps import teacher_of

    teacher = teacher_of(None, read_manifest(name, models_dir()) or {})
    return (partb.stamp(name),) + ((partb.stamp(teacher),) if teacher else ())


@st.cache_data(max_entries=4, show_spinner=False)
def fewer_steps_sweep(
    name: str, root: str, stamps: tuple[float, ...], samples: int, quick: bool,
    _progress: Progress | None = None,
) -> dict:
    """The quality-against-NFE curves, measured on this machine (``engine.fewer_steps.sweep``);
    ``stamps``: ``sweep_stamps(name)``, so a retrained teacher is measured again too."""
    from engine.fewer_steps import sweep

    return sweep(name, samples, 0, quick, Path(root), _progress)


@st.cache_data(max_entries=8, show_spinner=False)
@viewcache.on_disk(("ddpm-class", "flow-class"), drop=("root", "mtimes"))
def ddpm_vs_flow(
    root: str,
    mtimes: tuple[float, float],
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
    _progress: Progress | None = None,
) -> tuple[Trajectory, Trajectory, bool]:
    """``partb.ddpm_vs_flow`` on the shipped ddpm-class and flow-class (``mtimes`` key their files)."""
    ddpm, flow = ddpm_adapter("ddpm-class"), flow_adapter("flow-class")
    return partb.ddpm_vs_flow(
        ddpm, flow, digit, count, seed, ddpm_stride, ddpm_guidance, flow_steps, flow_guidance,
        ddpm_sampler, ddpm_steps, flow_sampler, progress=_progress,
    )


@st.cache_data(max_entries=32, show_spinner=False)
def likelihood(kind: str, index: int, seed: int, root: str, mtime: float, image: np.ndarray | None = None,
               _progress: Progress | None = None):
    """"How likely?": (the scored (28, 28) image, its bits/dim result) for input ``kind`` made
    from test digit ``index`` (``dashboard.likelihood``), or for ``image`` (28, 28) in [0, 1] (a
    drawing, an upload) when given, under the flow-class in ``root``."""
    from dashboard import likelihood as lk

    if image is None:
        image = lk.make_input(kind, mnist_digit(index)[0][0], seed)
    image = np.asarray(image, np.float32).reshape(28, 28).clip(0, 1)
    return image, lk.score(load_model(lk.MODEL, root).net, image, seed, _progress)
