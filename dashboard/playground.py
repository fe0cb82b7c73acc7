"""The 2D playground page (``pages/b4_playground.py``) without Streamlit: the user's points, the
training of the four objectives, what the page samples from them, its figures, the particle
animation drawn in the browser, and the exports (GIF, MP4, PNG).

Flow matching (Part B): x_0 is noise, x_1 data, t runs 0 -> 1. DDPM (Part A): x_0 is data, t
counts down 990 -> 0. The animation shows every run against its *progress* from noise (0) to
data (1), so the two conventions line up; each panel also prints its own t.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image, ImageDraw
from plotly.subplots import make_subplots

from engine.toy2d.data import (
    BOX,
    DATASETS,
    MAX_CSV_BYTES,
    MAX_POINTS,
    PointCloud,
    PointsError,
    check_points,
    parse_csv,
)
from engine.toy2d.sample import Quality, Reference, held_out, mmd, sample, straightness, velocity_field
from engine.toy2d.train import OBJECTIVE_NAMES, OBJECTIVES, ToyConfig, TrainResult, torch_threads, train

# the page's picker (short labels: one row at the projector's width)
SOURCES = {name: "8 Gaussians" if name == "8gaussians" else name for name in DATASETS} | {
    "draw": "✎ draw", "upload": "⇪ CSV"}
PEN_COLORS = ("#1f77b4", "#d62728", "#2ca02c")  # drawing: pen colour k = class k
CLASS_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                "#bcbd22", "#7f7f7f")
METHOD_COLORS = {"ddpm": "#7f7f7f", "fm": "#1f77b4", "reflow": "#d62728", "ot-fm": "#2ca02c",
                 "cfg": "#9467bd"}
SAMPLING = {"ddpm": ("ddpm", 33), "fm": ("euler", 50), "reflow": ("euler", 50), "ot-fm": ("euler", 50)}
QRANGE = 2 * BOX  # the animation's int16 positions cover [-QRANGE, QRANGE]
HUES = 12  # particles are coloured by the direction of their starting noise: where each region goes
CANVAS_PX = 360
FEW_STEPS = (1, 2, 4, 8, 16, 32)
GAMMAS = (0.0, 1.0, 2.0, 5.0)

Progress = Callable[[float, str], None]


def order(objectives: Sequence[str]) -> list[str]:
    """The objectives to train, in training order: reflow needs a flow-matching model first."""
    chosen = set(objectives) | ({"fm"} if "reflow" in objectives else set())
    return [o for o in ("fm", "reflow", "ot-fm", "ddpm") if o in chosen]


SHORT = {"ddpm": "DDPM", "fm": "FM", "reflow": "reflow", "ot-fm": "OT-FM"}


def label(objective: str) -> str:
    return "flow matching with classes (CFG)" if objective == "cfg" else OBJECTIVE_NAMES[objective]


# ----------------------------------------------------------------------------- the user's points


def points_from_canvas(rgba: np.ndarray | None, max_points: int = 4000, seed: int = 0) -> PointCloud:
    """A drawing (H, W, 4) uint8 from the canvas -> a ``PointCloud`` in the playground's box: one
    point per painted pixel (at most ``max_points``, a fixed random subset), its class the pen
    colour nearest to the pixel's (``PEN_COLORS``; classes only when more than one is used)."""
    if rgba is None or rgba.ndim != 3 or rgba.shape[-1] != 4:
        raise PointsError("nothing is drawn yet: draw a shape on the canvas")
    rgb_all = rgba[..., :3].astype(np.int32)
    # painted: opaque and unlike the white paper (some canvas versions return the background too)
    ys, xs = np.nonzero((rgba[..., 3] > 127) & ((255 - rgb_all).max(-1) > 60))
    if len(xs) == 0:
        raise PointsError("nothing is drawn yet: draw a shape on the canvas")
    rng = np.random.default_rng(seed)
    if len(xs) > max_points:
        keep = np.sort(rng.choice(len(xs), max_points, replace=False))
        ys, xs = ys[keep], xs[keep]
    h, w = rgba.shape[:2]
    jitter = rng.random((len(xs), 2))
    pts = np.stack([(xs + jitter[:, 0]) / w * 2 * BOX - BOX, BOX - (ys + jitter[:, 1]) / h * 2 * BOX], 1)
    if len(pts) >= 2 and pts.std(axis=0).max() < 0.1:
        raise PointsError("that is a single dot: draw a shape with some extent (strokes, several dots)")
    pens = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in PEN_COLORS], dtype=np.float64)
    rgb = rgba[ys, xs, :3].astype(np.float64)
    labels = ((rgb[:, None, :] - pens[None]) ** 2).sum(-1).argmin(1)
    return check_points(pts, labels, rescale=False, name="drawing", title="your drawing")


