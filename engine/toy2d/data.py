"""The 2D playground (diffusion and flow matching as geometry): toy point sets, a user's points,
and ``python -m engine toy2d``. The models and their training are in ``engine.toy2d.train``,
sampling and the numbers that compare runs in ``engine.toy2d.sample``.

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


# ----------------------------------------------------------------------------- command line


def add_command(sub) -> None:
    """``python -m engine toy2d ...``: train a 2D model, sample it, print its numbers, save an .npz."""
    from ..cli import nonneg, positive
    from .sample import DDPM_SAMPLERS, FLOW_SAMPLERS
    from .train import OBJECTIVES, ToyConfig

    p = sub.add_parser("toy2d", help="train a 2D toy model in seconds, sample it, print straightness/MMD")
    p.add_argument("--dataset", choices=list(DATASETS), default="moons")
    p.add_argument("--csv", help="train on the points of this CSV (x, y[, label]) instead of --dataset")
    p.add_argument("--objective", choices=OBJECTIVES, default="fm")
    p.add_argument("--cfg", type=nonneg(float), metavar="G", help="classifier-free guidance scale gamma "
                   "(trains a class-conditioned model; needs --label)")
    p.add_argument("--label", type=nonneg(int), metavar="L", help="sample this class (a class model)")
    p.add_argument("--sampler", choices=[*FLOW_SAMPLERS, *DDPM_SAMPLERS],
                   help="flow: euler (default), midpoint, heun, rk4; ddpm: ddpm (the course's loop), ddim")
    p.add_argument("--steps", type=positive(int), help="sampling steps (default 50 for flows, 33 for ddpm)")
    p.add_argument("--count", type=positive(int), default=2000, help="samples (at most 20000)")
    p.add_argument("--train-steps", type=positive(int), default=ToyConfig.steps)
    p.add_argument("--seed", type=nonneg(int), default=0)
    p.add_argument("--threads", type=positive(int), default=1)
    p.add_argument("--out", help="write samples, data, trajectory (N, S+1, 2) and times to this .npz")
    p.set_defaults(handler=run)  # cli.main calls the handler of commands it does not list itself


def run(args) -> int:
    from pathlib import Path

    from ..cli import CLIError, _check_out, _save_npz
    from .sample import DDPM_SAMPLERS, quality, sample, straightness
    from .train import ToyConfig, torch_threads, train

    def fail(message: str):
        return CLIError(f"python -m engine toy2d: {message}")

    out = _check_out(args.out) if args.out else None
    if args.count > MAX_POINTS:
        raise fail(f"--count must be at most {MAX_POINTS}, got {args.count}")
    if args.csv:
        try:
            data = parse_csv(Path(args.csv).read_bytes(), name=args.csv)
        except PointsError as e:
            raise fail(f"{args.csv}: {e}") from None
    else:
        data = dataset(args.dataset)
    conditional = args.cfg is not None or args.label is not None
    if args.cfg is not None and args.label is None:
        raise fail("--cfg needs --label (the class to guide towards)")
    if conditional and not data.num_classes:
        raise fail(f"{data.title} has no classes; --cfg/--label need a labelled set")
    if args.label is not None and args.label >= data.num_classes:
        raise fail(f"--label must be in [0, {data.num_classes - 1}] for {data.title}")
    ddpm = args.objective == "ddpm"
    if args.sampler and (args.sampler in DDPM_SAMPLERS) != ddpm:
        raise fail(f"sampler {args.sampler} does not fit objective {args.objective}")
    cfg = ToyConfig(objective=args.objective, steps=args.train_steps, seed=args.seed,
                    num_classes=data.num_classes if conditional else 0)
    with torch_threads(args.threads):
        result = train(cfg, data, threads=None)
        print(f"trained {args.objective} on {data.title}: {cfg.steps} steps in {result.seconds:.1f} s, "
              f"loss {result.losses[-100:].mean():.4f} (mean of the last 100 steps)")
        noise = torch.randn(args.count, 2, generator=torch.Generator().manual_seed(args.seed + 1))
        traj = sample(result.model, noise, args.sampler, args.steps, args.label, args.cfg,
                      torch.Generator().manual_seed(args.seed + 2))
        samples = traj.final.float()
        q = quality(samples, data, args.seed, args.label)
        held = held_out_points(data, args.count, args.seed, args.label)
    print(f"sampled {args.count} points: {len(traj.times) - 1} steps, NFE {traj.nfe}, straightness "
          f"{straightness(traj.x):.3f}")
    print(f"MMD {q.mmd:.4f} (two draws of the data: {q.mmd_floor:.4f}, ratio {q.mmd / q.mmd_floor:.2f}); "
          f"sliced Wasserstein {q.swd:.4f} (floor {q.swd_floor:.4f})")
    if out:
        _save_npz(out, samples=samples.numpy(), data=held.numpy(), times=np.asarray(traj.times, np.float64),
                  trajectory=traj.x.float().permute(1, 0, 2).numpy())
        print(f"wrote {out}")
    return 0


def held_out_points(data, n: int, seed: int, label: int | None):
    """Fresh points of ``data`` for the .npz, drawn apart from the ones the metrics used."""
    from .sample import held_out

    return held_out(data, n, seed + 2, label)
