"""Comparing a student's run with a reference run: outputs within tolerance, and trajectories
step by step through the network calls both made.

A run's calls are grouped into *steps*: consecutive calls at the same t (CFG's two branches, an
anagram's views, batched or not). Two steps agree when they have the same t and every image the
reference fed the network is among the images the student fed it (rows compared one by one, so
batching and order do not matter). ``Follower`` stops a reference variant at the first step that
disagrees with the student's run, which makes trying the whole catalogue cheap.
"""

from __future__ import annotations

import numpy as np

from .lab import Recorder

ATOL, RTOL = 1e-3, 1e-3  # float32 noise of batching and thread counts is ~1e-6
LOSS_RTOL = 1e-4


def max_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b|, NaN where exactly one side is NaN counting as infinite."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both = np.isnan(a) & np.isnan(b)
    d = np.abs(np.where(both, 0.0, a - b))
    return float(np.nan_to_num(d, nan=np.inf).max()) if d.size else 0.0


def close(a, b, atol: float = ATOL, rtol: float = RTOL) -> bool:
    b = np.asarray(b, np.float64)
    scale = float(np.nanmax(np.abs(b))) if b.size and np.isfinite(b).any() else 0.0
    return max_err(a, b) <= atol + rtol * (scale if np.isfinite(scale) else 0.0)


def fit_shape(out: np.ndarray, expected: tuple) -> np.ndarray | None:
    """The output in the expected shape: equal, or equal once size-1 axes are dropped."""
    out = np.asarray(out)
    if out.shape == tuple(expected):
        return out
    if out.size == int(np.prod(expected)) and np.squeeze(out).shape == tuple(
        np.squeeze(np.zeros(expected)).shape
    ):
        return out.reshape(expected)
    return None


def steps_of(calls: list) -> list[tuple[float, list[np.ndarray]]]:
    """[(t, x), ...] -> [(t, [image rows]), ...], consecutive calls at one t merged."""
    steps: list[tuple[float, list[np.ndarray]]] = []
    for t, x in calls:
        rows = [np.asarray(r) for r in np.asarray(x)]
        if steps and abs(steps[-1][0] - t) < 1e-6:
            steps[-1][1].extend(rows)
        else:
            steps.append((t, rows))
    return steps


def nearest(row: np.ndarray, rows: list[np.ndarray]) -> tuple[int, float]:
    """(index, max error) of the row in ``rows`` closest to ``row``."""
    errs = [max_err(r, row) if r.shape == row.shape else np.inf for r in rows]
    k = int(np.argmin(errs)) if errs else -1
    return k, (errs[k] if errs else np.inf)


def steps_agree(ref: tuple, student: tuple) -> bool:
    (t_r, rows_r), (t_s, rows_s) = ref, student
    if not rows_s or abs(t_r - t_s) >= 1e-6:
        return False
    return all(
        rows_s[k].shape == r.shape and close(rows_s[k], r) for r in rows_r for k in [nearest(r, rows_s)[0]]
    )


class Diverged(Exception):
    """A variant's run left the student's: stop computing it."""


class Follower(Recorder):
    """Records like ``Recorder`` and raises ``Diverged`` as soon as a completed step of this run
    disagrees with the student's step of the same index."""

    def __init__(self, student_steps: list):
        super().__init__()
        self.student, self.k, self.t, self.rows = student_steps, 0, None, []

    def add(self, t, x) -> None:
        t = float(t)
        if self.t is not None and abs(t - self.t) >= 1e-6:
            self.close_step()
        self.t = t
        self.rows.extend(np.asarray(x.detach().float().cpu().numpy()))
        super().add(t, x)

    def close_step(self) -> None:
        if self.t is None:
            return
        if self.k >= len(self.student) or not steps_agree((self.t, self.rows), self.student[self.k]):
            raise Diverged
        self.k, self.t, self.rows = self.k + 1, None, []


def divergence(student: list, reference: list, first_step: int) -> tuple[int | None, str | None]:
    """(index into the steps, a sentence) of the first step where the runs part; (None, None) if
    they never do. Step numbers in the sentence are the notebook's i (``first_step`` + index)."""
    for k, ref in enumerate(reference):
        t_r, rows_r = ref
        if k >= len(student):
            return k, (
                f"step {first_step + k}, t = {_t(t_r)}: your loop had stopped; the reference still "
                f"calls the network here ({len(reference)} steps in all, yours {len(student)})"
            )
        t_s, rows_s = student[k]
        if abs(t_s - t_r) >= 1e-6:
            return k, (
                f"step {first_step + k}: your network was asked at t = {_t(t_s)} where the reference "
                f"asks at t = {_t(t_r)}"
            )
        _, err = nearest(rows_r[0], rows_s)
        if not steps_agree(ref, student[k]):
            worst = max(nearest(r, rows_s)[1] for r in rows_r)
            return k, f"step {first_step + k}, t = {_t(t_r)}: your x_t differs by {max(err, worst):.3g} (max)"
    if len(student) > len(reference):
        k = len(reference)
        return k, (
            f"step {first_step + k}, t = {_t(student[k][0])}: your loop calls the network "
            f"{len(student) - len(reference)} more time(s) after the reference has finished"
        )
    return None, None


def _t(t: float) -> str:
    return f"{t:g}" if float(t).is_integer() else f"{t:.3f}"
