"""The one place the dashboard caches things, for Part A and Part B alike.

``st.cache_resource`` holds models and backends (read-only, shared by every session);
``st.cache_data`` holds results keyed by small parameters (a backend key, seed, t, stride...)
with bounded ``max_entries``. Every function here is a thin wrapper: the work is done by
``dashboard.parta`` (a live Part A model), ``dashboard.pack`` (a precomputed pack) and
``dashboard.partb`` (the Part B models). Long computations take ``_progress`` (not part of the
key) and run through ``ui.run_with_progress``, which feeds a progress bar from it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch
from streamlit.logger import get_logger

from dashboard import viewcache
from dashboard.pack import PackBackend
from dashboard.parta import LiveBackend
from dashboard.parta.contract import Cond, DenoiseComparison, HybridResult, Progress, Region
from dashboard.partb import models_dir
from engine.adapters import MNISTDDPM, MODEL_NAMES, FlowModel, load_builtin
from engine.data import list_photos, load_mnist, load_photo
from engine.deepfloyd.model import DEFAULT_MODEL_ID
from engine.device import cpu_amp
from engine.schedule import Schedule
from engine.trajectory import Trajectory

_log = get_logger(__name__)
LOADED: dict[str, str] = {}  # model name -> folder it was loaded from (for the sidebar)
LOAD_COUNT: dict[str, int] = {}  # model name -> real loads (cache misses) in this process


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True, eq=False)
class LoadedModel:
    name: str
    net: torch.nn.Module
    config: object  # engine.config.TrainConfig
    manifest: dict


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def load_model(name: str, root: str | None = None) -> LoadedModel:
    """A built-in model by name; raises ``engine.adapters.ModelNotFound`` with the fix command."""
    folder = Path(root) if root else models_dir()
    net, cfg, manifest = load_builtin(name, folder)
    net.requires_grad_(False)
    LOADED[name] = str(folder)
    LOAD_COUNT[name] = LOAD_COUNT.get(name, 0) + 1
    # one line per real load in the server log: proves the model is shared, not per session
    _log.info("difflab: loaded model %s from %s (load #%d in this process)", name, folder, LOAD_COUNT[name])
    return LoadedModel(name, net, cfg, manifest)


@st.cache_resource(max_entries=16, show_spinner=False)
def _adapter(kind: str, name: str, root: str):
    """One adapter per model and folder, shared by every session: building one makes the folded
    bf16 copy of the weights (``engine.unet.inference_copy``, ~20 ms), so it is done once."""
    m = load_model(name, root)
    return MNISTDDPM(m.net, amp=cpu_amp()) if kind == "ddpm" else FlowModel(m.net, m.config, cpu_amp())


def ddpm_adapter(name: str = "ddpm-class") -> MNISTDDPM:
    return _adapter("ddpm", name, str(models_dir()))


def flow_adapter(name: str) -> FlowModel:
    return _adapter("flow", name, str(models_dir()))


def available_models() -> dict[str, bool]:
    root = models_dir()
    return {n: (root / n / "model.safetensors").exists() for n in MODEL_NAMES}


# ----------------------------------------------------------------------------- Part A backends


@dataclass(frozen=True)
class DeepFloydConfig:
    """What a loaded DeepFloyd IF depends on; also part of every cached result's key."""

    model: str = DEFAULT_MODEL_ID
    embeddings_dir: str = ""
    allow_cpu: bool = False
    offline: bool = True


@dataclass(frozen=True)
class BackendKey:
    """What a cached Part A result depends on besides its parameters: the kind of backend and
    where its model or pack is ("mnist": the models folder; "deepfloyd": its config; "pack":
    the folder and the stamps of its files)."""

    kind: str
    where: str
    df: DeepFloydConfig | None = None
    stamp: tuple = ()


@st.cache_resource(max_entries=2, show_spinner=False)
def deepfloyd(cfg: DeepFloydConfig, _progress: Progress | None = None):
    """The shared, read-only ``DeepFloydIF`` adapter; raises ``DeepFloydError``. Loaded once,
    through ``ui.run_with_progress`` (a bar that names each stage: finding, reading, moving)."""
    from engine.deepfloyd.model import SlowOnCPUWarning, load_deepfloyd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SlowOnCPUWarning)  # said on the page instead, every run
        return load_deepfloyd(
            cfg.model,
            device="auto",
            allow_cpu=cfg.allow_cpu,
            embeddings_dir=cfg.embeddings_dir or None,
            offline=cfg.offline,
            progress=_progress,
        )


