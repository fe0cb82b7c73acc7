"""The one place the dashboard caches things.

``st.cache_resource`` holds models (read-only, shared by every session); ``st.cache_data``
holds arrays keyed by small parameters (model key, seed, t, stride...) with bounded
``max_entries``. Everything else in the dashboard calls these instead of the engine directly.

Part A pages reach their model only through ``part_a_model(backend)``: the built-in
class-conditioned MNIST DDPM ("ddpm-class", conditions are class ints) or DeepFloyd IF stage I
(``dashboard.backends``, conditions are prompt strings; "" is the null prompt). The same cached
functions serve both: a condition is an int, a str or None. A third choice, a precomputed pack,
has no model: pages show its arrays. Randomness always comes from a ``torch.Generator`` seeded
with the page's seed, never ``torch.manual_seed``.

Convention (DDPM, Part A): x_0 is the clean image, t counts down from 999 to 0. Images travel
as float32 numpy arrays in [0, 1]; they are mapped to the model's ``value_range`` ([-1, 1] for
ddpm-class) right before the model and back right after.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch
from streamlit.logger import get_logger

from dashboard import backends
from engine.data import list_photos, load_mnist, load_photo
from engine.denoise import best_blur_sigma, gaussian_blur, iterative_denoise, one_step_denoise
from engine.editing import SDEDIT_I_STARTS, inpaint, rectangle_mask, sdedit
from engine.forward import forward
from engine.guidance import CFGModel
from engine.illusions import AnagramModel, HybridModel, fft_magnitude, get_view
from engine.metrics import psnr, ssim
from engine.models import MNISTDDPM, MODEL_NAMES, MODELS_DIR, FlowModel, ModelSpec, load_builtin
from engine.schedule import Schedule, strided_timesteps
from engine.train import TrainConfig, cpu_amp

# ----------------------------------------------------------------------------- models


def models_dir() -> Path:
    """Shipped models, or ``DIFFLAB_MODELS_DIR`` (tests and development point it elsewhere)."""
    return Path(os.environ.get("DIFFLAB_MODELS_DIR", MODELS_DIR))


@dataclass(frozen=True, eq=False)
class LoadedModel:
    name: str
    net: torch.nn.Module
    config: TrainConfig
    manifest: dict


_LOADED: dict[str, str] = {}  # model name -> folder it was loaded from (for the sidebar)
LOAD_COUNT: dict[str, int] = {}  # model name -> times actually loaded (cache misses) in this process
_log = get_logger(__name__)


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def load_model(name: str, root: str | None = None) -> LoadedModel:
    """A built-in model by name; raises ``engine.models.ModelNotFound`` with the fix command."""
    folder = Path(root) if root else models_dir()
    net, cfg, manifest = load_builtin(name, folder)
    for p in net.parameters():
        p.requires_grad_(False)
    _LOADED[name] = str(folder)
    LOAD_COUNT[name] = LOAD_COUNT.get(name, 0) + 1
    # one line per real load in the server log: proves the model is shared, not per session
    _log.info("difflab: loaded model %s from %s (load #%d in this process)", name, folder, LOAD_COUNT[name])
    return LoadedModel(name, net, cfg, manifest)


def loaded_models() -> dict[str, str]:
    return dict(_LOADED)


def amp_dtype() -> torch.dtype | None:
    return cpu_amp()


@st.cache_resource(max_entries=16, show_spinner=False)
def _adapter(kind: str, name: str, root: str):
    """One adapter per model and folder, shared by every session: building one makes the folded
    bf16 copy of the weights (``engine.unet.inference_copy``, ~20 ms), so it is done once."""
    m = load_model(name, root)
    if kind == "ddpm":
        return MNISTDDPM(m.net, amp=amp_dtype())
    return FlowModel(m.net, m.config, amp_dtype())


def ddpm_adapter(name: str = "ddpm-class") -> MNISTDDPM:
    return _adapter("ddpm", name, str(models_dir()))


def flow_adapter(name: str) -> FlowModel:
    return _adapter("flow", name, str(models_dir()))


def available_models() -> dict[str, bool]:
    root = models_dir()
    return {n: (root / n / "model.safetensors").exists() for n in MODEL_NAMES}


# ----------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class Backend:
    key: str
    label: str
    models: tuple[str, ...]
    spec: ModelSpec


BACKENDS: dict[str, Backend] = {
    "mnist": Backend(
        "mnist",
        "Built-in MNIST DDPM (ddpm-class)",
        ("ddpm-class",),
        MNISTDDPM.spec,
    ),
    "deepfloyd": Backend(
        "deepfloyd",
        "DeepFloyd IF (stage I)",
        ("DeepFloyd/IF-I-XL-v1.0",),
        ModelSpec("DeepFloyd/IF-I-XL-v1.0", "ddpm", 64, 3, (-1.0, 1.0), "text"),
    ),
    "pack": Backend(
        "pack",
        "Precomputed pack (DeepFloyd IF figures)",
        (),
        ModelSpec("pack", "ddpm", 64, 3, (0.0, 1.0), "text"),
    ),
}
DEFAULT_BACKEND = "mnist"


def active() -> backends.Active:
    """The backend this run uses (loading DeepFloyd IF or opening a pack, cached)."""
    return backends.resolve()


def active_backend() -> str:
    """The backend in use: the sidebar's choice, or "mnist" when that choice failed."""
    return active().backend