def load_csv(data: bytes, name: str = "upload") -> PointCloud:
    """An uploaded CSV (x, y[, label]) as a point set, or a ``PointsError`` that says what is wrong."""
    return parse_csv(data, name)


UPLOAD_HELP = (f"A CSV file with columns x, y and optionally label (one row per point; a header row "
               f"naming them, or 2-3 numbers a row): at most {MAX_POINTS:,} points and "
               f"{MAX_CSV_BYTES // 2**20} MB. It is centred and scaled to fit the playground.")


def preview(data, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    x, y = data.sample(n, torch.Generator().manual_seed(seed))
    return x.numpy(), None if y is None else y.numpy()


def data_key(data, source: str) -> str:
    """What identifies a point set: a built-in's name, or a digest of the user's points."""
    if isinstance(data, PointCloud):
        import hashlib

        h = hashlib.sha256(data.points.numpy().tobytes())
        if data.labels is not None:
            h.update(data.labels.numpy().tobytes())
        return f"{source}:{h.hexdigest()[:16]}"
    return source


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True, eq=False)
class Trained:
    """One press of Train: the data, how it was trained, and a result per objective."""

    data: object
    key: str
    conditional: bool
    seed: int
    steps: int
    results: dict[str, TrainResult]  # objective -> its model, trained without classes
    cfg: TrainResult | None = None  # flow matching with classes (p_uncond = 0.1), for CFG

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results.values()) + (self.cfg.seconds if self.cfg else 0.0)

    @property
    def losses(self) -> dict[str, np.ndarray]:
        return {o: r.losses for o, r in self.results.items()} | ({"cfg": self.cfg.losses} if self.cfg else {})


def train_models(data, objectives: Sequence[str], *, conditional: bool, seed: int, steps: int,
                 key: str = "", callback: Callable[[float, str, str, float], None] | None = None) -> Trained:
    """Train each objective (``order``) on ``data`` without classes, and with ``conditional`` a
    class-conditioned flow-matching model for CFG as well (``Trained.cfg``): unconditional samples
    from a class model's null branch, which sees 10 % of the data, were visibly worse.
    ``callback(fraction, text, objective, loss)`` after every step (loss is nan while reflow
    samples its pairs; objective "cfg" for the class model)."""
    todo = order(objectives) + (["cfg"] if conditional and data.num_classes > 1 else [])
    weights = {o: steps * (1.5 if o == "reflow" else 1.0) for o in todo}  # reflow also samples pairs
    total, done = sum(weights.values()), 0.0
    results: dict[str, TrainResult] = {}
    for obj in todo:
        cfg = ToyConfig(objective="fm" if obj == "cfg" else obj, steps=steps, seed=seed,
                        num_classes=data.num_classes if obj == "cfg" else 0)

        def report(s, obj=obj, before=done):
            share = s.step / s.total * (weights[obj] - steps if s.stage == "pairs" else steps)
            if s.stage == "train" and obj == "reflow":
                share += weights[obj] - steps
            text = (f"{label(obj)}: sampling pairs {s.step:,}/{s.total:,}" if s.stage == "pairs"
                    else f"{label(obj)}: step {s.step:,}/{s.total:,}, loss {s.loss:.3f}")
            if callback is not None:
                callback((before + share) / total, text, obj, s.loss)

        base = results["fm"].model if obj == "reflow" else None
        results[obj] = train(cfg, data, report, base=base, threads=1)
        done += weights[obj]
    cfg_model = results.pop("cfg", None)
    return Trained(data, key, cfg_model is not None, seed, steps, results, cfg_model)


