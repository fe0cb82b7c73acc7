"""Part B of the dashboard: cached engine calls and pure figure builders for the B pages.

Conventions, as on the pages. Single-step denoiser (B1): z = x + sigma eps, D_theta(z) ~ x.
Flow matching (B2, Lipman et al.): x_0 ~ N(0, I) is noise, x_1 is data, t runs 0 -> 1 and the
Euler sampler predicts the clean image as x1_hat = x_t + (1 - t) u. DDPM (Part A): x_0 is the
clean image and t counts *down* from 999; pixels live in [-1, 1]. The two ts are opposite.

Cached functions return numpy arrays (images in [0, 1], trajectories as uint8 to keep the cache
small) and take ``root`` (the models folder) and ``stamp`` (the weights' mtime) so a model that
finishes training, or a switch to ``DIFFLAB_MODELS_DIR``, is picked up without a restart.
Figure builders are pure functions of numpy arrays: testable without Streamlit.
"""

from __future__ import annotations

import base64
import io
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image, ImageDraw
from plotly.subplots import make_subplots

from dashboard.cache import amp_dtype, ddpm_adapter, flow_adapter, load_model, models_dir
from dashboard.ui import error_box, plot, png_bytes
from engine.checkpoints import CheckpointError, load_tensors
from engine.models import ModelNotFound, model_path
from engine.train import RunFiles, read_log

# ----------------------------------------------------------------------------- models on disk


def require_model(name: str):
    """``LoadedModel`` or ``None`` after showing what is missing and the command that fixes it."""
    try:
        return load_model(name, str(models_dir()))
    except ModelNotFound:
        error_box(
            f"The **{name}** model is not trained yet (looked in `{models_dir() / name}`).",
            f"python -m engine train {name} --out {models_dir() / name}",
        )
    except CheckpointError as e:
        error_box(
            f"The **{name}** model file could not be read: {e}",
            f"python -m engine train {name} --out {models_dir() / name}",
        )
    return None


def stamp(name: str) -> float:
    """The weights file's mtime (0 when missing): part of every cache key."""
    try:
        return model_path(name, models_dir()).stat().st_mtime
    except OSError:
        return 0.0


def model_folder(name: str) -> Path:
    return models_dir() / name


def snapshot_epochs(name: str) -> list[int]:
    """Epochs with a saved snapshot (``snapshots/epoch_XX.safetensors``), ascending."""
    folder = model_folder(name) / "snapshots"
    out = []
    for p in folder.glob("epoch_*.safetensors"):
        try:
            out.append(int(p.stem.split("_", 1)[1]))
        except ValueError:
            continue
    return sorted(out)


@st.cache_data(max_entries=32, show_spinner=False)
def snapshot_arrays(name: str, epoch: int, root: str, mtime: float) -> tuple[dict, dict]:
    """Arrays and meta of one snapshot, as float32 numpy (keyed by the file's mtime)."""
    tensors, meta = load_tensors(RunFiles(Path(root) / name).snapshot(epoch))
    return {k: v.float().numpy() for k, v in tensors.items()}, meta


def load_snapshot(name: str, epoch: int) -> tuple[dict, dict] | None:
    path = RunFiles(model_folder(name)).snapshot(epoch)
    try:
        return snapshot_arrays(name, epoch, str(models_dir()), path.stat().st_mtime)
    except (OSError, CheckpointError):
        return None


# ----------------------------------------------------------------------------- logs


@dataclass(frozen=True)
class Curve:
    """One training log: x (epochs or steps), loss and lr per step."""

    label: str
    step: np.ndarray
    epoch: np.ndarray
    loss: np.ndarray
    lr: np.ndarray


@st.cache_data(max_entries=64, show_spinner=False)
def _read_curve(path: str, mtime: float, size: int) -> tuple[np.ndarray, ...]:
    recs = read_log(Path(path))
    cols = [np.array([r.get(k, np.nan) for r in recs], dtype=np.float64)
            for k in ("step", "epoch", "loss", "lr")]
    return tuple(cols)


def read_curve(path: Path, label: str) -> Curve | None:
    """The log at ``path`` as a ``Curve`` (None when missing or empty); re-read when it grows."""
    try:
        st_ = Path(path).stat()
    except OSError:
        return None
    step, epoch, loss, lr = _read_curve(str(path), st_.st_mtime, st_.st_size)
    if len(step) == 0:
        return None
    return Curve(label, step, epoch, loss, lr)


