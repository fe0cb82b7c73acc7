"""The runs folder's disk: how much it holds (``usage``), its budget (``DIFFLAB_RUNS_BUDGET_MB``,
default 500; 0 keeps everything), pruning past it, and a full disk said in words.

Before a run starts, finished, cancelled and failed runs are deleted oldest first while the runs
folder is over its budget; running and queued runs are never touched. A run does not start with
less than ``DIFFLAB_RUNS_MIN_FREE_MB`` (default 100) free; a full disk (ENOSPC, EDQUOT) is
refused with a message that says so.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from contextlib import contextmanager, suppress
from pathlib import Path

from .store import JobError, locked, run_path, runs_dir, scan

BUDGET_MB = 500.0  # default DIFFLAB_RUNS_BUDGET_MB
MIN_FREE_MB = 100.0  # default DIFFLAB_RUNS_MIN_FREE_MB: refuse to start a run below this
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
log = logging.getLogger("difflab.jobs")


def env_mb(name: str, default: float) -> float:
    """The number of MB in the environment variable ``name`` (``default`` if unset or not a number)."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def budget_bytes() -> int:
    """The runs folder's disk budget (``DIFFLAB_RUNS_BUDGET_MB``, default 500); 0: no pruning."""
    return max(0, int(env_mb("DIFFLAB_RUNS_BUDGET_MB", BUDGET_MB) * 2**20))


def folder_bytes(path: Path) -> int:
    """Bytes in the files under ``path`` (links not followed; unreadable entries count 0)."""
    total = 0
    with suppress(OSError):
        for entry in os.scandir(path):
            with suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    total += folder_bytes(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def usage(root: Path | None = None) -> int:
    """Bytes in the runs folder."""
    root = Path(root or runs_dir())
    return folder_bytes(root) if root.is_dir() else 0


def prune_locked(root: Path, keep: str | None = None, budget: int | None = None) -> list[str]:
    """``prune`` with the lock held, sparing ``keep`` (the run about to start)."""
    budget = budget_bytes() if budget is None else budget
    if budget <= 0:
        return []
    total = usage(root)
    if total <= budget:
        return []
    ended = [j for j in scan(root) if not j.active and not j.queued and j.run_id != keep]
    removed = []
    for job in sorted(ended, key=lambda j: j.ended_at or j.sort_time):  # oldest first
        if total <= budget:
            break
        path = run_path(job.run_id, root)
        size = folder_bytes(path)
        shutil.rmtree(path, ignore_errors=True)
        total -= size
        removed.append(job.run_id)
        log.info("difflab: pruned run %s (%.1f MB) to keep the runs folder under its budget", job.run_id,
                 size / 2**20)
    return removed


def prune(root: Path | None = None, budget: int | None = None) -> list[str]:
    """Delete finished, cancelled and failed runs, oldest first, while the runs folder is over
    ``budget`` bytes (default ``budget_bytes()``); running and queued runs stay. Returns the ids."""
    root = Path(root or runs_dir())
    with locked(root):
        return prune_locked(root, budget=budget)


@contextmanager
def writable(root: Path):
    """Turn a full disk or a read-only runs folder into a ``JobError`` that says so."""
    try:
        yield
    except OSError as e:
        raise JobError(f"{why(e, root)}; nothing was started and no existing run was changed") from e


def why(e: BaseException, root: Path) -> str:
    """What went wrong writing the runs folder, and what to do about a full disk."""
    if isinstance(e, OSError) and e.errno in DISK_FULL:
        return (f"the disk is full: cannot write the runs folder {root}: {e.strerror or e} "
                f"(errno {e.errno}). Delete runs you no longer need, or ask whoever runs the server "
                "to free space or lower DIFFLAB_RUNS_BUDGET_MB")
    if isinstance(e, OSError):
        return f"cannot write the runs folder {root}: {e.strerror or e} (errno {e.errno})"
    return str(e)


def disk_full(text: str) -> bool:
    """Does an engine message (a failed run's output) say the disk filled up?"""
    return "No space left on device" in text or "Disk quota exceeded" in text or "[Errno 28]" in text


def check_free_space(root: Path) -> None:
    """Raise ENOSPC when the runs folder's disk has less free space than a run needs."""
    need = env_mb("DIFFLAB_RUNS_MIN_FREE_MB", MIN_FREE_MB) * 2**20
    free = shutil.disk_usage(root).free
    if free < need:
        raise OSError(errno.ENOSPC, f"No space left on device: {free / 2**20:.0f} MB free, a run needs "
                      f"{need / 2**20:.0f} MB")


