"""The 2D playground (diffusion and flow matching as geometry): toy point sets and a user's
points. The models and their training are in ``engine.toy2d.train``, sampling and the numbers
that compare runs in ``engine.toy2d.sample``, ``python -m engine toy2d`` in ``engine.cli.toy2d``.

Point sets live in a box of about [-4, 4]^2 (``BOX``); each has a ``sample(n, generator)`` so a
seed makes it reproducible, and most carry a class label (which moon, which Gaussian, which
spiral arm, which ring) for classifier-free guidance. A user's points (drawn, or a CSV of x, y
[, label]) become a ``PointCloud``, checked with clear messages (``PointsError``).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np
import torch

BOX = 4.0  # every point set fits in [-BOX, BOX]^2
MIN_POINTS, MAX_POINTS = 10, 20_000
MAX_CLASSES = 10
MAX_CSV_BYTES = 10 * 1024 * 1024


class PointsError(ValueError):
    """A user's point set cannot be used; the message says why and what to do."""


# ----------------------------------------------------------------------------- point sets


def _moons(n, g):
    y = torch.randint(0, 2, (n,), generator=g)
    a = torch.rand(n, generator=g) * math.pi
    upper = torch.stack([a.cos(), a.sin()], 1)
    lower = torch.stack([1 - a.cos(), 0.5 - a.sin()], 1)
    x = torch.where(y[:, None] == 0, upper, lower) - torch.tensor([0.5, 0.25])
    return 2.0 * x + 0.1 * torch.randn(n, 2, generator=g), y


def _gaussians(n, g):
    y = torch.randint(0, 8, (n,), generator=g)
    angle = y.float() * (math.pi / 4)
    return 3.0 * torch.stack([angle.cos(), angle.sin()], 1) + 0.25 * torch.randn(n, 2, generator=g), y


def _checkerboard(n, g):
    x1 = torch.rand(n, generator=g) * 4 - 2
    x2 = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g).float() * 2
    x2 = x2 + torch.floor(x1) % 2
    return 1.5 * torch.stack([x1, x2], 1), None


def _spirals(n, g):
    y = torch.randint(0, 2, (n,), generator=g)
    r = torch.rand(n, generator=g).sqrt()  # uniform along the arm's area
    angle = r * 3 * math.pi + y.float() * math.pi
    return 3.2 * r[:, None] * torch.stack([angle.cos(), angle.sin()], 1) + 0.08 * torch.randn(
        n, 2, generator=g), y


def _circles(n, g):
    y = torch.randint(0, 2, (n,), generator=g)
    angle = torch.rand(n, generator=g) * 2 * math.pi
    r = torch.where(y == 0, 3.0, 1.5)
    return r[:, None] * torch.stack([angle.cos(), angle.sin()], 1) + 0.1 * torch.randn(n, 2, generator=g), y


@dataclass(frozen=True, eq=False)
class Toy2D:
    """A built-in point set: ``sample(n, generator) -> (x (n, 2) float32, labels (n,) long or None)``."""

    name: str
    title: str
    class_names: tuple[str, ...]
    _draw: object

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def sample(self, n: int, generator: torch.Generator | None = None):
        x, y = self._draw(n, generator)
        return x.float(), (y.long() if y is not None and self.class_names else None)


DATASETS = {
    "moons": Toy2D("moons", "two moons", ("upper moon", "lower moon"), _moons),
    "8gaussians": Toy2D("8gaussians", "8 Gaussians", tuple(f"Gaussian {k}" for k in range(8)), _gaussians),
    "checkerboard": Toy2D("checkerboard", "checkerboard", (), _checkerboard),
    "spirals": Toy2D("spirals", "two spirals", ("arm 1", "arm 2"), _spirals),
    "circles": Toy2D("circles", "concentric circles", ("outer ring", "inner ring"), _circles),
}