def model_curve(name: str) -> Curve | None:
    return read_curve(RunFiles(model_folder(name)).log, name)


def smooth(y: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing); weight 0 = raw."""
    y = np.asarray(y, dtype=np.float64)
    out = np.empty_like(y)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(y):
        acc = weight * acc + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = acc / norm
    return out


# ----------------------------------------------------------------------------- images


def tile(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, H, W) -> one (rows * (H + pad) - pad, cols * (W + pad) - pad) image, row-major.

    (R, C, H, W) tiles as R rows and C columns. Padding is white (1.0, or 255 for uint8) so
    digits stay apart; the dtype is kept.
    """
    a = np.asarray(images)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
    pad_value = 255 if a.dtype == np.uint8 else 1.0
    if a.ndim == 4:
        rows, ncols = a.shape[:2]
        a = a.reshape(-1, *a.shape[2:])
    else:
        ncols = ncols or a.shape[0]
        rows = -(-a.shape[0] // ncols)
    n, h, w = a.shape
    out = np.full((rows * (h + pad) - pad, ncols * (w + pad) - pad), pad_value, dtype=a.dtype)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = a[i]
    return out


def image_scale(presenter: bool, base: int = 4) -> int:
    return base + 2 if presenter else base


def png(img: np.ndarray, scale: int = 4) -> bytes:
    """A [0, 1] (or uint8) image as a nearest-neighbour-upscaled PNG."""
    a = np.asarray(img)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    return png_bytes(a, scale)


def image(img: np.ndarray, scale: int = 4, caption: str | None = None, width="stretch") -> None:
    """Show ``img`` as a nearest-neighbour PNG (st.image would pick JPEG for bytes on its own)."""
    st.image(png(img, scale), caption=caption, width=width, output_format="PNG")


def data_uri(img_u8: np.ndarray, scale: int = 1) -> str:
    im = Image.fromarray(np.asarray(img_u8, dtype=np.uint8))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def quantize(x) -> np.ndarray:
    """Tensor/array of any shape in [0, 1] (values outside are clamped) -> uint8, same shape."""
    a = x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)
    return (np.clip(np.nan_to_num(a), 0, 1) * 255 + 0.5).astype(np.uint8)


def gif_bytes(frames: Sequence[np.ndarray], scale: int = 3, duration_ms: int = 80,
              captions: Sequence[str] | None = None, hold_last_ms: int = 1200) -> bytes:
    """An animated GIF (loops forever) of uint8 grey frames, upscaled with nearest neighbour;
    an optional caption strip under each frame. The last frame is held a little longer."""
    ims = []
    for k, f in enumerate(frames):
        im = Image.fromarray(np.asarray(f, dtype=np.uint8)).convert("L")
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
        if captions is not None:
            canvas = Image.new("L", (im.width, im.height + 16), 255)
            canvas.paste(im, (0, 0))
            ImageDraw.Draw(canvas).text((4, im.height + 2), captions[k], fill=0)
            im = canvas
        ims.append(im.convert("P"))
    durations = [duration_ms] * len(ims)
    durations[-1] = max(duration_ms, hold_last_ms)
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=durations, loop=0)
    return buf.getvalue()


def frame_indices(num_states: int, max_frames: int) -> np.ndarray:
    """Evenly spaced indices into ``num_states`` states, first and last always included."""
    if num_states <= max_frames:
        return np.arange(num_states)
    return np.unique(np.round(np.linspace(0, num_states - 1, max_frames)).astype(int))


def chart(fig: go.Figure, filename: str, key: str) -> None:
    """``ui.plot`` with a file name for the PNG download (client-side, no kaleido)."""
    plot(fig, key=key, filename=filename)


# ----------------------------------------------------------------------------- figures


