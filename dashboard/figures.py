"""Pure figure builders for every page: numpy in, Plotly figures or self-contained HTML out.
No Streamlit. Training-curve charts are in ``dashboard.curves``, pictures in ``dashboard.images``.

- ``schedule_figure``, ``metric_vs_t_figure``, ``fft_pair_figure``: Part A charts.
- ``animation_figure``: a client-side animation (Plotly frames) of image panels with play/pause
  and a scrub slider; frames are sent once, so scrubbing needs no server round trip.
- ``forward_scrubber_html``: the Forward page's t scrubber, computed in the browser (its HTML and
  JS are ``dashboard/web/forward_scrubber.*``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard import palette, web
from dashboard.images import data_uri

# Plotly's modebar camera button downloads the chart as a PNG, in the browser.
PLOTLY_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}


# ----------------------------------------------------------------------------- Plotly charts


def schedule_figure(alphas_cumprod, t: int | None = None, height: int = 320) -> go.Figure:
    """abar_t (left axis, linear) and SNR_t = abar_t / (1 - abar_t) (right axis, log) vs t,
    with a marker at ``t``."""
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    ts = np.arange(abar.shape[0])
    snr = abar / np.clip(1 - abar, 1e-300, None)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ts, y=abar, name="ᾱ_t", line=palette.line(0)))
    fig.add_trace(go.Scatter(x=ts, y=snr, name="SNR_t (log)", yaxis="y2", line=palette.line(1)))
    if t is not None:
        t = int(t)
        fig.add_vline(x=t, line={"color": "gray", "dash": "dot"})
        fig.add_trace(
            go.Scatter(
                x=[t],
                y=[abar[t]],
                mode="markers",
                name=f"t = {t}",
                marker=palette.marker(0, size=11, line={"color": "#7f7f7f", "width": 1}),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[t],
                y=[snr[t]],
                mode="markers",
                yaxis="y2",
                showlegend=False,
                marker=palette.marker(1, size=11, line={"color": "#7f7f7f", "width": 1}),
            )
        )
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 60, "t": 30, "b": 40},
        xaxis={"title": "t", "range": [0, abar.shape[0] - 1]},
        yaxis={"title": "ᾱ_t", "range": [0, 1.02]},
        yaxis2={
            "title": "SNR_t",
            "type": "log",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "dtick": 3,
            "exponentformat": "power",
        },
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )
    return fig


def metric_vs_t_figure(
    ts: Sequence[int],
    series: dict[str, Sequence[float]],
    metric: str = "PSNR (dB)",
    mark_t: int | None = None,
    height: int = 320,
) -> go.Figure:
    """One line per method (e.g. blur, one-step, iterative) of a quality metric vs t."""
    fig = go.Figure()
    for k, (name, values) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(
                x=list(ts),
                y=list(values),
                mode="lines+markers",
                name=name,
                line=palette.line(k),
                marker=palette.marker(k),
            )
        )
    if mark_t is not None:
        fig.add_vline(x=int(mark_t), line={"color": "gray", "dash": "dot"})
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
        xaxis={"title": "t (more noise →)"},
        yaxis={"title": metric},
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )
    return fig


# ----------------------------------------------------------------------------- forward scrubber


def _b64_float32(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def forward_scrubber_html(x_0, eps, alphas_cumprod, t: int = 500, scale: int = 6, *,
                          label: str = "the input image") -> str:
    """A self-contained HTML/JS block: an <input type=range> over t and two canvases showing
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Eq. A.2) and eps, recomputed in the browser
    on every input event (no server round trip). x_0 and eps are (C, H, W) float in [-1, 1]
    model units (C = 1 or 3); abar has one value per t. ``label`` says what x_0 shows ("the test
    digit 7"): the canvases' text alternatives and the live region are built from it and from t.
    The last draw's latency in ms is kept in ``window.scrubLatencies`` so a browser test can
    measure it."""
    x_0 = np.asarray(x_0, dtype=np.float32)
    eps = np.asarray(eps, dtype=np.float32)
    if x_0.ndim == 2:
        x_0, eps = x_0[None], eps[None]
    if x_0.shape != eps.shape or x_0.ndim != 3:
        raise ValueError(f"x_0 {x_0.shape} and eps {eps.shape} must both be (C, H, W)")
    c, h, w = x_0.shape
    abar = [float(v) for v in np.asarray(alphas_cumprod, dtype=np.float64)]
    tmax = len(abar) - 1
    t = int(min(max(t, 0), tmax))
    data = json.dumps(
        {
            "c": c,
            "h": h,
            "w": w,
            "scale": int(scale),
            "t": t,
            "abar": abar,
            "x0": _b64_float32(x_0),
            "eps": _b64_float32(eps),
            "label": str(label),
        }
    ).replace("</", "<\\/")  # nothing in the label can close the <script>
    return web.page("forward_scrubber", DATA=data, TMAX=str(tmax), T=str(t))


def fft_pair_figure(magnitudes: dict[str, np.ndarray], height: int = 300) -> go.Figure:
    """Side-by-side heatmaps of log(1 + |FFT|) maps (centred: low frequencies in the middle)."""
    names = list(magnitudes)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    for k, name in enumerate(names):
        fig.add_trace(
            go.Heatmap(z=np.asarray(magnitudes[name])[::-1], colorscale="Viridis", showscale=False),
            row=1,
            col=k + 1,
        )
        fig.update_xaxes(showticklabels=False, row=1, col=k + 1)
        fig.update_yaxes(showticklabels=False, scaleanchor=f"x{k + 1 if k else ''}", row=1, col=k + 1)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10})
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
    n_cells = len(panels) + (line is not None)
    cols = -(-n_cells // rows)
    titles = [p.title for p in panels] + ([line[2]] if line is not None else [])
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.04,
                        vertical_spacing=0.12)
    pos = [(i // cols + 1, i % cols + 1) for i in range(n_cells)]
    for i, (p, (r, c)) in enumerate(zip(panels, pos, strict=False)):
        fig.add_trace(go.Image(source=data_uri(p.frames[0], scale), hoverinfo="skip"), row=r, col=c)
        fig.update_xaxes(visible=False, row=r, col=c)
        fig.update_yaxes(visible=False, row=r, col=c, scaleanchor="x" if i == 0 else f"x{i + 1}")
    if line is not None:
        _add_follower(fig, line, *pos[-1])
    if height is None:  # as tall as the images need at a ~760 px wide column, plus the controls
        h, w = panels[0].frames.shape[1:3]
        height = int(rows * (760 / cols * h / w + 45) + 110)
    base = list(fig.layout.annotations)
    fig.frames = [
        go.Frame(data=[go.Image(source=data_uri(p.frames[k], scale)) for p in panels]
                 + ([go.Scatter(x=[line[0][k]], y=[line[1][k]])] if line is not None else []),
                 traces=list(range(len(panels))) + ([len(fig.data) - 1] if line is not None else []),
                 name=str(k), layout={"annotations": _frame_titles(base, panels, k)})
        for k in range(len(slider_labels))
    ]
    if any(p.frame_titles is not None for p in panels):
        fig.update_layout(annotations=_frame_titles(base, panels, 0))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      updatemenus=[_play_buttons(duration_ms)], sliders=[_scrub_slider(slider_labels)])
    return fig


def _add_follower(fig: go.Figure, line: tuple, r: int, c: int) -> None:
    """The line chart beside the images, and the marker the frames move along it."""
    lx, ly, label = line
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=palette.line(0), name=label,
                             showlegend=False), row=r, col=c)
    fig.add_trace(go.Scatter(x=[lx[0]], y=[ly[0]], mode="markers", showlegend=False, hoverinfo="skip",
                             marker={"size": 12, "color": palette.color(1)}), row=r, col=c)
    pad = 0.04 * (float(np.max(lx)) - float(np.min(lx)) or 1.0)  # the marker fits at both ends
    fig.update_xaxes(title="t", range=[float(np.min(lx)) - pad, float(np.max(lx)) + pad], row=r, col=c)


def _frame_titles(base: list, panels: Sequence[Panel], k: int) -> list:
    out = []
    for i, a in enumerate(base):
        a = go.layout.Annotation(a)
        if i < len(panels) and panels[i].frame_titles is not None:
            a.text = panels[i].frame_titles[k]
        out.append(a)
    return out


def _play_buttons(duration_ms: int) -> dict:
    play = {"frame": {"duration": duration_ms, "redraw": True}, "fromcurrent": True,
            "transition": {"duration": 0}, "mode": "immediate"}
    pause = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    return {"type": "buttons", "direction": "left", "x": 0.0, "y": -0.02, "xanchor": "left", "yanchor": "top",
            "pad": {"r": 10, "t": 30},
            "buttons": [{"label": "▶ Play", "method": "animate", "args": [None, play]},
                        {"label": "❚❚ Pause", "method": "animate", "args": [[None], pause]}]}


def _scrub_slider(labels: Sequence[str]) -> dict:
    jump = {"frame": {"duration": 0, "redraw": True}, "mode": "immediate", "transition": {"duration": 0}}
    return {"active": 0, "x": 0.18, "len": 0.82, "y": -0.02, "yanchor": "top", "pad": {"t": 20, "b": 10},
            "currentvalue": {"prefix": "", "visible": True},
            "steps": [{"label": lab, "method": "animate", "args": [[str(k)], jump]}
                      for k, lab in enumerate(labels)]}