@st.cache_resource(max_entries=16, show_spinner="Importing prompt embeddings…")
def imported_prompts(cfg: DeepFloydConfig, path: str, stamp: tuple) -> tuple[str, ...]:
    """Import a prompt -> embedding file into the model's store once per file version."""
    return tuple(deepfloyd(cfg).embeddings.import_file(path))


@st.cache_resource(max_entries=8, show_spinner="Opening and verifying the pack…")
def open_pack(path: str, stamp: tuple):
    """A verified, read-only ``engine.packs.Pack`` (re-verified when any of its files change)."""
    from engine.packs import open_pack as open_verified

    return open_verified(path)


def backend(key: BackendKey) -> LiveBackend | PackBackend:
    """The Part A backend of ``key``; raises what loading it raises (``ModelNotFound``,
    ``DeepFloydError``, ``PackError``)."""
    if key.kind == "pack":
        return PackBackend(open_pack(key.where, key.stamp))
    if key.kind == "deepfloyd":
        return LiveBackend(deepfloyd(key.df))
    if key.where != str(models_dir()):
        raise RuntimeError("model folder changed while the app was running; reload the page")
    return LiveBackend(ddpm_adapter("ddpm-class"))


# ----------------------------------------------------------------------------- data


@st.cache_data(max_entries=256, show_spinner=False)
@viewcache.on_disk()
def mnist_digit(index: int) -> tuple[np.ndarray, int]:
    """MNIST test image ``index`` as (1, 28, 28) float32 in [0, 1], and its label."""
    test = load_mnist("test")
    index = int(index) % test.images.shape[0]
    return test.images[index].numpy().copy(), int(test.labels[index])


@st.cache_data(max_entries=16, show_spinner=False)
def photo(name: str, size: int = 64) -> np.ndarray:
    """A shipped 64x64 RGB sample photo (3, size, size) in [0, 1] (resized when size != 64)."""
    x = load_photo(name)[None]
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return x[0].clamp(0, 1).numpy().copy()


def photo_names() -> list[str]:
    return list_photos()


@st.cache_data(max_entries=1, show_spinner=False)
def alphas_cumprod() -> np.ndarray:
    """abar_t, t = 0..999, of the cosine schedule every Part A backend uses (IF's own)."""
    return Schedule.cosine().alphas_cumprod.numpy().copy()


@st.cache_data(max_entries=32, show_spinner=False)
def noise_like(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """eps ~ N(0, I) of ``shape`` from a generator seeded with ``seed``."""
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(seed))).numpy()


# ----------------------------------------------------------------------------- Part A results


# Each calls the backend's method of the same name (``parta.PartABackend`` documents them);
# ``_progress`` is not part of the key. Results of the built-in MNIST DDPM are kept on disk too
# (``dashboard.viewcache``): a fresh server serves them at once.


def _builtin_ddpm(arguments: dict) -> tuple[str, ...] | None:
    """The models a Part A result reads: ddpm-class for the built-in backend; None (not kept on
    disk) for a pack (already precomputed) or DeepFloyd."""
    return ("ddpm-class",) if arguments["key"].kind == "mnist" else None


@st.cache_data(max_entries=24, show_spinner=False)
@viewcache.on_disk(_builtin_ddpm, drop=("key",))
def sample(
    key: BackendKey,
    conds: tuple[Cond, ...],
    seed: int,
    stride: int,
    gamma: float,
    sampler: str = "ddpm",
    steps: int | None = None,
    _progress: Progress | None = None,
) -> Trajectory:
    """A1.5/A1.6 and Part 0: from pure noise with CFG, the course's loop or a fast sampler."""
    return backend(key).sample(conds, seed, stride, gamma, sampler, steps, progress=_progress)