_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def log_ticks(values) -> dict:
    """Tick values and full labels for a log axis over ``values`` (Plotly's own labels its minor
    ticks with a bare "2" or "5", which reads as 2 and 5 rather than 0.2 and 0.05). Steps of
    1-2-5 per decade over wide ranges, finer ones over narrow ranges. ``{}`` if nothing to span."""
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x) and x > 0], dtype=np.float64)
    if v.size == 0:
        return {}
    lo, hi = float(v.min()), float(v.max())
    ratio = hi / lo
    mant = (1, 2, 5) if ratio > 8 else (1, 2, 3, 4, 5, 6, 7, 8, 9) if ratio > 2.5 else (
        1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9)
    ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in mant]
    inside = [t for t in ticks if lo / 1.05 <= t <= hi * 1.05]
    if len(inside) < 2:  # keep one tick either side, so the axis is never bare
        below = [t for t in ticks if t < lo]
        above = [t for t in ticks if t > hi]
        inside = below[-1:] + inside + above[:1]
    return {"tickvals": inside, "ticktext": [f"{t:.3g}" for t in inside]}


def loss_figure(curves: Sequence[Curve], weight: float = 0.9, x: str = "epoch",
                title: str = "Training loss", height: int = 380) -> go.Figure:
    """Loss vs epoch (or step), log y: the raw loss faint, its moving average bold."""
    fig = go.Figure()
    for i, c in enumerate(curves):
        color = _COLORS[i % len(_COLORS)]
        xs = c.epoch if x == "epoch" else c.step
        ok = np.isfinite(c.loss) & (c.loss > 0)
        if len(curves) <= 4:
            fig.add_trace(go.Scattergl(
                x=xs[ok], y=c.loss[ok], mode="lines", line={"color": _rgba(color, 0.25), "width": 1},
                name=f"{c.label} (raw)", legendgroup=c.label, showlegend=False, hoverinfo="skip",
            ))
        fig.add_trace(go.Scattergl(
            x=xs[ok], y=smooth(c.loss[ok], weight), mode="lines" if ok.sum() > 1 else "lines+markers",
            line={"color": color, "width": 2},
            name=c.label, legendgroup=c.label,
        ))
    fig.update_layout(
        title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.2}, hovermode="x unified",
    )
    fig.update_xaxes(title="epoch" if x == "epoch" else "step")
    fig.update_yaxes(title="loss (log scale)", type="log",
                     **log_ticks(np.concatenate([c.loss for c in curves]) if curves else []))
    return fig


def lr_figure(curves: Sequence[Curve], height: int = 260) -> go.Figure:
    fig = go.Figure()
    for i, c in enumerate(curves):
        fig.add_trace(go.Scattergl(x=c.epoch, y=c.lr, mode="lines", name=c.label,
                                   line={"color": _COLORS[i % len(_COLORS)], "width": 2}))
    fig.update_layout(title="Learning rate", height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.3})
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="lr (log scale)", type="log",
                     **log_ticks(np.concatenate([c.lr for c in curves]) if curves else []))
    return fig


def read_lr_sweep(path: Path) -> dict | None:
    """The constant-LR sweep summary (scripts/lr_sweep_summary.py), or None when it is missing
    or not readable: the page then leaves the chart out."""
    try:
        data = json.loads(path.read_text())
        runs = [(float(r["lr"]), [float(v) for v in r["epoch_mean_loss"]]) for r in data["runs"]]
        accuracy = {float(r["lr"]): float(r["accuracy"]) for r in data["runs"] if "accuracy" in r}
        ref = data.get("reference") or {}
        ref_curve = [float(v) for v in ref.get("epoch_mean_loss", [])]
        return {"runs": runs, "reference": ref_curve, "chosen_lr": float(data["chosen_lr"]),
                "accuracy": accuracy}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lr_sweep_caption(sweep: dict) -> str:
    acc = ", ".join(f"{lr:g}: {100 * a:.0f} %" for lr, a in sweep["accuracy"].items())
    return (f"Shipped: constant {sweep['chosen_lr']:g}. Too large a rate keeps the loss noisy "
            "and high; too small a rate starts slowly. ExponentialLR takes big steps early and "
            "small ones late." + (f" Samples at γ = 5 that the classifier reads as the asked "
                                  f"digit: {acc}." if acc else ""))


