"""The files of one training run folder (``cache/models/NAME/`` or ``cache/runs/ID/``), and its loss log.

    checkpoint.safetensors          resume state (model, optimizer, scheduler, counters)
    log.jsonl                       one line per step: step, epoch, loss, lr, time
    snapshots/epoch_XX.safetensors  sample grids after the config's snapshot epochs
    model.safetensors               final fp16 weights with the config and manifest
    manifest.json                   command, commit, machine, wall time, samples/s, final loss
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .checkpoints import atomic_write_text


@dataclass
class RunFiles:
    """Files of one run directory."""

    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.safetensors"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def weights(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def snapshot(self, epoch: int) -> Path:
        return self.root / "snapshots" / f"epoch_{epoch:02d}.safetensors"

    def snapshot_epochs(self) -> list[int]:
        """Epochs with a saved snapshot, ascending."""
        out = []
        for p in (self.root / "snapshots").glob("epoch_*.safetensors"):
            try:
                out.append(int(p.stem.split("_", 1)[1]))
            except ValueError:
                continue
        return sorted(out)


def read_log(path: Path) -> list[dict]:
    """Log records, skipping a torn last line left by a crash."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def trim_log(path: Path, keep_below_step: int) -> None:
    """Drop the records of steps a resumed run will redo (the log then has no duplicates)."""
    records = [r for r in read_log(path) if r.get("step", 0) < keep_below_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def epoch_means(records: list[dict]) -> list[float]:
    """Mean loss of each epoch from log records (their "epoch" runs (e, e + 1] through epoch
    e + 1): the curve in which runs with different learning rates compare fairly."""
    sums: dict[int, list[float]] = {}
    for r in records:
        e = max(math.ceil(r["epoch"]) - 1, 0)
        sums.setdefault(e, []).append(r["loss"])
    return [round(sum(v) / len(v), 6) for _, v in sorted(sums.items())]
