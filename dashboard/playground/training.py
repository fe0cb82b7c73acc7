"""One press of Train on the playground: every chosen objective trained on the user's point set
(``engine.toy2d.train``), the names the page shows for them, and a small memo of what the page
computes from the trained models (samples, sweeps), which lives and dies with them.

Flow matching (Part B): x_0 is noise, x_1 data, t runs 0 -> 1. DDPM (Part A): x_0 is data, t
counts down 990 -> 0.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.toy2d.train import OBJECTIVE_NAMES, ToyConfig, TrainResult, train

SHORT = {"ddpm": "DDPM", "fm": "FM", "reflow": "reflow", "ot-fm": "OT-FM"}
MEMO_ENTRIES = 6  # results kept per training: a few slider positions to go back to


def order(objectives: Sequence[str]) -> list[str]:
    """The objectives to train, in training order: reflow needs a flow-matching model first."""
    chosen = set(objectives) | ({"fm"} if "reflow" in objectives else set())
    return [o for o in ("fm", "reflow", "ot-fm", "ddpm") if o in chosen]


def label(objective: str) -> str:
    return "flow matching with classes (CFG)" if objective == "cfg" else OBJECTIVE_NAMES[objective]


class Memo:
    """Results computed from one training, by key, at most ``max_entries`` (the oldest is dropped
    first). It belongs to its ``Trained``: a new training starts with an empty one, so nothing
    computed from older models is ever shown for newer ones."""

    def __init__(self, max_entries: int = MEMO_ENTRIES):
        self.max_entries = max_entries
        self._store: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], object]):
        """The result stored under ``key``, or ``compute()`` stored there (nothing is stored when
        it raises, e.g. when the page run that asked was interrupted)."""
        if key not in self._store:
            self._store[key] = compute()
            while len(self._store) > self.max_entries:
                self._store.popitem(last=False)
        return self._store[key]

    def __len__(self) -> int:
        return len(self._store)


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
    memo: Memo = field(default_factory=Memo, repr=False)  # what the page computed from these models

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