def part_a_model(backend: str | None = None, df: backends.DeepFloydConfig | None = None):
    """The Part A model of a backend: a callable ``(x_t, t, cond) -> eps`` (or [eps, v]) with
    ``.spec``, ``.schedule``, ``.encode(conds)`` and ``.null_cond(n)``. Raises ``ModelNotFound``
    (built-in) or ``DeepFloydError``; a pack has no model (ValueError)."""
    if backend is None:
        a = active()
        backend, df = a.backend, a.df
    if backend == "mnist":
        return ddpm_adapter("ddpm-class")
    if backend == "deepfloyd":
        return backends.deepfloyd(df or backends.deepfloyd_config())
    raise ValueError(f"backend {backend!r} has no model")


@dataclass(frozen=True)
class ModelKey:
    """What a cached result depends on besides its parameters: backend, weights folder and,
    for DeepFloyd IF, the model id and embedding store."""

    backend: str
    root: str
    df: backends.DeepFloydConfig | None = None


def model_key(backend: str | backends.Active | None = None) -> ModelKey:
    a = backend if isinstance(backend, backends.Active) else None
    if backend is None:
        a = active()
    if a is not None:
        return ModelKey(a.backend, str(models_dir()), a.df)
    return ModelKey(backend, str(models_dir()))


def _model(key: ModelKey):
    if key.root != str(models_dir()):
        raise RuntimeError("model folder changed while the app was running; reload the page")
    return part_a_model(key.backend, key.df)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _to_model(x: np.ndarray, spec: ModelSpec) -> torch.Tensor:
    lo, hi = spec.value_range
    return torch.as_tensor(np.asarray(x, dtype=np.float32)) * (hi - lo) + lo


def _from_model(x: torch.Tensor, spec: ModelSpec) -> np.ndarray:
    lo, hi = spec.value_range
    return ((x.float() - lo) / (hi - lo)).clamp(0, 1).cpu().numpy()


Cond = int | str | None  # a class (built-in), a prompt (DeepFloyd IF); None, -1 or "": null


def _cond(model, label: Cond, n: int) -> torch.Tensor:
    """The condition for ``n`` images: one-hot class, stored prompt embedding, or null."""
    if label is None or label == "" or (not isinstance(label, str) and int(label) < 0):
        return model.null_cond(n)
    if isinstance(label, str):
        return model.encode([label] * n)
    return model.encode(torch.full((n,), int(label), dtype=torch.long))


def _guided(model, gamma: float):
    return CFGModel(model, model.null_cond(1), float(gamma), model.spec.channels)


# ----------------------------------------------------------------------------- data


@st.cache_data(max_entries=256, show_spinner=False)
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


@st.cache_data(max_entries=4, show_spinner=False)
def alphas_cumprod(backend: str = DEFAULT_BACKEND) -> np.ndarray:
    """abar_t, t = 0..999, of the backend's schedule (no model weights needed)."""
    return Schedule.cosine().alphas_cumprod.numpy().copy()


