"""Training curves as figures: loss and learning rate against epoch or step, the constant-LR
sweep, and PSNR against the denoiser's noise level. Pure: numpy in, Plotly figures out.

A ``Curve`` is one run's log (``engine.runs.read_log``) as arrays; ``smooth`` is TensorBoard's
debiased moving average, so a noisy per-batch loss reads as a trend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from dashboard import palette
from dashboard.settings import FLOW_GUIDANCE


@dataclass(frozen=True)
class Curve:
    """One training log: x (epochs or steps), loss and lr per step."""

    label: str
    step: np.ndarray
    epoch: np.ndarray
    loss: np.ndarray
    lr: np.ndarray


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




def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
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
    mant = (
        (1, 2, 5)
        if ratio > 8
        else (1, 2, 3, 4, 5, 6, 7, 8, 9)
        if ratio > 2.5
        else (1, 1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 9)
    )
    ticks = [
        m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in mant
    ]
    inside = [t for t in ticks if lo / 1.05 <= t <= hi * 1.05]
    if len(inside) < 2:  # keep one tick either side, so the axis is never bare
        below = [t for t in ticks if t < lo]
        above = [t for t in ticks if t > hi]
        inside = below[-1:] + inside + above[:1]
    return {"tickvals": inside, "ticktext": [f"{t:.3g}" for t in inside]}


def loss_figure(
    curves: Sequence[Curve],
    weight: float = 0.9,
    x: str = "epoch",
    title: str = "Training loss",
    height: int = 380,
) -> go.Figure:
    """Loss vs epoch (or step), log y: the raw loss faint, its moving average bold."""
    fig = go.Figure()
    for i, c in enumerate(curves):
        color = palette.color(i)
        xs = c.epoch if x == "epoch" else c.step
        ok = np.isfinite(c.loss) & (c.loss > 0)
        if len(curves) <= 4:
            fig.add_trace(
                go.Scattergl(
                    x=xs[ok],
                    y=c.loss[ok],
                    mode="lines",
                    line={"color": _rgba(color, 0.25), "width": 1},
                    name=f"{c.label} (raw)",
                    legendgroup=c.label,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scattergl(
                x=xs[ok],
                y=smooth(c.loss[ok], weight),
                mode="lines" if ok.sum() > 1 else "lines+markers",
                line=palette.line(i, width=2),
                name=c.label,
                legendgroup=c.label,
            )
        )
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        hovermode="x unified",
    )
    fig.update_xaxes(title="epoch" if x == "epoch" else "step")
    fig.update_yaxes(
        title="loss (log scale)",
        type="log",
        **log_ticks(np.concatenate([c.loss for c in curves]) if curves else []),
    )
    return fig


def lr_figure(curves: Sequence[Curve], height: int = 260) -> go.Figure:
    fig = go.Figure()
    for i, c in enumerate(curves):
        fig.add_trace(
            go.Scattergl(
                x=c.epoch,
                y=c.lr,
                mode="lines",
                name=c.label,
                line=palette.line(i, width=2),
            )
        )
    fig.update_layout(
        title="Learning rate",
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.3},
    )
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(
        title="lr (log scale)",
        type="log",
        **log_ticks(np.concatenate([c.lr for c in curves]) if curves else []),
    )
    return fig


def lr_sweep_caption(sweep: dict) -> str:
    acc = ", ".join(f"{lr:g}: {100 * a:.0f} %" for lr, a in sweep["accuracy"].items())
    return (
        f"Shipped: constant {sweep['chosen_lr']:g}. Too large a rate keeps the loss noisy "
        "and high; too small a rate starts slowly. ExponentialLR takes big steps early and "
        "small ones late."
        + (
            f" Samples at γ = {FLOW_GUIDANCE:g} that the classifier reads as the asked digit: {acc}."
            if acc
            else ""
        )
    )


def lr_sweep_figure(sweep: dict, height: int = 380) -> go.Figure:
    """Epoch-mean loss of each constant rate (the chosen one bold) and the ExponentialLR run."""
    fig = go.Figure()
    if sweep["reference"]:  # drawn first, so the constant 1e-2 run (the same in epoch 1) shows over it
        ref = sweep["reference"]
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(ref) + 1),
                y=ref,
                mode="lines",
                name="ExponentialLR 1e-2 → 1e-3 (flow-class)",
                line={"color": "rgba(0, 0, 0, 0.45)", "width": 6, "dash": "dot"},
            )
        )
    for i, (lr, means) in enumerate(sweep["runs"]):
        chosen = np.isclose(lr, sweep["chosen_lr"])
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(means) + 1),
                y=means,
                mode="lines+markers",
                name=f"constant {lr:g}" + (" (shipped)" if chosen else ""),
                line=palette.line(i, width=4 if chosen else 1.5),
                marker=palette.marker(i),
            )
        )
    fig.update_layout(
        title="Mean loss per epoch, constant learning rates",
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.2},
        hovermode="x unified",
    )
    fig.update_xaxes(title="epoch", dtick=1)
    fig.update_yaxes(
        title="mean loss (log scale)",
        type="log",
        **log_ticks([v for _, m in sweep["runs"] for v in m] + list(sweep["reference"])),
    )
    return fig


def psnr_figure(
    sigmas: np.ndarray,
    psnr_denoised: np.ndarray,
    psnr_noisy: np.ndarray,
    train_sigma: float = 0.5,
    height: int = 360,
) -> go.Figure:
    """PSNR of D(z) and of the noisy z itself against sigma, with the training sigma marked."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=sigmas,
            y=psnr_denoised,
            mode="lines+markers",
            name="denoised D(z)",
            line=palette.line(0, width=3),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=sigmas,
            y=psnr_noisy,
            mode="lines+markers",
            name="noisy input z",
            line={"color": "#888", "dash": "dot"},
        )
    )
    fig.add_vline(
        x=train_sigma,
        line=palette.line(1),
        annotation_text=f"trained at σ = {train_sigma:g}",
        annotation_position="top right",
    )
    fig.update_layout(
        title="PSNR against the clean digit (higher is better)",
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(title="σ (noise level of the input)")
    fig.update_yaxes(title="PSNR (dB)")
    return fig


SAMPLER_STYLE = {  # a palette index per sampler: the course's loops grey, the same on every chart
    "ddpm": 2,
    "ddim": 0,
    "dpmpp-2m": 1,
    "euler": 2,
    "midpoint": 3,
    "heun": 4,
    "rk4": 5,
}
STUDENT_STYLE = {"euler": 0, "midpoint": 1}  # a distilled model's lines, beside its teacher's (SAMPLER_STYLE)


def steps_figure(report: dict, metric: str = "fd", height: int = 380) -> go.Figure:
    """Quality against network evaluations (log x), one line per sampler, from a
    ``python -m engine fewer-steps`` report: ``metric`` "fd" (lower is better; the floor that
    real test digits score is drawn dashed) or "accuracy" / "confidence". The course's own
    setting is starred; hover shows steps, NFE, the value and the wall time."""
    fig = go.Figure()
    points = report["points"]
    student = report.get("model") if report.get("teacher") else None  # a distilled model's own lines
    for who, sampler in dict.fromkeys((p.get("model"), p["sampler"]) for p in points):
        pts = sorted((p for p in points if (p.get("model"), p["sampler"]) == (who, sampler) and metric in p),
                     key=lambda p: p["nfe"])
        if not pts:
            continue
        mine = who is not None and who == student
        style = STUDENT_STYLE.get(sampler, 0) if mine else SAMPLER_STYLE.get(sampler, 0)
        name = sampler if who is None else f"{who}, {sampler}"
        fig.add_trace(
            go.Scatter(
                x=[p["nfe"] for p in pts],
                y=[p[metric] for p in pts],
                mode="lines+markers",
                name=name,
                line=palette.line(style, width=3 if mine else 2),
                marker=palette.marker(style),
                customdata=[[p["steps"], p["seconds"]] for p in pts],
                hovertemplate=f"{name}: %{{customdata[0]}} steps, %{{x}} NFE<br>{metric} %{{y:.3g}}"
                "<br>%{customdata[1]:.1f} s<extra></extra>",
            )
        )
    course = next((p for p in points if (p["sampler"], p["steps"], p.get("model")) == (
        report["course"]["sampler"], report["course"]["steps"], report["course"].get("model"))), None)
    if course is not None and metric in course:
        teacher = report["course"].get("model")
        fig.add_trace(
            go.Scatter(
                x=[course["nfe"]],
                y=[course[metric]],
                mode="markers",
                name="the course's setting" + (f" ({teacher})" if teacher else ""),
                marker=palette.marker(1, symbol="star", size=16, line={"color": "#7f7f7f", "width": 1}),
                hoverinfo="skip",
            )
        )
    if metric == "fd" and points:
        floor = float(np.mean([p["fd_floor"] for p in points]))
        fig.add_hline(
            y=floor,
            line={"color": "gray", "dash": "dash"},
            annotation_text="test digits (the floor)",
            annotation_position="bottom right",
        )
    label = {
        "fd": "Fréchet distance to test digits (lower is better)",
        "accuracy": "classifier accuracy",
        "confidence": "mean classifier confidence",
    }[metric]
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": -0.25}
    )
    nfes = [p["nfe"] for p in points]
    fig.update_xaxes(title="network evaluations (NFE, log scale)", type="log", **log_ticks(nfes))
    fig.update_yaxes(title=label)
    return fig