def lr_sweep_figure(sweep: dict, height: int = 380) -> go.Figure:
    """Epoch-mean loss of each constant rate (the chosen one bold) and the ExponentialLR run."""
    fig = go.Figure()
    if sweep["reference"]:  # drawn first, so the constant 1e-2 run (the same in epoch 1) shows over it
        ref = sweep["reference"]
        fig.add_trace(go.Scatter(x=np.arange(1, len(ref) + 1), y=ref, mode="lines",
                                 name="ExponentialLR 1e-2 → 1e-3 (flow-class)",
                                 line={"color": "rgba(0, 0, 0, 0.45)", "width": 6, "dash": "dot"}))
    for i, (lr, means) in enumerate(sweep["runs"]):
        chosen = np.isclose(lr, sweep["chosen_lr"])
        fig.add_trace(go.Scatter(
            x=np.arange(1, len(means) + 1), y=means, mode="lines+markers",
            name=f"constant {lr:g}" + (" (shipped)" if chosen else ""),
            line={"color": _COLORS[i % len(_COLORS)], "width": 4 if chosen else 1.5},
        ))
    fig.update_layout(title="Mean loss per epoch, constant learning rates", height=height,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.2}, hovermode="x unified")
    fig.update_xaxes(title="epoch", dtick=1)
    fig.update_yaxes(title="mean loss (log scale)", type="log",
                     **log_ticks([v for _, m in sweep["runs"] for v in m] + list(sweep["reference"])))
    return fig


