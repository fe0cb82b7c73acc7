"""The playground's point sets, dashboard side: the picker's sources, a drawing on the canvas as
points (pen colour = class), an uploaded CSV, a preview draw, and the key that tells two point
sets apart. The point sets themselves and the CSV rules are ``engine.toy2d.data``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

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

# the page's picker (short labels: one row at the projector's width)
SOURCES = {name: "8 Gaussians" if name == "8gaussians" else name for name in DATASETS} | {
    "draw": "✎ draw", "upload": "⇪ CSV"}
PEN_COLORS = ("#1f77b4", "#d62728", "#2ca02c")  # drawing: pen colour k = class k
CANVAS_PX = 360
UPLOAD_HELP = (f"A CSV file with columns x, y and optionally label (one row per point; a header row "
               f"naming them, or 2-3 numbers a row): at most {MAX_POINTS:,} points and "
               f"{MAX_CSV_BYTES // 2**20} MB. It is centred and scaled to fit the playground.")


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


def preview(data, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` points of ``data`` (and their classes, or None) drawn with ``seed``, as numpy."""
    x, y = data.sample(n, torch.Generator().manual_seed(seed))
    return x.numpy(), None if y is None else y.numpy()


def data_key(data, source: str) -> str:
    """What identifies a point set: a built-in's name, or a digest of the user's points."""
    if isinstance(data, PointCloud):
        h = hashlib.sha256(data.points.numpy().tobytes())
        if data.labels is not None:
            h.update(data.labels.numpy().tobytes())
        return f"{source}:{h.hexdigest()[:16]}"
    return source
