"""The playground's Plotly figures, pure functions from numpy to a figure (no Streamlit): the
point set, the training losses, quality against network evaluations, scatter and density
panels in the playground's box, and the comparison table's rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard import palette
from engine.toy2d.data import BOX
from engine.toy2d.train import OBJECTIVES

from .sampling import Run, needed_nfe
from .training import label

CLASS_COLORS = palette.SERIES  # class k: palette.color(k) and palette.SYMBOLS[k]
METHOD_STYLE = {"ddpm": 2, "fm": 0, "reflow": 1, "ot-fm": 3, "cfg": 4}  # palette index per objective
METHOD_COLORS = {obj: palette.color(i) for obj, i in METHOD_STYLE.items()}


def _square_axes(fig: go.Figure, row: int | None = None, col: int | None = None, anchor: str = "x") -> None:
    """The box [-BOX, BOX]^2 with equal scales, framed, without ticks."""
    kw = {} if row is None else {"row": row, "col": col}
    style = {"range": [-BOX, BOX], "showticklabels": False, "ticks": "", "zeroline": False, "showgrid": False,
             "showline": True, "linecolor": "#dddddd", "mirror": True, "constrain": "domain"}
    fig.update_xaxes(**style, **kw)
    fig.update_yaxes(**style, scaleanchor=anchor, scaleratio=1, **kw)


def points_figure(x: np.ndarray, labels: np.ndarray | None, class_names: Sequence[str] = (),
                  height: int = 380) -> go.Figure:
    """The point set in the playground's box, coloured by class."""
    fig = go.Figure()
    groups = [(None, np.arange(len(x)))] if labels is None else [
        (k, np.nonzero(labels == k)[0]) for k in range(int(labels.max()) + 1)]
    for k, idx in groups:
        name = "points" if k is None else (class_names[k] if k < len(class_names) else f"class {k}")
        fig.add_trace(go.Scattergl(x=x[idx, 0], y=x[idx, 1], mode="markers", name=name,
                                   marker=palette.marker(k or 0, size=3 if k is None else 4, opacity=0.6)))
    _square_axes(fig)
    fig.update_layout(height=height, width=height + 140, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      showlegend=labels is not None, plot_bgcolor="white")
    return fig