# ----------------------------------------------------------------------------- sampling for the page


@dataclass(frozen=True, eq=False)
class Run:
    """One objective sampled for the page: states (K, N, 2) (every state of the run), the
    velocity field on the arrow grid at each state (K, G, G, 2), and its numbers."""

    objective: str
    sampler: str
    steps: int
    nfe: int
    times: tuple
    states: np.ndarray
    field: np.ndarray
    straightness: float
    quality: Quality


def arrow_grid(g: int) -> torch.Tensor:
    """(g*g, 2) points of a regular grid inside the box, row-major from the top left."""
    c = torch.linspace(-BOX, BOX, g + 2)[1:-1]
    yy, xx = torch.meshgrid(c.flip(0), c, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


def simulate(trained: Trained, n: int, seed: int, steps: dict[str, int] | None = None, grid: int = 17,
             max_frames: int = 101, _progress: Progress | None = None) -> dict[str, Run]:
    """Every trained objective sampled from one N(0, I) draw of ``n`` points (its default
    sampler, ``steps`` overriding the step counts), with the field at each kept state."""
    steps = steps or {}
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    pts = arrow_grid(grid)
    out = {}
    with torch_threads(1):
        ref = Reference(trained.data, n, seed)
        for k, (obj, result) in enumerate(trained.results.items()):
            if _progress is not None:
                _progress(k / len(trained.results), f"Sampling {label(obj)}…")
            sampler, default = SAMPLING[obj]
            traj = sample(result.model, noise, sampler, steps.get(obj, default),
                          generator=torch.Generator().manual_seed(seed + 1))
            kept = traj.subsample(max_frames)
            field = velocity_field(result.model, pts, kept.times).numpy()
            field = field.reshape(len(kept.times), grid, grid, 2)
            out[obj] = Run(obj, sampler, len(traj.times) - 1, traj.nfe, tuple(kept.times),
                           kept.x.numpy().astype(np.float32), field.astype(np.float32), straightness(traj.x),
                           ref.quality(traj.final.float()))
    return out


def hue_index(noise: np.ndarray) -> np.ndarray:
    """(N,) colour bins from the angle of each particle's starting point."""
    angle = np.arctan2(noise[:, 1], noise[:, 0])
    return ((angle + math.pi) / (2 * math.pi) * HUES).astype(np.int64).clip(0, HUES - 1).astype(np.uint8)


def hue_palette() -> list[str]:
    import colorsys

    rgb = [colorsys.hsv_to_rgb(k / HUES, 0.85, 0.85) for k in range(HUES)]
    return ["#" + "".join(f"{int(255 * c):02x}" for c in col) for col in rgb]


def nfe_sweep(trained: Trained, n: int, seed: int, counts: Sequence[int] = FEW_STEPS,
              _progress: Progress | None = None) -> dict:
    """Quality against NFE from one noise draw: Euler steps for the flows, DDIM (eta = 0) for the
    DDPM. Returns {"floor": MMD floor, objective: [(nfe, mmd), ...]}, and 1- and 2-step samples
    of each flow under ``"few"``."""
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    out: dict = {"few": {}}
    with torch_threads(1):
        ref = Reference(trained.data, n, seed)
        out["floor"] = ref.mmd_floor
        for k, (obj, result) in enumerate(trained.results.items()):
            if _progress is not None:
                _progress(k / len(trained.results), f"{label(obj)}: quality against steps…")
            sampler = "ddim" if obj == "ddpm" else "euler"
            rows = []
            for c in counts:
                traj = sample(result.model, noise, sampler, c, record=False)
                m = mmd(traj.final.float(), ref.points, yy=ref.yy)
                rows.append((traj.nfe, m))
                if obj != "ddpm" and c in (1, 2):
                    out["few"][(obj, c)] = (traj.final.float().numpy(), m)
            out[obj] = rows
    return out


def needed_nfe(rows: Sequence[tuple[int, float]], floor: float, factor: float = 2.0) -> int | None:
    """The fewest NFE whose MMD is within ``factor`` x the data's floor, or None."""
    return next((nfe for nfe, m in rows if m <= factor * floor), None)


def held_out_class(data, label_: int, n: int, seed: int) -> np.ndarray:
    """``n`` fresh points of class ``label_`` (the reference under the CFG densities)."""
    return held_out(data, n, seed, label_).numpy()


def cfg_samples(trained: Trained, label_: int, n: int, seed: int, gammas: Sequence[float] = GAMMAS,
                _progress: Progress | None = None) -> list[np.ndarray]:
    """Samples of class ``label_`` from the class-conditioned flow-matching model, one set per
    gamma, all from the same noise (50 Euler steps)."""
    model = trained.cfg.model
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    out = []
    with torch_threads(1):
        for k, g in enumerate(gammas):
            if _progress is not None:
                _progress(k / len(gammas), f"CFG γ = {g:g}…")
            out.append(sample(model, noise, "euler", 50, label_, g, record=False).final.float().numpy())
    return out


# ----------------------------------------------------------------------------- figures


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
        color = "#1f77b4" if k is None else CLASS_COLORS[k % len(CLASS_COLORS)]
        fig.add_trace(go.Scattergl(x=x[idx, 0], y=x[idx, 1], mode="markers", name=name,
                                   marker={"size": 3, "color": color, "opacity": 0.6}))
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
                                 line={"color": METHOD_COLORS[obj]}))
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
                                 line={"color": METHOD_COLORS[obj]}))
    nfes = sorted({nfe for obj in OBJECTIVES if obj in sweep for nfe, _ in sweep[obj]})
    values = [m for obj in OBJECTIVES if obj in sweep for _, m in sweep[obj]] + [sweep["floor"]]
    for y, name, dash in ((sweep["floor"], "two draws of the data (floor)", "dot"),
                          (2 * sweep["floor"], "2× the floor", "dash")):
        fig.add_trace(go.Scatter(x=[nfes[0], nfes[-1]], y=[y, y], mode="lines", name=name,
                                 line={"dash": dash, "color": "black" if dash == "dot" else "gray"}))
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
                                       marker={"size": 2, "color": "#d62728", "opacity": 0.35},
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


