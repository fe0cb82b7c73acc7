"""The sampler contract: every sampling loop in the lab has one call shape and one result.

A *model* is any callable ``model(x_t, t, cond) -> prediction``: a built-in adapter
(``engine.adapters``), DeepFloyd IF (``engine.deepfloyd.model``), or a wrapper around one (CFG in
``engine.guidance``, the illusions). A *sampler* is called as

    sampler(model, x_start, <its grid>, cond=None, [generator=None,] callback=None, record=True)

and returns a ``Trajectory``; ``callback(Step(i, n, t, x, x_hat))`` runs after each of its n steps
(progress bars, live views). DDPM loops (``engine.denoise``, Part A): t counts *down* (990 -> 0),
the estimate is x0_hat. Flow matching (``engine.flow``, Part B): t runs 0 -> 1 and the estimate
is x1_hat. Either way ``x_hat[k]`` is the clean image the model predicts from ``x[k]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch


class Step(NamedTuple):
    """What a sampler hands its callback after step ``i`` of ``n`` (0-based): the time reached,
    the new state and the clean estimate the step made (in the model's value range)."""

    i: int
    n: int
    t: float
    x: torch.Tensor
    x_hat: torch.Tensor


StepCallback = Callable[[Step], None]


@dataclass(frozen=True)
class Trajectory:
    """One sampling run. ``times`` (K,) the time of each kept state; ``x`` (K, B, C, H, W) the
    states, ``x[0]`` the start and ``x[-1]`` the sample; ``x_hat`` (K, B, C, H, W) the clean
    estimate made from each state (the last state is its own estimate). Values are in
    ``value_range``: the model's pixels ((-1, 1) for ddpm-class and IF, (0, 1) for the flows)
    until ``to_unit`` maps them to [0, 1] numpy for display. ``nfe`` counts network evaluations
    (a batched CFG call counts once). A run with ``record=False`` keeps only the final state.
    ``x_hat`` is None where the estimates were not kept (a precomputed pack's samples)."""

    times: tuple[float, ...]
    x: torch.Tensor | np.ndarray
    x_hat: torch.Tensor | np.ndarray | None
    nfe: int
    value_range: tuple[float, float]

    @property
    def final(self):
        return self.x[-1]

    def to_unit(self) -> Trajectory:
        """The same run as float32 numpy in [0, 1] (clipped): what pages show."""
        x_hat = None if self.x_hat is None else to_unit(self.x_hat, self.value_range)
        return replace(self, x=to_unit(self.x, self.value_range), x_hat=x_hat, value_range=(0.0, 1.0))

    def take(self, idx) -> Trajectory:
        """The states at indices ``idx`` (and their estimates), in that order."""
        idx = np.asarray(idx, dtype=int)
        x_hat = None if self.x_hat is None else self.x_hat[idx]
        return replace(self, times=tuple(self.times[i] for i in idx), x=self.x[idx], x_hat=x_hat)

    def subsample(self, max_states: int) -> Trajectory:
        """At most ``max_states`` evenly spaced states, the first and the last always kept."""
        return self.take(frame_indices(len(self.times), max_states))


def to_unit(x, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Pixels in ``value_range`` (a tensor or array of any shape) -> float32 numpy in [0, 1]."""
    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    lo, hi = value_range
    return np.clip((a.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def frame_indices(num_states: int, max_frames: int) -> np.ndarray:
    """Evenly spaced indices into ``num_states`` states, first and last always included."""
    if num_states <= max_frames:
        return np.arange(num_states)
    return np.unique(np.round(np.linspace(0, num_states - 1, max_frames)).astype(int))


class Recorder:
    """What a sampler keeps while it runs: every state and estimate (``record``), or only the
    last; and the callback. Samplers call ``step`` once per step and ``result`` at the end."""

    def __init__(self, x_start: torch.Tensor, t_start: float, n: int, record: bool,
                 callback: StepCallback | None):
        self.n, self.record, self.callback = n, record, callback
        self.times, self.xs, self.x_hats = [t_start], [x_start.clone()], []

    def step(self, i: int, t: float, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        if self.record:
            self.times.append(t)
            self.xs.append(x.clone())
            self.x_hats.append(x_hat)
        else:
            self.times, self.xs = [t], [x]
        if self.callback is not None:
            self.callback(Step(i, self.n, t, x, x_hat))

    def result(self, nfe: int, value_range: tuple[float, float]) -> Trajectory:
        x = torch.stack(self.xs)
        x_hat = torch.stack([*self.x_hats, self.xs[-1]]) if self.record else x
        return Trajectory(tuple(self.times), x, x_hat, nfe, value_range)