def psnr_figure(sigmas: np.ndarray, psnr_denoised: np.ndarray, psnr_noisy: np.ndarray,
                train_sigma: float = 0.5, height: int = 360) -> go.Figure:
    """PSNR of D(z) and of the noisy z itself against sigma, with the training sigma marked."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=sigmas, y=psnr_denoised, mode="lines+markers", name="denoised D(z)",
                             line={"color": _COLORS[0], "width": 3}))
    fig.add_trace(go.Scatter(x=sigmas, y=psnr_noisy, mode="lines+markers", name="noisy input z",
                             line={"color": "#888", "dash": "dot"}))
    fig.add_vline(x=train_sigma, line={"color": _COLORS[1], "dash": "dash"},
                  annotation_text=f"trained at σ = {train_sigma:g}", annotation_position="top right")
    fig.update_layout(title="PSNR against the clean digit (higher is better)", height=height,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(title="σ (noise level of the input)")
    fig.update_yaxes(title="PSNR (dB)")
    return fig


@dataclass(frozen=True)
class Panel:
    """One image column of an animation: (F, H, W) uint8 frames, and a title per frame."""

    title: str
    frames: np.ndarray
    frame_titles: Sequence[str] | None = None


def animation_figure(panels: Sequence[Panel], slider_labels: Sequence[str], *,
                     line: tuple[np.ndarray, np.ndarray, str] | None = None,
                     scale: int = 3, duration_ms: int = 120, height: int | None = None,
                     rows: int = 1) -> go.Figure:
    """Client-side animation (Plotly frames) with play/pause buttons and a scrub slider.
    ``height`` None fits the figure to its images' aspect ratio.

    Each panel shows its frame k as a PNG (crisp pixels); ``line = (x, y, label)`` adds a
    chart with a marker that follows the frames (e.g. |u| against t); its x must have one
    value per frame. ``rows`` lays the panels (and the line chart) out in that many rows.
    """
    n_frames = len(slider_labels)
    n_cells = len(panels) + (line is not None)
    cols = -(-n_cells // rows)
    titles = [p.title for p in panels] + ([line[2]] if line is not None else [])
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles,
                        horizontal_spacing=0.04, vertical_spacing=0.12)
    pos = [(i // cols + 1, i % cols + 1) for i in range(n_cells)]

    def image_trace(p: Panel, k: int) -> go.Image:
        return go.Image(source=data_uri(p.frames[k], scale), hoverinfo="skip")

    for p, (r, c) in zip(panels, pos, strict=False):
        fig.add_trace(image_trace(p, 0), row=r, col=c)
        fig.update_xaxes(visible=False, row=r, col=c)
        x_name = "x" if (r, c) == (1, 1) else f"x{(r - 1) * cols + c}"
        fig.update_yaxes(visible=False, row=r, col=c, scaleanchor=x_name)
    if line is not None:
        lx, ly, label = line
        r, c = pos[-1]
        fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line={"color": _COLORS[0]}, name=label,
                                 showlegend=False), row=r, col=c)
        fig.add_trace(go.Scatter(x=[lx[0]], y=[ly[0]], mode="markers", showlegend=False, hoverinfo="skip",
                                 marker={"size": 12, "color": _COLORS[1]}), row=r, col=c)
        pad = 0.04 * (float(np.max(lx)) - float(np.min(lx)) or 1.0)  # the marker fits at both ends
        fig.update_xaxes(title="t", range=[float(np.min(lx)) - pad, float(np.max(lx)) + pad], row=r, col=c)
    n_traces = len(fig.data)
    if height is None:  # as tall as the images need at a ~760 px wide column, plus the controls
        h, w = panels[0].frames.shape[1:3]
        height = int(rows * (760 / cols * h / w + 45) + 110)
    image_ids = list(range(len(panels)))
    marker_ids = [n_traces - 1] if line is not None else []
    base_annotations = list(fig.layout.annotations)

    def annotations(k: int):
        out = []
        for i, a in enumerate(base_annotations):
            a = go.layout.Annotation(a)
            if i < len(panels) and panels[i].frame_titles is not None:
                a.text = panels[i].frame_titles[k]
            out.append(a)
        return out

    frames = []
    for k in range(n_frames):
        data = [image_trace(panels[i], k) for i in image_ids]
        if line is not None:
            data.append(go.Scatter(x=[line[0][k]], y=[line[1][k]]))
        frames.append(go.Frame(data=data, traces=image_ids + marker_ids, name=str(k),
                               layout={"annotations": annotations(k)}))
    fig.frames = frames
    if any(p.frame_titles is not None for p in panels):
        fig.update_layout(annotations=annotations(0))
    play = {"frame": {"duration": duration_ms, "redraw": True}, "fromcurrent": True,
            "transition": {"duration": 0}, "mode": "immediate"}
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        updatemenus=[{
            "type": "buttons", "direction": "left", "x": 0.0, "y": -0.02, "xanchor": "left",
            "yanchor": "top", "pad": {"r": 10, "t": 30},
            "buttons": [
                {"label": "▶ Play", "method": "animate", "args": [None, play]},
                {"label": "❚❚ Pause", "method": "animate", "args": [[None], pause]},
            ],
        }],
        sliders=[{
            "active": 0, "x": 0.18, "len": 0.82, "y": -0.02, "yanchor": "top",
            "pad": {"t": 20, "b": 10}, "currentvalue": {"prefix": "", "visible": True},
            "steps": [
                {"label": slider_labels[k], "method": "animate",
                 "args": [[str(k)], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate",
                                     "transition": {"duration": 0}}]}
                for k in range(n_frames)
            ],
        }],
    )
    return fig


# ----------------------------------------------------------------------------- B1: denoiser


@dataclass(frozen=True)
class DenoiseGrid:
    sigmas: np.ndarray  # (S,)
    clean: np.ndarray  # (N, 28, 28) in [0, 1]
    noisy: np.ndarray  # (S, N, 28, 28), unclamped
    denoised: np.ndarray  # (S, N, 28, 28)
    psnr_noisy: np.ndarray  # (S,) over the N digits
    psnr_denoised: np.ndarray


def _test_digits(count: int, seed: int) -> tuple[torch.Tensor, torch.Generator]:
    from engine.data import load_mnist

    gen = torch.Generator().manual_seed(int(seed))
    test = load_mnist("test")
    idx = torch.randperm(test.images.shape[0], generator=gen)[:count]
    return test.images[idx], gen


def _run_denoiser(net: torch.nn.Module, z: torch.Tensor, batch: int = 128) -> torch.Tensor:
    amp = amp_dtype()
    with torch.inference_mode(), torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
        return torch.cat([net(b).float() for b in z.split(batch)])


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    from engine.metrics import psnr

    return float(min(psnr(a.clamp(0, 1), b), 99.0))


@st.cache_data(max_entries=16, show_spinner="Denoising…")
def denoise_grid(sigmas: tuple[float, ...], count: int, seed: int, root: str, mtime: float) -> DenoiseGrid:
    """``count`` random test digits (chosen by ``seed``), noised at each sigma with the same
    eps (z = x + sigma eps), and the denoiser's D(z)."""
    net = load_model("denoiser", root).net
    clean, gen = _test_digits(count, seed)
    eps = torch.randn(clean.shape, generator=gen)
    noisy = torch.stack([clean + s * eps for s in sigmas])
    den = _run_denoiser(net, noisy.flatten(0, 1)).reshape(noisy.shape)
    return DenoiseGrid(
        np.array(sigmas, dtype=np.float32), clean[:, 0].numpy(), noisy[:, :, 0].numpy(),
        den[:, :, 0].numpy(),
        np.array([_psnr(noisy[i], clean) for i in range(len(sigmas))]),
        np.array([_psnr(den[i], clean) for i in range(len(sigmas))]),
    )


