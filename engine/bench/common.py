"""What every benchmark returns and how it times: ``BenchResult`` and ``rate`` (best of a few
repeats, so the least disturbed run counts on a shared, noisy machine)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class BenchResult:
    name: str
    unit: str
    ours: float
    reference: float | None
    ratio: float | None
    target: str
    detail: str = ""  # what else a reader needs beside the ratio (NFE, accuracy, distance)



def rate(fn: Callable[[], None], items: int, repeats: int, warmup: int = 2) -> float:
    """Items per second of ``fn``, best of ``repeats`` (the least disturbed by other load)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return items / best