# ----------------------------------------------------------------------------- the animation


def field_scale(field: np.ndarray) -> np.ndarray:
    """(K,) the 95th percentile of the arrow lengths of each state's field (K, G, G, 2): arrows are
    drawn in units of it, so each moment's field reads at a glance. One scale for all moments
    would show nothing early on: near t = 1 a flow's field off the data grows like 1 / (1 - t)."""
    speed = np.linalg.norm(field.reshape(field.shape[0], -1, 2), axis=-1)
    return np.maximum(np.percentile(speed, 95, axis=1), 1e-6)


def _b64(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _time_labels(run: Run, times: Sequence) -> list[str]:
    return [f"t = {int(t)}" if run.objective == "ddpm" else f"t = {float(t):.2f}" for t in times]


def _frames_within(k: int, budget: int) -> np.ndarray:
    """At most ``budget`` evenly spaced state indices of ``k`` (first and last kept)."""
    if k <= budget:
        return np.arange(k)
    return np.unique(np.round(np.linspace(0, k - 1, budget)).astype(int))


def layout(panels: int, presenter: bool = False) -> tuple[int, int]:
    """(columns, canvas px) of the animation for ``panels`` panels."""
    if panels == 1:
        return 1, 560 if presenter else 520
    return 2, 440 if presenter else 380


def animation_html(runs: dict[str, Run], noise_colors: np.ndarray, *, size: int = 380, columns: int = 2,
                   duration_ms: int = 4000, trails: int = 150, max_values: int = 1_600_000) -> str:
    """A self-contained HTML/JS block: every run's particles travel from noise (progress 0) to
    data (1) on its own canvas, over the learned field (arrows) at that moment and the paths of
    ``trails`` particles so far. Play/pause and an <input type=range> scrub the progress;
    positions between two stored states are interpolated linearly, so nothing goes back to the
    server. States travel once as int16 over twice the box (2.4e-4 resolution; a particle outside
    the box is drawn off the canvas, not piled on its edge), at most ``max_values`` coordinates
    in all (fewer states per run for many particles).

    Timing hooks for browser tests: ``window.__frameTimes`` (ms between animation frames while
    playing), ``window.__scrubLatencies`` (ms from an input event to its redraw done),
    ``window.__drawMs`` (ms per redraw), ``window.__play(on)`` and ``window.__state()``."""
    n = next(iter(runs.values())).states.shape[1]
    budget = max(9, min(101, max_values // (2 * n * len(runs))))
    panels = []
    for run in runs.values():
        idx = _frames_within(len(run.times), budget)
        states = np.clip(np.round(run.states[idx] / QRANGE * 32767), -32767, 32767)
        field = run.field[idx]
        g = field.shape[1]
        spacing = size / (g + 1)
        panels.append({
            "title": f"{label(run.objective)} · {run.sampler}, {run.steps} steps, NFE {run.nfe}",
            "k": len(idx), "times": _time_labels(run, [run.times[i] for i in idx]),
            "states": _b64(states, "<i2"), "field": _b64(field, "<f4"),
            "fscale": [round(float(0.9 * spacing / v), 6) for v in field_scale(field)],
            "caption": f"straightness {run.straightness:.3f} · MMD {run.quality.mmd:.3f}",
        })
    grid = int(next(iter(runs.values())).field.shape[1])
    data = {"n": n, "box": BOX, "qrange": QRANGE, "size": size, "grid": grid,
            "duration_ms": duration_ms, "hold_ms": 900, "trails": trails, "palette": hue_palette(),
            "colors": _b64(noise_colors, "u1"), "panels": panels}
    payload = json.dumps(data).replace("</", "<\\/")  # nothing in the data can close the <script>
    return (_ANIMATION_TEMPLATE.replace("__DATA__", payload).replace("__COLS__", str(int(columns)))
            .replace("__SIZE__", str(int(size))))


def animation_height(panels: int, size: int, columns: int) -> int:
    rows = -(-panels // columns)
    return rows * (size + 48) + 56


_ANIMATION_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;font-family:"Source Sans Pro",sans-serif;color:#31333f}
.bar{display:flex;align-items:center;gap:12px;margin:2px 0 8px;flex-wrap:wrap;font-size:15px}
#p{flex:1;min-width:220px;max-width:520px;accent-color:#ff4b4b}
button{font-size:14px;padding:3px 10px;border:1px solid #ccc;border-radius:6px;background:#fff;cursor:pointer}
.grid{display:grid;grid-template-columns:repeat(__COLS__,__SIZE__px);gap:10px 16px}
figure{margin:0} figcaption{font-size:13px;margin-top:2px;text-align:center;line-height:1.25}
canvas{border:1px solid #ddd;display:block}
</style></head><body>
<div class="bar"><button id="play">▶ Play</button>
<input id="p" type="range" min="0" max="1000" step="1" value="0" aria-label="progress from noise to data">
<span>noise → data: <b id="pv">0.00</b></span>
<label><input type="checkbox" id="fld" checked> vector field</label>
<label><input type="checkbox" id="pth" checked> paths</label>
<button id="png" title="Download the frame shown as PNG">PNG</button></div>
<div class="grid" id="g"></div>
<script>
const D = __DATA__;
function buf(b64){const s=atob(b64);const u=new Uint8Array(s.length);
 for(let i=0;i<s.length;i++)u[i]=s.charCodeAt(i);return u.buffer;}
const N=D.n,B=D.box,S=D.size,G=D.grid,Q=D.qrange/32767,sc=S/(2*B),dpr=window.devicePixelRatio||1;
const col=new Uint8Array(buf(D.colors));
const groups=D.palette.map((_,c)=>{const a=[];for(let i=0;i<N;i++)if(col[i]===c)a.push(2*i);
 return Int32Array.from(a);});
const M=Math.min(D.trails,N);
const P=D.panels.map((p,j)=>{const fig=document.createElement("figure");
 const cv=document.createElement("canvas");
 cv.width=Math.round(S*dpr);cv.height=Math.round(S*dpr);cv.style.width=S+"px";cv.style.height=S+"px";cv.id="c"+j;
 const cap=document.createElement("figcaption");const b=document.createElement("b");b.textContent=p.title;
 cap.append(b,document.createElement("br"),document.createTextNode(p.caption));fig.append(cv,cap);
 document.getElementById("g").append(fig);
 return {K:p.k,x:new Int16Array(buf(p.states)),f:new Float32Array(buf(p.field)),fs:p.fscale,times:p.times,
  ctx:cv.getContext("2d"),cv};});
const slider=document.getElementById("p"),btn=document.getElementById("play");
const pv=document.getElementById("pv");
const fld=document.getElementById("fld"),pth=document.getElementById("pth");
window.__frameTimes=[];window.__scrubLatencies=[];window.__drawMs=[];
function panel(Pn,prog){const c=Pn.ctx,K=Pn.K,x=Pn.x,f=prog*(K-1),k=Math.min(Math.floor(f),K-2),a=f-k,b=1-a;
 c.setTransform(dpr,0,0,dpr,0,0);c.fillStyle="#fff";c.fillRect(0,0,S,S);
 if(fld.checked){const F=Pn.f,o0=k*G*G*2,o1=(k+1)*G*G*2,sp=S/(G+1),fs=b*Pn.fs[k]+a*Pn.fs[k+1];c.beginPath();
  for(let r=0;r<G;r++)for(let q=0;q<G;q++){const o=(r*G+q)*2;
   let dx=(b*F[o0+o]+a*F[o1+o])*fs,dy=-(b*F[o0+o+1]+a*F[o1+o+1])*fs;const L=Math.hypot(dx,dy);
   if(L<0.8)continue;if(L>1.3*sp){dx*=1.3*sp/L;dy*=1.3*sp/L;}
   const px=(q+1)*sp,py=(r+1)*sp,hx=px+dx,hy=py+dy,an=Math.atan2(dy,dx),h=Math.min(5,0.4*Math.hypot(dx,dy));
   c.moveTo(px,py);c.lineTo(hx,hy);c.lineTo(hx-h*Math.cos(an-0.45),hy-h*Math.sin(an-0.45));
   c.moveTo(hx,hy);c.lineTo(hx-h*Math.cos(an+0.45),hy-h*Math.sin(an+0.45));}
  c.strokeStyle="rgba(110,110,110,0.6)";c.lineWidth=1;c.stroke();}
 if(pth.checked){c.beginPath();
  for(let i=0;i<M;i++){let o=2*i;c.moveTo((x[o]*Q+B)*sc,(B-x[o+1]*Q)*sc);
   for(let j=1;j<=k;j++){o=(j*N+i)*2;c.lineTo((x[o]*Q+B)*sc,(B-x[o+1]*Q)*sc);}
   const e0=(k*N+i)*2,e1=((k+1)*N+i)*2;c.lineTo(((b*x[e0]+a*x[e1])*Q+B)*sc,(B-(b*x[e0+1]+a*x[e1+1])*Q)*sc);}
  c.strokeStyle="rgba(30,30,30,0.28)";c.lineWidth=0.8;c.stroke();}
 const s0=k*N*2,s1=(k+1)*N*2;
 for(let g=0;g<groups.length;g++){const idx=groups[g];c.fillStyle=D.palette[g];
  for(let m=0;m<idx.length;m++){const i=idx[m];
   c.fillRect(((b*x[s0+i]+a*x[s1+i])*Q+B)*sc-1.1,(B-(b*x[s0+i+1]+a*x[s1+i+1])*Q)*sc-1.1,2.2,2.2);}}
 c.fillStyle="rgba(255,255,255,0.8)";c.fillRect(0,0,74,20);c.fillStyle="#31333f";c.font="13px sans-serif";
 c.fillText(Pn.times[Math.round(f)],5,15);}
let prog=0,playing=false,last=null,hold=0;
function draw(p){const t0=performance.now();for(const Pn of P)panel(Pn,p);pv.textContent=p.toFixed(2);
 window.__drawMs.push(performance.now()-t0);if(window.__drawMs.length>4000)window.__drawMs.shift();}
function tick(ts){if(!playing){last=null;return;}
 if(last!==null){const dt=ts-last;window.__frameTimes.push(dt);
  if(window.__frameTimes.length>4000)window.__frameTimes.shift();
  if(prog>=1){hold+=dt;if(hold>D.hold_ms){prog=0;hold=0;}}else prog=Math.min(1,prog+dt/D.duration_ms);}
 last=ts;slider.value=Math.round(prog*1000);draw(prog);requestAnimationFrame(tick);}
function setPlaying(on){playing=on;btn.textContent=on?"❚❚ Pause":"▶ Play";
 if(on){if(prog>=1)prog=0;hold=0;last=null;requestAnimationFrame(tick);}}
btn.addEventListener("click",()=>setPlaying(!playing));
slider.addEventListener("input",e=>{if(playing)setPlaying(false);prog=slider.value/1000;draw(prog);
 window.__scrubLatencies.push(performance.now()-e.timeStamp);});
fld.addEventListener("change",()=>draw(prog));pth.addEventListener("change",()=>draw(prog));
window.__play=setPlaying;window.__state=()=>({prog:prog,playing:playing,panels:P.length,n:N});
document.getElementById("png").addEventListener("click",()=>{const w=P[0].cv.width,h=P[0].cv.height;
 const out=document.createElement("canvas");out.width=w*P.length+8*(P.length-1);out.height=h;
 const g=out.getContext("2d");g.fillStyle="#fff";g.fillRect(0,0,out.width,out.height);
 P.forEach((Pn,j)=>g.drawImage(Pn.cv,j*(w+8),0));const a=document.createElement("a");
 a.href=out.toDataURL("image/png");a.download="playground_"+prog.toFixed(2)+".png";a.click();});
draw(0);
</script></body></html>"""


# ----------------------------------------------------------------------------- exports


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def render_frame(runs: dict[str, Run], noise_colors: np.ndarray, prog: float, size: int = 300,
                 field: bool = True, paths: bool = True, trails: int = 150) -> np.ndarray:
    """One frame of the animation at ``prog`` in [0, 1] as an (H, W, 3) uint8 picture: the runs
    side by side, as the browser draws them (for GIF, MP4 and PNG exports)."""
    from PIL import ImageFont

    palette = [_rgb(c) for c in hue_palette()]
    font = ImageFont.load_default(12)
    tiles = []
    for run in runs.values():
        im = Image.new("RGB", (size, size + 22), "white")
        d = ImageDraw.Draw(im)
        k_all = len(run.times)
        f = prog * (k_all - 1)
        k = min(int(f), k_all - 2)
        a = f - k
        to_px = lambda p: ((p[..., 0] + BOX) / (2 * BOX) * size, (BOX - p[..., 1]) / (2 * BOX) * size)  # noqa: E731
        if field:
            g = run.field.shape[1]
            v = (1 - a) * run.field[k] + a * run.field[k + 1]
            sp = size / (g + 1)
            typical = field_scale(run.field[k:k + 2])
            scale = 0.9 * sp * ((1 - a) / typical[0] + a / typical[1])
            for r in range(g):
                for q in range(g):
                    dx, dy = v[r, q, 0] * scale, -v[r, q, 1] * scale  # clipped like the browser's
                    length = math.hypot(dx, dy)
                    if length < 0.8:
                        continue
                    if length > 1.3 * sp:
                        dx, dy = dx * 1.3 * sp / length, dy * 1.3 * sp / length
                    px, py = (q + 1) * sp, (r + 1) * sp
                    hx, hy, an = px + dx, py + dy, math.atan2(dy, dx)
                    h = min(5.0, 0.4 * math.hypot(dx, dy))
                    grey = (150, 150, 150)
                    d.line([(px, py), (hx, hy)], fill=grey, width=1)
                    d.line([(hx - h * math.cos(an - 0.45), hy - h * math.sin(an - 0.45)), (hx, hy),
                            (hx - h * math.cos(an + 0.45), hy - h * math.sin(an + 0.45))], fill=grey)
        pos = (1 - a) * run.states[k] + a * run.states[k + 1]
        if paths:  # translucent like the browser's: a wandering DDPM path must not hide the particles
            m = min(trails, pos.shape[0])
            xs, ys = to_px(np.concatenate([run.states[: k + 1, :m], pos[None, :m]]))
            ink = Image.new("L", im.size, 0)
            di = ImageDraw.Draw(ink)
            for i in range(m):
                di.line(list(zip(xs[:, i].tolist(), ys[:, i].tolist(), strict=True)), fill=80)
            im.paste((30, 30, 30), mask=ink)
        xs, ys = to_px(pos)
        for c, rgb in enumerate(palette):
            idx = np.nonzero(noise_colors == c)[0]
            pts = [(float(x), float(y)) for x, y in zip(xs[idx], ys[idx], strict=True)]
            for ox, oy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                d.point([(x + ox, y + oy) for x, y in pts], fill=rgb)
        d.rectangle([0, 0, size - 1, size - 1], outline=(210, 210, 210))
        d.rectangle([1, 1, 74, 18], fill=(255, 255, 255))
        d.text((5, 3), _time_labels(run, [run.times[round(f)]])[0], fill=(49, 51, 63), font=font)
        # the default font has no Greek: "DDPM (eps)"
        d.text((5, size + 4), f"{label(run.objective)}, NFE {run.nfe}".replace("ε", "eps"), fill=(49, 51, 63),
               font=font)
        tiles.append(np.asarray(im))
    gap = np.full((size + 22, 8, 3), 255, np.uint8)
    return np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)


class Frames(Sequence):
    """``count`` frames of the animation, each drawn only when asked for (downloads encode on click)."""

    def __init__(self, runs: dict[str, Run], noise_colors: np.ndarray, count: int = 48, **kw):
        self.runs, self.colors, self.count, self.kw = runs, noise_colors, count, kw

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self.count))]
        if not -self.count <= k < self.count:
            raise IndexError(k)
        return render_frame(self.runs, self.colors, (k % self.count) / max(1, self.count - 1), **self.kw)


def frames_png(runs: dict[str, Run], noise_colors: np.ndarray, progs=(0.0, 0.25, 0.5, 0.75, 1.0),
               size: int = 240) -> bytes:
    """The animation at a few moments, one row per moment, as PNG bytes."""
    from dashboard import images

    rows = [render_frame(runs, noise_colors, p, size=size) for p in progs]
    return images.png(images.grid(rows, ncols=1, pad=6))


def has_mp4() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def mp4(frames: Sequence[np.ndarray], fps: int = 20) -> bytes:
    """An H.264 MP4 of the frames through imageio-ffmpeg (its bundled ffmpeg); even sizes only."""
    import os
    import tempfile

    import imageio_ffmpeg

    first = frames[0]
    h, w = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(path, (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=1, quality=7)
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f[:h, :w, :3]))
        writer.close()
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)