def loss_figure(curves: dict[str, np.ndarray], height: int = 300) -> go.Figure:
    """Training loss of each objective against its step (a running mean over 25 steps)."""
    fig = go.Figure()
    for obj, losses in curves.items():
        y = np.asarray(losses, dtype=np.float64)
        if len(y) == 0:
            continue
        w = min(25, len(y))
        smooth = np.convolve(y, np.ones(w) / w, mode="valid")
        steps = np.arange(w, len(y) + 1)
        every = max(1, len(smooth) // 400)  # a light chart: it is redrawn live while training
        fig.add_trace(go.Scatter(x=steps[::every], y=smooth[::every], mode="lines", name=label(obj),
                                 line=palette.line(METHOD_STYLE[obj])))
    fig.update_layout(height=height, margin={"l": 50, "r": 20, "t": 40, "b": 40}, xaxis={"title": "step"},
                      yaxis={"title": "loss", "type": "log"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return fig


def _log_ticks(values: Sequence[float]) -> list[float]:
    """1, 2, 5 x 10^k covering ``values``: labelled in full on a log axis (Plotly's own minor
    labels read "5, 2, 0.1, 5" for 0.5, 0.2, 0.1, 0.05)."""
    v = [x for x in values if x > 0 and math.isfinite(x)] or [1.0]
    lo, hi = math.floor(math.log10(min(v))), math.ceil(math.log10(max(v)))
    return [m * 10.0**k for k in range(lo, hi + 1) for m in (1, 2, 5)]


def nfe_figure(sweep: dict, height: int = 320) -> go.Figure:
    """MMD to held-out data against network evaluations, one line per objective, and the floor."""
    fig = go.Figure()
    for obj in OBJECTIVES:
        if obj not in sweep:
            continue
        nfe, m = zip(*sweep[obj], strict=True)
        name = label(obj) + (" (DDIM)" if obj == "ddpm" else " (Euler)")
        fig.add_trace(go.Scatter(x=nfe, y=m, mode="lines+markers", name=name,
                                 line=palette.line(METHOD_STYLE[obj])))
    nfes = sorted({nfe for obj in OBJECTIVES if obj in sweep for nfe, _ in sweep[obj]})
    values = [m for obj in OBJECTIVES if obj in sweep for _, m in sweep[obj]] + [sweep["floor"]]
    for y, name, dash in ((sweep["floor"], "two draws of the data (floor)", "dot"),
                          (2 * sweep["floor"], "2× the floor", "dash")):
        fig.add_trace(go.Scatter(x=[nfes[0], nfes[-1]], y=[y, y], mode="lines", name=name,
                                 line={"dash": dash, "color": "#7f7f7f", "width": 2 if dash == "dot" else 1}))
    fig.update_layout(height=height, margin={"l": 50, "r": 20, "t": 60, "b": 40},
                      xaxis={"title": "network evaluations (NFE)", "type": "log", "tickvals": nfes},
                      yaxis={"title": "MMD to held-out points", "type": "log", "tickvals": _log_ticks(values),
                             "tickformat": "~g"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return fig


def scatter_grid(cells: Sequence[Sequence[tuple[str, np.ndarray, str]]], reference: np.ndarray | None = None,
                 cell_px: int = 250) -> go.Figure:
    """Square scatter panels in rows: each cell (title, points (N, 2), colour); ``reference``
    points (the data) faint grey under each."""
    rows, cols = len(cells), max(len(r) for r in cells)
    titles = [c[0] for r in cells for c in r]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.03,
                        vertical_spacing=0.08)
    for i, row in enumerate(cells):
        for j, (_, pts, color) in enumerate(row):
            at = {"row": i + 1, "col": j + 1}
            if reference is not None:
                fig.add_trace(go.Scattergl(x=reference[:, 0], y=reference[:, 1], mode="markers",
                                           showlegend=False, marker={"size": 2, "color": "#c8c8c8"},
                                           hoverinfo="skip"), **at)
            fig.add_trace(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers", showlegend=False,
                                       marker={"size": 2.5, "color": color, "opacity": 0.7}), **at)
            k = i * cols + j + 1
            _square_axes(fig, i + 1, j + 1, f"x{k if k > 1 else ''}")
    fig.update_layout(height=rows * (cell_px + 40) + 20, width=cols * (cell_px + 10) + 20,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, plot_bgcolor="white")
    fig.update_annotations(font_size=13, yshift=6)  # clear of the panel's frame
    return fig


def density_row(sets: Sequence[np.ndarray], titles: Sequence[str], reference: np.ndarray | None = None,
                bins: int = 60, height: int = 300) -> go.Figure:
    """A 2D histogram (density) per point set, side by side, with ``reference`` points as dots."""
    fig = make_subplots(rows=1, cols=len(sets), subplot_titles=list(titles), horizontal_spacing=0.02)
    edges = np.linspace(-BOX, BOX, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    for k, pts in enumerate(sets):
        h, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=[edges, edges])
        fig.add_trace(go.Heatmap(x=centers, y=centers, z=np.sqrt(h), showscale=False, hoverinfo="skip",
                                 colorscale=[[0, "#ffffff"], [0.15, "#c6dbef"], [1, "#08306b"]]),
                      row=1, col=k + 1)
        if reference is not None:
            fig.add_trace(go.Scattergl(x=reference[:, 0], y=reference[:, 1], mode="markers", showlegend=False,
                                       marker={"size": 2, "color": palette.color(1), "opacity": 0.35},
                                       hoverinfo="skip"), row=1, col=k + 1)
        _square_axes(fig, 1, k + 1, f"x{k + 1 if k else ''}")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 50, "b": 10}, plot_bgcolor="white")
    return fig


def metrics_rows(runs: dict[str, Run], sweep: dict | None = None) -> list[dict]:
    """The comparison table: one row per objective."""
    rows = []
    for obj, r in runs.items():
        row = {"objective": label(obj), "sampler": f"{r.sampler}, {r.steps} steps",
               "NFE": r.nfe, "straightness": round(r.straightness, 3), "MMD": round(r.quality.mmd, 4),
               "MMD floor": round(r.quality.mmd_floor, 4), "sliced W": round(r.quality.swd, 4)}
        if sweep is not None and obj in sweep:
            need = needed_nfe(sweep[obj], sweep["floor"])
            row["NFE to MMD ≤ 2× floor"] = str(need) if need is not None else f"> {sweep[obj][-1][0]}"
        rows.append(row)
    return rows


def density_pair(points: np.ndarray, x: np.ndarray, y: np.ndarray, density: np.ndarray,
                 titles: Sequence[str], height: int = 320) -> go.Figure:
    """The data's histogram (as a density: count / (N × cell area)) beside a learned density on
    the same grid and the same colour scale."""
    step = float(x[1] - x[0])
    edges = np.concatenate([x - step / 2, x[-1:] + step / 2])
    h, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=[edges, edges])
    data_density = h / (len(points) * step * step)
    top = float(np.sqrt(max(data_density.max(), density.max(), 1e-12)))
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(titles), horizontal_spacing=0.03)
    for k, z in enumerate((data_density, density)):
        fig.add_trace(go.Heatmap(x=x, y=y, z=np.sqrt(z), zmin=0, zmax=top, showscale=k == 1,
                                 colorscale=[[0, "#ffffff"], [0.15, "#c6dbef"], [1, "#08306b"]],
                                 colorbar={"title": "√density", "thickness": 12},
                                 hovertemplate="x %{x:.2f}, y %{y:.2f}<extra></extra>"),
                      row=1, col=k + 1)
        _square_axes(fig, 1, k + 1, f"x{k + 1 if k else ''}")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 50, "b": 10}, plot_bgcolor="white")
    return fig