def dataset(name: str) -> Toy2D:
    if name not in DATASETS:
        raise ValueError(f"unknown 2D data set {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]


@dataclass(frozen=True, eq=False)
class PointCloud:
    """A user's points as a distribution: draws pick a point at random and add Gaussian jitter of
    ``bandwidth`` (a kernel density estimate), so training never runs out of data."""

    points: torch.Tensor  # (M, 2) float32, in the playground's box
    labels: torch.Tensor | None  # (M,) long in [0, K) or None
    class_names: tuple[str, ...] = ()
    bandwidth: float = 0.05
    name: str = "points"
    title: str = "your points"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def sample(self, n: int, generator: torch.Generator | None = None):
        idx = torch.randint(0, self.points.shape[0], (n,), generator=generator)
        x = self.points[idx] + self.bandwidth * torch.randn(n, 2, generator=generator)
        return x, None if self.labels is None else self.labels[idx]


def check_points(points, labels=None, rescale: bool = False, name: str = "points",
                 title: str = "your points") -> PointCloud:
    """A user's (M, 2) points (and optional integer labels) as a ``PointCloud``, or a
    ``PointsError`` saying what is wrong. ``rescale``: center them and scale so the wider axis has
    standard deviation 1.5 and every point is in the box (an upload in any unit); otherwise they
    must already lie in the box."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise PointsError(f"points must be pairs (x, y), got an array of shape {pts.shape}")
    n = pts.shape[0]
    if n == 0:
        raise PointsError("there are no points: draw or upload at least "
                          f"{MIN_POINTS} (x, y) points")
    if n < MIN_POINTS:
        raise PointsError(f"{n} point{'s' if n > 1 else ''} is too few to learn a distribution from: "
                          f"give at least {MIN_POINTS}")
    if n > MAX_POINTS:
        raise PointsError(f"{n:,} points is more than the {MAX_POINTS:,} the playground trains on: "
                          f"keep a random subset of at most {MAX_POINTS:,}")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise PointsError(f"row {int(np.argmax(bad)) + 1} has a value that is not a finite number "
                          f"(NaN or infinity); {int(bad.sum())} row(s) in all")
    spread = pts.std(axis=0).max()
    if spread < 1e-6:
        raise PointsError("all points are at the same place: a distribution needs some spread")
    if rescale:  # the wider axis to std 1.5, or less where that would push a point out of the box
        pts = pts - pts.mean(axis=0)
        pts = pts * min(1.5 / spread, 0.95 * BOX / np.abs(pts).max())
    elif np.abs(pts).max() > BOX:
        raise PointsError(f"points must lie in [-{BOX:g}, {BOX:g}]^2; rescale them (uploads are rescaled)")
    lab, names = None, ()
    if labels is not None:
        lab_arr = np.asarray(labels, dtype=np.float64).reshape(-1)
        if lab_arr.shape[0] != n:
            raise PointsError(f"{lab_arr.shape[0]} labels for {n} points")
        if not np.isfinite(lab_arr).all() or (lab_arr != np.round(lab_arr)).any():
            raise PointsError("labels must be whole numbers (a class per point)")
        values = np.unique(lab_arr).astype(int)
        if len(values) > MAX_CLASSES:
            raise PointsError(f"{len(values)} different labels; the playground handles at most {MAX_CLASSES}")
        if len(values) > 1:
            lab = torch.from_numpy(np.searchsorted(values, lab_arr.astype(int))).long()
            names = tuple(f"class {v}" for v in values)
    return PointCloud(torch.from_numpy(pts).float(), lab, names, name=name, title=title)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def parse_csv(data: bytes, name: str = "upload") -> PointCloud:
    """Points from a CSV file: columns x, y and optionally label (a header row names them; without
    one, 2 or 3 numeric columns in that order). Rescaled into the box. ``PointsError`` otherwise."""
    if len(data) > MAX_CSV_BYTES:
        raise PointsError(f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_CSV_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PointsError("this is not a text (CSV) file") from None
    if "\x00" in text:
        raise PointsError("this is not a text (CSV) file")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise PointsError("the file is empty: it needs a row per point with x, y (and optionally label)")
    if len(lines) > MAX_POINTS + 1:
        raise PointsError(f"{len(lines) - 1:,}+ rows is more than the {MAX_POINTS:,} points the playground "
                          f"trains on: keep a random subset of at most {MAX_POINTS:,}")
    first = lines[0]
    delim = "," if "," in first else ";" if ";" in first else "\t" if "\t" in first else None
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delim)) if delim else [
        ln.split() for ln in lines]
    rows = [[c.strip() for c in r] for r in rows]
    head = rows[0]
    if not all(_is_number(c) for c in head):
        cols = [c.lower() for c in head]
        if "x" not in cols or "y" not in cols:
            raise PointsError(f"the header names the columns {', '.join(head)}; the playground needs x and y "
                              "(and optionally label)")
        label_col = next((cols.index(k) for k in ("label", "class") if k in cols), None)
        use = [cols.index("x"), cols.index("y")] + ([label_col] if label_col is not None else [])
        rows = rows[1:]
    else:
        if len(head) not in (2, 3):
            raise PointsError(f"rows have {len(head)} values; give x, y and optionally a label (or a header "
                              "row naming the columns x, y, label)")
        use = list(range(len(head)))
    values = np.empty((len(rows), len(use)), dtype=np.float64)
    for i, r in enumerate(rows):
        if len(r) <= max(use):
            raise PointsError(f"row {i + 1} has {len(r)} value(s); expected {max(use) + 1}")
        for j, k in enumerate(use):
            try:
                values[i, j] = float(r[k])
            except ValueError:
                raise PointsError(f"row {i + 1}: {r[k][:20]!r} is not a number") from None
    labels = values[:, 2] if len(use) == 3 else None
    return check_points(values[:, :2], labels, rescale=True, name="csv", title=name)