SWEEP_SIGMAS = tuple(round(0.1 * i, 2) for i in range(11))


@st.cache_data(max_entries=8, show_spinner="Sweeping σ…")
def sigma_sweep(sigmas: tuple[float, ...], count: int, seed: int, root: str, mtime: float):
    """(sigmas, PSNR of D(z), PSNR of z) over ``count`` test digits."""
    g = denoise_grid(sigmas, count, seed, root, mtime)
    return g.sigmas, g.psnr_denoised, g.psnr_noisy


@st.cache_data(max_entries=1, show_spinner="Averaging the 60000 training digits…")
def mean_image() -> np.ndarray:
    from engine.data import mnist_mean_image

    return mnist_mean_image()[0].numpy()


@dataclass(frozen=True)
class PureNoiseResult:
    noise: np.ndarray  # (N, 28, 28)
    outputs: np.ndarray  # (N, 28, 28) D(eps)
    mean: np.ndarray  # (28, 28) E[x] over the training set
    rms: np.ndarray  # (N,) RMS(D(eps_i) - E[x])
    rms_of_average: float  # RMS(mean_i D(eps_i) - E[x])


@st.cache_data(max_entries=8, show_spinner="Running the pure-noise model…")
def pure_noise(count: int, seed: int, root: str, mtime: float) -> PureNoiseResult:
    net = load_model("denoiser-pure-noise", root).net
    eps = torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(int(seed)))
    out = _run_denoiser(net, eps)[:, 0].numpy()
    mean = mean_image()
    rms = np.sqrt(((out - mean) ** 2).reshape(count, -1).mean(1))
    return PureNoiseResult(eps[:, 0].numpy(), out, mean, rms,
                           float(np.sqrt(((out.mean(0) - mean) ** 2).mean())))


# ----------------------------------------------------------------------------- B2: flow


@dataclass(frozen=True)
class FlowRun:
    """Digits sampled with Euler steps, and their (subsampled) trajectory as uint8 frames."""

    images: np.ndarray  # (B, 28, 28) float in [0, 1]: x at t = 1
    labels: np.ndarray  # (B,) digits (-1: unconditional)
    frame_steps: np.ndarray  # (F,) Euler step index of each frame, 0..S
    frame_t: np.ndarray  # (F,) t of each frame
    x: np.ndarray  # (F, B, 28, 28) uint8: x_t clamped to [0, 1]
    x1_hat: np.ndarray  # (F, B, 28, 28) uint8: x_t + (1 - t) u (at t = 1: x_1 itself)
    speed: np.ndarray  # (F,) mean |u| over pixels and images at each frame


def _flow_trajectory_arrays(traj, labels: torch.Tensor, max_frames: int) -> FlowRun:
    steps = traj.x.shape[0] - 1
    idx = frame_indices(steps + 1, max_frames)
    x1 = torch.cat([traj.x1_hat, traj.x[-1:]])  # at t = 1 the prediction is x itself
    speed = torch.cat([traj.speed, traj.speed[-1:]]).mean(1)
    return FlowRun(
        traj.x[-1, :, 0].clamp(0, 1).numpy(), labels.numpy(), idx, idx / steps,
        quantize(traj.x[idx, :, 0]), quantize(x1[idx, :, 0]), speed[idx].numpy(),
    )


# A hand-made cache for flow_samples: st.cache_data would record the progress-bar updates made
# during the computation and fail to replay them on a hit (CacheReplayClosureError). Shared by
# all sessions like st.cache_data; bounded; results are never mutated.
_FLOW_CACHE: OrderedDict[tuple, FlowRun] = OrderedDict()
_FLOW_CACHE_MAX = 8
_FLOW_LOCK = threading.Lock()


