"""What a training run can be: the engine's presets (``engine.config.PRESETS``, one
``TrainConfig`` per built-in model) and the engine arguments of a run built from a preset and
the page's choices (``train_args``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

from engine.config import PRESETS, RECIPES, TrainConfig, with_recipe

from .store import JobError

_LAB = {name: cfg for name, cfg in PRESETS.items() if not cfg.pairs}


def presets() -> Mapping[str, TrainConfig]:
    """The models a run can train, by name, each with its preset (epochs, batch size, lr, width).
    Not reflow: its teacher pairs are made first (``python -m engine reflow-pairs``, a GPU job)."""
    return MappingProxyType(_LAB)  # read-only: the engine's table is shared by every session


def recipes(model: str) -> list[str]:
    """The recipes model ``model`` can train with: "course" (its preset) first, then its own
    (``engine.config.RECIPES``: flow-class has "class", digits in minutes on a CPU)."""
    return ["course", *RECIPES.get(model, {})]


def recipe_preset(model: str, recipe: str = "course") -> TrainConfig:
    """The settings a run of ``model`` starts from under ``recipe``."""
    if model not in _LAB:
        raise JobError(f"unknown model {model!r}; choose from {', '.join(sorted(_LAB))}")
    try:
        return with_recipe(_LAB[model], recipe)
    except ValueError as e:
        raise JobError(str(e)) from None


def default_threads() -> int:
    """CPU threads for a run started from the page: all cores but one, left for the dashboard."""
    return max(1, (os.cpu_count() or 2) - 1)


def train_args(
    model: str,
    epochs: int,
    lr: float | None = None,
    batch_size: int | None = None,
    train_count: int | None = None,
    num_hiddens: int | None = None,
    threads: int | None = None,
    recipe: str = "course",
    checkpoint_every: float | None = None,
) -> list[str]:
    """Engine arguments (after ``--out DIR``) for a run; ``None`` keeps the preset's (or the
    recipe's) value. ``checkpoint_every`` (seconds) makes checkpoints often enough for the page
    to draw the run's digits as it learns."""
    recipe_preset(model, recipe)  # an unknown model or recipe is a JobError
    if epochs < 1:
        raise JobError(f"epochs must be >= 1, got {epochs}")
    args = ["--epochs", str(int(epochs))]
    if recipe != "course":
        args += ["--recipe", recipe]
    if checkpoint_every is not None:
        if not checkpoint_every > 0:
            raise JobError(f"checkpoint_every must be positive, got {checkpoint_every}")
        args += ["--checkpoint-every", repr(float(checkpoint_every))]
    for flag, value, kind in (
        ("--lr", lr, float), ("--batch-size", batch_size, int),
        ("--train-count", train_count, int), ("--num-hiddens", num_hiddens, int),
        ("--threads", threads, int),
    ):
        if value is not None:
            if kind(value) < 0 or (flag != "--train-count" and kind(value) == 0):
                raise JobError(f"{flag} must be positive, got {value}")
            args += [flag, repr(kind(value)) if kind is float else str(kind(value))]
    return args