def time_grid_figure(report: dict, metric: str = "fd", height: int = 340) -> go.Figure:
    """Few-step solvers on three time grids (``scripts/flow_time_grids.py``): one group of bars
    per solver and step count, one bar per grid; ``metric`` "fd" (log scale, lower is better) or
    "accuracy"."""
    rows = report["rows"]
    runs = list(dict.fromkeys((r["solver"], r["steps"], r["nfe"]) for r in rows))
    names = [f"{SOLVER_NAMES.get(s, s)} {n}<br>({nfe} NFE)" for s, n, nfe in runs]
    fig = go.Figure()
    for i, grid in enumerate(dict.fromkeys(r["grid"] for r in rows)):
        by_run = {(r["solver"], r["steps"], r["nfe"]): r[metric] for r in rows if r["grid"] == grid}
        scale = 100 if metric == "accuracy" else 1
        values = [None if by_run.get(run) is None else by_run[run] * scale for run in runs]
        fig.add_bar(x=names, y=values,
                    name=grid, marker={"color": palette.color(i), "pattern": {"shape": PATTERNS[i % 3]}},
                    hovertemplate=f"{grid}<br>%{{x}}: %{{y:.3g}}<extra></extra>")
    fig.update_xaxes(tickangle=0)
    fig.update_layout(barmode="group", height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      legend={"orientation": "h", "y": -0.3, "title": "time grid"})
    if metric == "fd":
        fig.update_yaxes(title="Fréchet distance (log, lower is better)", type="log",
                         tickvals=[2, 3, 5, 10, 20, 50, 100])
    else:
        fig.update_yaxes(title="accuracy (%)", range=[0, 100])
    return fig


PATTERNS = ("", "/", ".")  # bars told apart without colour
SOLVER_NAMES = {"euler": "Euler", "midpoint": "midpoint", "heun": "Heun", "rk4": "RK4"}