@st.cache_data(max_entries=32, show_spinner=False)
def noise_like(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """eps ~ N(0, I) of ``shape`` from a generator seeded with ``seed``."""
    return torch.randn(tuple(shape), generator=_gen(seed)).numpy()


def forward_image(x_0: np.ndarray, eps: np.ndarray, abar: float) -> np.ndarray:
    """Eq. A.2 on [0, 1] images: x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps in [-1, 1] units,
    shown back in [0, 1]. Cheap; not cached."""
    x = np.sqrt(abar) * (np.asarray(x_0) * 2 - 1) + np.sqrt(1 - abar) * np.asarray(eps)
    return np.clip((x + 1) / 2, 0, 1)


# ----------------------------------------------------------------------------- A1.2-A1.4


@dataclass(frozen=True)
class DenoiseComparison:
    """Images (1, H, W) in [0, 1] at matched noise; ``metrics[name] = (psnr, ssim)`` vs clean."""

    t: int
    noisy: np.ndarray
    blurred: np.ndarray
    one_step: np.ndarray
    iterative: np.ndarray
    iterative_steps: np.ndarray  # (K, C, H, W): x every 5th step of the loop, then the result
    iterative_ts: list[int]
    blur_sigma: float
    blur_kernel: int
    metrics: dict[str, tuple[float, float]]


def _blur_kernel_for(sigma: float, size: int) -> int:
    k = 2 * int(3 * sigma + 0.5) + 1
    return min(k, 2 * ((size - 1) // 2) + 1)


def _methods(
    model,
    x_0: torch.Tensor,
    label,
    t: int,
    seed: int,
    stride: int,
    blur_kernel: int,
    blur_sigma: float | None,
):
    """Shared by the comparison and the PSNR curve: same eps for every method at this t."""
    spec = model.spec
    gen = _gen(seed)
    eps = torch.randn(x_0.shape, generator=gen)
    x_t = forward(x_0, t, model.schedule, noise=eps)
    lo, hi = spec.value_range
    if blur_sigma is None:  # the best case for blurring: pick sigma with the answer
        blur_sigma, _ = best_blur_sigma(x_t, x_0, data_range=(hi - lo) / 2)
        blur_kernel = _blur_kernel_for(blur_sigma, x_0.shape[-1])
    blurred = gaussian_blur(x_t, blur_kernel, blur_sigma)
    cond = _cond(model, label, x_0.shape[0])
    one = one_step_denoise(model, x_t, t, model.schedule, cond)
    ts = strided_timesteps(stride, start=t) if t > 0 else [0]
    if len(ts) >= 2:
        traj = iterative_denoise(model, x_t, 0, ts, model.schedule, cond, gen)
    else:
        traj = None
    return x_t, blurred, one, traj, blur_kernel, float(blur_sigma)


def _scores(img: torch.Tensor, clean: torch.Tensor, spec) -> tuple[float, float]:
    a, b = torch.as_tensor(_from_model(img, spec)), torch.as_tensor(_from_model(clean, spec))
    return psnr(a, b, 1.0), ssim(a, b, 1.0)


@st.cache_data(max_entries=32, show_spinner="Denoising three ways…")
def denoise_comparison(
    key: ModelKey,
    x_0: np.ndarray,
    label: int | None,
    t: int,
    seed: int,
    stride: int,
    blur_kernel: int,
    blur_sigma: float | None,
) -> DenoiseComparison:
    """A1.2-A1.4 at one t: Gaussian blur (``blur_sigma=None``: best sigma), one-step x0_hat,
    and the iterative loop from t down to 0 with the given stride. ``x_0`` (C, H, W) in [0, 1]."""
    model = _model(key)
    spec = model.spec
    clean = _to_model(x_0, spec)[None]
    x_t, blurred, one, traj, k, s = _methods(
        model, clean, label, int(t), seed, stride, blur_kernel, blur_sigma
    )
    final = traj.final if traj is not None else x_t
    frames = traj.x[::5] + ([traj.x[-1]] if (len(traj.x) - 1) % 5 else []) if traj else [x_t]
    frame_ts = traj.timesteps[::5] + ([0] if (len(traj.x) - 1) % 5 else []) if traj else [int(t)]
    metrics = {
        name: _scores(img.clamp(*spec.value_range), clean, spec)
        for name, img in (("noisy", x_t), ("blur", blurred), ("one-step", one), ("iterative", final))
    }
    return DenoiseComparison(
        int(t),
        _from_model(x_t, spec)[0],
        _from_model(blurred, spec)[0],
        _from_model(one, spec)[0],
        _from_model(final, spec)[0],
        np.stack([_from_model(f, spec)[0] for f in frames]),
        [int(v) for v in frame_ts],
        s,
        k,
        metrics,
    )


@st.cache_data(max_entries=16, show_spinner="Computing PSNR for each t…")
def psnr_curve(
    key: ModelKey, x_0: np.ndarray, label: int | None, seed: int, stride: int, ts: tuple[int, ...]
) -> dict[str, list[float]]:
    """PSNR vs t of noisy, best-sigma blur, one-step and iterative (same eps at every t)."""
    model = _model(key)
    spec = model.spec
    clean = _to_model(x_0, spec)[None]
    out: dict[str, list[float]] = {"noisy": [], "blur (best σ)": [], "one-step": [], "iterative": []}
    for t in ts:
        x_t, blurred, one, traj, _, _ = _methods(model, clean, label, int(t), seed, stride, 3, None)
        final = traj.final if traj is not None else x_t
        for name, img in zip(out, (x_t, blurred, one, final), strict=True):
            out[name].append(_scores(img.clamp(*spec.value_range), clean, spec)[0])
    return out


# ----------------------------------------------------------------------------- A1.5-A1.6


@dataclass(frozen=True)
class Trajectory:
    """A sampling loop in [0, 1]: ``x[k]`` at ``timesteps[k]``; ``x0_hat[k]`` made at step k."""

    timesteps: list[int]
    x: np.ndarray  # (K + 1, B, C, H, W)
    x0_hat: np.ndarray  # (K, B, C, H, W)
    labels: list

    @property
    def final(self) -> np.ndarray:
        return self.x[-1]


@st.cache_data(max_entries=24, show_spinner="Sampling from noise…")
def sample_trajectory(
    key: ModelKey, labels: tuple[Cond, ...], seed: int, stride: int, gamma: float
) -> Trajectory:
    """A1.5/A1.6: strided DDPM from pure noise with CFG scale ``gamma`` (0 = unconditional,
    1 = conditional). A label of -1 (or the prompt "") means the null condition."""
    model = _model(key)
    spec = model.spec
    gen = _gen(seed)
    n = len(labels)
    noise = torch.randn(n, spec.channels, spec.image_size, spec.image_size, generator=gen)
    cond = torch.cat([_cond(model, lab, 1) for lab in labels])
    ts = strided_timesteps(stride)
    traj = iterative_denoise(_guided(model, gamma), noise, 0, ts, model.schedule, cond, gen)
    return Trajectory(
        list(traj.timesteps),
        np.stack([_from_model(x, spec) for x in traj.x]),
        np.stack([_from_model(x, spec) for x in traj.x0_hat]),
        [v if isinstance(v, str) else int(v) for v in labels],
    )


@st.cache_data(max_entries=16, show_spinner="Sampling one row per γ…")
def gamma_sweep(
    key: ModelKey, label: Cond, count: int, seed: int, stride: int, gammas: tuple[float, ...]
) -> np.ndarray:
    """(G, count, C, H, W): the same seed (same starting noise) at each CFG scale."""
    label = label if isinstance(label, str) or label is None else int(label)
    return np.stack([sample_trajectory(key, (label,) * count, seed, stride, g).final for g in gammas])


# ----------------------------------------------------------------------------- A1.7


@st.cache_data(max_entries=16, show_spinner="SDEdit: noising and denoising at each i_start…")
def sdedit_grid(
    key: ModelKey,
    x_0: np.ndarray,
    label: int | None,
    seed: int,
    stride: int,
    gamma: float,
    i_starts: tuple[int, ...] = SDEDIT_I_STARTS,
) -> tuple[np.ndarray, list[int]]:
    """One edit per i_start: (len(i_starts), C, H, W) in [0, 1] and the t each started at.
    ``label`` conditions the edit (a 3 edited with class 8 becomes an 8); None: no class."""
    model = _model(key)
    spec = model.spec
    x = _to_model(x_0, spec)[None]
    ts = strided_timesteps(stride)
    starts = [i for i in i_starts if i < len(ts) - 1]
    cond = _cond(model, label, 1)
    guided = _guided(model, gamma)
    outs = [sdedit(guided, x, i, ts, model.schedule, cond, _gen(seed)).final for i in starts]
    return np.stack([_from_model(o, spec)[0] for o in outs]), [ts[i] for i in starts]


@st.cache_data(max_entries=16, show_spinner="Inpainting…")
def inpaint_result(
    key: ModelKey,
    x_0: np.ndarray,
    region: tuple[int, int, int, int] | np.ndarray,
    label: int | None,
    seed: int,
    stride: int,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """RePaint inside ``region``: a rectangle (top, left, bottom, right) or a painted mask
    (H, W) of 0/1. Returns (result, mask), each (C, H, W)."""
    model = _model(key)
    spec = model.spec
    x = _to_model(x_0, spec)[None]
    h, w = x.shape[-2:]
    if isinstance(region, np.ndarray):
        if region.shape != (h, w):
            raise ValueError(f"mask is {region.shape}, the image {h}x{w}")
        mask = torch.from_numpy(region.astype(np.float32))[None, None]
    else:
        mask = rectangle_mask(h, w, *region)
    traj = inpaint(
        _guided(model, gamma),
        x,
        mask,
        strided_timesteps(stride),
        model.schedule,
        _cond(model, label, 1),
        _gen(seed),
    )
    return _from_model(traj.final, spec)[0], mask[0].numpy()


# ----------------------------------------------------------------------------- A1.8-A1.9


@st.cache_data(max_entries=16, show_spinner="Sampling a visual anagram…")
def anagram(
    key: ModelKey, label_1: int, label_2: int, view: str, count: int, seed: int, stride: int, gamma: float
) -> np.ndarray:
    """A1.8: (count, C, H, W) images that read as ``label_1`` as is and ``label_2`` under ``view``."""
    model = _model(key)
    spec = model.spec
    gen = _gen(seed)
    noise = torch.randn(count, spec.channels, spec.image_size, spec.image_size, generator=gen)
    m = AnagramModel(
        _guided(model, gamma),
        _cond(model, label_1, 1),
        _cond(model, label_2, 1),
        get_view(view),
        spec.channels,
    )
    traj = iterative_denoise(m, noise, 0, strided_timesteps(stride), model.schedule, None, gen)
    return _from_model(traj.final, spec)


@dataclass(frozen=True)
class HybridResult:
    images: np.ndarray  # (count, C, H, W) in [0, 1]
    fft_low: np.ndarray  # (H, W) log|FFT| of the low-passed far-class noise estimate
    fft_high: np.ndarray  # (H, W) log|FFT| of the high-passed near-class noise estimate
    fft_image: np.ndarray  # (H, W) log|FFT| of the first image
    band_t: int


@st.cache_data(max_entries=16, show_spinner="Sampling a hybrid image…")
def hybrid(
    key: ModelKey,
    label_far: int,
    label_near: int,
    kernel_size: int,
    sigma: float,
    count: int,
    seed: int,
    stride: int,
    gamma: float,
) -> HybridResult:
    """A1.9: eps = lowpass(eps_far) + highpass(eps_near); the FFT views show the two bands of
    the noise estimate at the loop's middle step."""
    model = _model(key)
    spec = model.spec
    gen = _gen(seed)
    noise = torch.randn(count, spec.channels, spec.image_size, spec.image_size, generator=gen)
    guided = _guided(model, gamma)
    m = HybridModel(
        guided, _cond(model, label_far, 1), _cond(model, label_near, 1), kernel_size, sigma, spec.channels
    )
    ts = strided_timesteps(stride)
    traj = iterative_denoise(m, noise, 0, ts, model.schedule, None, gen)
    mid = len(ts) // 2
    x_mid, t_mid = traj.x[mid][:1], ts[mid]
    tt = torch.full((1,), t_mid, dtype=torch.long)
    eps_far = guided(x_mid, tt, _cond(model, label_far, 1))[:, : spec.channels]
    eps_near = guided(x_mid, tt, _cond(model, label_near, 1))[:, : spec.channels]
    low, high = m.bands(eps_far, eps_near)
    return HybridResult(
        _from_model(traj.final, spec),
        fft_magnitude(low[0]).numpy(),
        fft_magnitude(high[0]).numpy(),
        fft_magnitude(traj.final[0]).numpy(),
        int(t_mid),
    )


def as_labels(values: Sequence[Cond]) -> tuple[Cond, ...]:
    return tuple(v if isinstance(v, str) or v is None else int(v) for v in values)


# ----------------------------------------------------------------------------- Part 0


@st.cache_data(max_entries=16, show_spinner="Text to image: sampling stage I…")
def text_to_image(key: ModelKey, prompt: str, count: int, seed: int, stride: int, gamma: float) -> Trajectory:
    """Part 0 / A1.6 on DeepFloyd IF: ``engine.deepfloyd.sample_images`` (strided DDPM with CFG
    and IF's learned variance) from pure noise; ``count`` images of one prompt."""
    from engine.deepfloyd import sample_images

    model = _model(key)
    spec = model.spec
    traj = sample_images(model, [prompt], int(count), int(stride), float(gamma), _gen(seed))
    return Trajectory(
        list(traj.timesteps),
        np.stack([_from_model(x, spec) for x in traj.x]),
        np.stack([_from_model(x, spec) for x in traj.x0_hat]),
        [prompt] * int(count),
    )


@st.cache_data(max_entries=4, show_spinner="Stage II: upscaling to 256×256…")
def stage2_upscale(key: ModelKey, images: np.ndarray, prompt: str, seed: int) -> np.ndarray:
    """Display only: IF stage II on stage I's (N, 3, 64, 64) [0, 1] images -> (N, 3, 256, 256).
    Needs the IF-II-L weights (and in practice a GPU); raises ``DeepFloydError``."""
    from engine.deepfloyd import upscale_stage2

    model = _model(key)
    n = images.shape[0]
    x = torch.as_tensor(images) * 2 - 1
    return upscale_stage2(x, model.encode([prompt] * n), model.null_cond(n), generator=_gen(seed)).numpy()