def flow_samples(name: str, guidance: float | None, steps: int, seed: int, per_digit: int,
                 root: str, mtime: float, max_frames: int = 48,
                 progress: Callable[[float], None] | None = None) -> FlowRun:
    """``per_digit`` samples of each digit (class model, CFG ``guidance``) or 10 * per_digit
    unconditional samples (time model), integrated with ``steps`` Euler steps; seeded noise.
    ``progress(fraction)`` is called after each step when the result is not cached yet."""
    from engine.sampling import digit_labels, sample_flow

    key = (name, guidance, int(steps), int(seed), int(per_digit), root, mtime, max_frames)
    with _FLOW_LOCK:
        if key in _FLOW_CACHE:
            _FLOW_CACHE.move_to_end(key)
            return _FLOW_CACHE[key]
    flow = flow_adapter(name)
    labels = digit_labels(range(10), per_digit)
    cb = None if progress is None else (lambda i, _x: progress((i + 1) / steps))
    traj = sample_flow(flow, labels if flow.class_conditioned else None, len(labels), steps,
                       guidance if flow.class_conditioned else None,
                       torch.Generator().manual_seed(int(seed)), record=True, callback=cb)
    if not flow.class_conditioned:
        labels = torch.full_like(labels, -1)
    run = _flow_trajectory_arrays(traj, labels, max_frames)
    with _FLOW_LOCK:
        _FLOW_CACHE[key] = run
        while len(_FLOW_CACHE) > _FLOW_CACHE_MAX:
            _FLOW_CACHE.popitem(last=False)
    return run


def digit_columns(images: np.ndarray, per_digit: int) -> np.ndarray:
    """(10 * per_digit, H, W) grouped by digit -> (per_digit, 10, H, W): one column per digit."""
    a = np.asarray(images)
    return a.reshape(10, per_digit, *a.shape[1:]).swapaxes(0, 1)


# ----------------------------------------------------------------------------- DDPM vs flow


@dataclass(frozen=True)
class SideBySide:
    """Both samplers from the same seed (so the same starting noise), same digit."""

    ddpm_t: np.ndarray  # (K + 1,) DDPM timesteps, 990 -> 0
    ddpm_x: np.ndarray  # (K + 1, B, 28, 28) uint8 x_t (pixels mapped from [-1, 1])
    ddpm_x0: np.ndarray  # (K + 1, B, 28, 28) uint8 x0_hat predicted from each x_t (last: x_0 itself)
    flow_t: np.ndarray  # (F,) flow t of each kept frame, 0 -> 1
    flow_x: np.ndarray  # (F, B, 28, 28) uint8
    flow_x1: np.ndarray  # (F, B, 28, 28) uint8
    start_equal: bool  # the two samplers started from the same noise tensor


@st.cache_data(max_entries=8, show_spinner="Sampling with both models…")
def ddpm_vs_flow(digit: int, count: int, seed: int, ddpm_stride: int, ddpm_guidance: float,
                 flow_steps: int, flow_guidance: float, root: str, mtimes: tuple[float, float],
                 max_frames: int = 48) -> SideBySide:
    from engine.sampling import sample_ddpm, sample_flow, to_unit

    labels = torch.full((count,), int(digit), dtype=torch.long)
    d = sample_ddpm(ddpm_adapter("ddpm-class"), labels, ddpm_stride, ddpm_guidance,
                    torch.Generator().manual_seed(int(seed)))
    f = sample_flow(flow_adapter("flow-class"), labels, count, flow_steps, flow_guidance,
                    torch.Generator().manual_seed(int(seed)), record=True)
    dx = torch.stack([to_unit(x) for x in d.x])[:, :, 0]
    # frame k: x_t and the model's clean estimate from that x_t, as the flow side shows
    dx0 = torch.stack([to_unit(x) for x in d.x0_hat] + [to_unit(d.x[-1])])[:, :, 0]
    fr = _flow_trajectory_arrays(f, labels, max_frames)
    # DDPM's x_T is in [-1, 1] units, flow's x_0 in [0, 1] units: same tensor of N(0, I) draws.
    same = bool(torch.equal(d.x[0], f.x[0]))
    return SideBySide(np.array(d.timesteps), quantize(dx), quantize(dx0), fr.frame_t, fr.x,
                      fr.x1_hat, same)


def align_frames(n_a: int, n_b: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs so both trajectories run from start to end over the same number of frames
    (by fraction of the way, not by t: the two t axes mean different things)."""
    n = n or max(n_a, n_b)
    u = np.linspace(0, 1, n)
    return np.round(u * (n_a - 1)).astype(int), np.round(u * (n_b - 1)).astype(int)


def show_missing(names: Sequence[str]) -> bool:
    """Shows a fix message for every missing model; True when all are present."""
    return all([require_model(n) is not None for n in names])