@st.cache_data(max_entries=8, show_spinner=False)
@viewcache.on_disk(_builtin_ddpm, drop=("key",))
def grid(
    key: BackendKey,
    conds: tuple[Cond, ...],
    strides: tuple[int, ...],
    seed: int,
    gamma: float,
    _progress: Progress | None = None,
) -> np.ndarray:
    """Part 0's figure: each prompt at each step count."""
    return backend(key).grid(conds, strides, seed, gamma, progress=_progress)


@st.cache_data(max_entries=32, show_spinner=False)
@viewcache.on_disk(_builtin_ddpm, drop=("key",))
def denoise(
    key: BackendKey,
    x_0: np.ndarray,
    cond: Cond,
    t: int,
    seed: int,
    stride: int,
    kernel: int,
    sigma: float | None,
    _progress: Progress | None = None,
) -> DenoiseComparison:
    """A1.2-A1.4: blur, one step and the loop from one x_t."""
    return backend(key).denoise(x_0, cond, t, seed, stride, kernel, sigma, progress=_progress)


@st.cache_data(max_entries=16, show_spinner=False)
@viewcache.on_disk(_builtin_ddpm, drop=("key",))
def psnr_curve(
    key: BackendKey,
    x_0: np.ndarray,
    cond: Cond,
    seed: int,
    stride: int,
    ts: tuple[int, ...],
    _progress: Progress | None = None,
) -> dict[str, list[float]]:
    """PSNR against t."""
    return backend(key).psnr_curve(x_0, cond, seed, stride, ts, progress=_progress)


@st.cache_data(max_entries=16, show_spinner=False)
@viewcache.on_disk(_builtin_ddpm, drop=("key",))
def sdedit(
    key: BackendKey,
    x_0: np.ndarray,
    cond: Cond,
    seed: int,
    stride: int,
    gamma: float,
    i_starts: tuple[int, ...],
    _progress: Progress | None = None,
) -> tuple[np.ndarray, list[int]]:
    """A1.7: one edit per i_start, and its t."""
    return backend(key).sdedit(x_0, cond, seed, stride, gamma, i_starts, progress=_progress)


@st.cache_data(max_entries=16, show_spinner=False)
@viewcache.on_disk(_builtin_ddpm, drop=("key",))
def inpaint(
    key: BackendKey,
    x_0: np.ndarray,
    region: Region,
    cond: Cond,
    seed: int,
    stride: int,
    gamma: float,
    _progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A1.7.2: RePaint; (result, mask)."""
    return backend(key).inpaint(x_0, region, cond, seed, stride, gamma, progress=_progress)


@st.cache_data(max_entries=16, show_spinner=False)
@viewcache.on_disk(_builtin_ddpm, drop=("key",))
def anagram(
    key: BackendKey,
    conds: tuple[Cond, ...],
    views: tuple[str, ...],
    count: int,
    seed: int,
    stride: int,
    gamma: float,
    _progress: Progress | None = None,
) -> np.ndarray:
    """A1.8: 2-4 conditions and their views."""
    return backend(key).anagram(conds, views, count, seed, stride, gamma, progress=_progress)


@st.cache_data(max_entries=16, show_spinner=False)
@viewcache.on_disk(_builtin_ddpm, drop=("key",))
def hybrid(
    key: BackendKey,
    far: Cond,
    near: Cond,
    kernel: int,
    sigma: float,
    count: int,
    seed: int,
    stride: int,
    gamma: float,
    _progress: Progress | None = None,
) -> HybridResult:
    """A1.9: low frequencies of ``far``, high ones of ``near``."""
    return backend(key).hybrid(far, near, kernel, sigma, count, seed, stride, gamma, progress=_progress)


@st.cache_data(max_entries=4, show_spinner="Stage II: upscaling to 256×256…")
def stage2_upscale(key: BackendKey, images: np.ndarray, prompt: str, seed: int) -> np.ndarray:
    """Display only: IF stage II on stage I's (N, 3, 64, 64) [0, 1] images -> (N, 3, 256, 256).
    Needs the IF-II-L weights (and in practice a GPU); raises ``DeepFloydError``."""
    from engine.deepfloyd.model import upscale_stage2

    model = deepfloyd(key.df)
    n = images.shape[0]
    x = torch.as_tensor(images) * 2 - 1
    gen = torch.Generator().manual_seed(int(seed))
    return upscale_stage2(x, model.encode([prompt] * n), model.null_cond(n), generator=gen).numpy()
