"""What a session does to a run: ``start`` a new one, ``resume`` one (optionally with more
epochs), ``cancel`` it (or take it out of the queue), ``delete`` its folder. Each checks who
asks (``access``), goes through the queue (``queue``) under the runs folder's lock, and turns a
full or read-only disk into a ``JobError`` that says so (``disk``).

A run is ``python -m engine train MODEL --out cache/runs/<run-id> [--resume] --no-progress``
(``dashboard.runner`` starts and watches the process). Cancel is SIGTERM: the engine finishes
the step, writes a checkpoint and exits, so *resume* (the same command plus ``--resume``)
continues exactly where it stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from .access import Who, check
from .disk import writable
from .presets import presets
from .queue import admit, busy_error, enqueue, ensure_promoter, launch
from .store import (
    Job,
    JobError,
    default_run_id,
    load_job,
    locked,
    refresh,
    run_path,
    runs_dir,
    sanitize_run_id,
    save_job,
    scan,
)


def start(model: str, args: list[str], run_id: str | None = None, root: Path | None = None,
          who: Who | None = None, queue: bool = False) -> Job:
    """Start a new run of ``model`` with engine ``args`` (see ``train_args``). While another run
    trains: ``JobBusy``, or with ``queue`` a run with status ``"queued"`` (``JobQueueFull`` past
    ``MAX_QUEUED`` waiting runs of ``who``)."""
    root = Path(root or runs_dir())
    run_id = sanitize_run_id(run_id) if run_id else default_run_id(model)
    path = run_path(run_id, root)
    epochs = int(args[args.index("--epochs") + 1]) if "--epochs" in args else presets()[model].epochs
    with writable(root), locked(root):
        now = admit(root, scan(root), who, queue)
        if path.exists():
            raise JobError(f"a run named {run_id!r} already exists; pick another name or resume it")
        path.mkdir(parents=True)
        job = Job(run_id, model, list(args), epochs, owner=who.owner if who else "",
                  owner_label=who.label if who else "")
        try:
            if now:
                job.started_at = time.time()
                launch(job, root, resume=False)
            else:
                enqueue(job, root)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # our own, just-made folder
            raise
    if job.queued:
        ensure_promoter(root)
    return job


def cancel(run_id: str, root: Path | None = None, who: Who | None = None) -> Job:
    """SIGTERM: the engine writes a checkpoint and exits; status "cancelling" until it has. A
    queued run leaves the queue (a new one becomes "cancelled", a queued resume gets its old
    status back)."""
    root = Path(root or runs_dir())
    job = refresh(load_job(run_id, root), root)
    check(job, who, "cancel")
    if job.queued:
        with writable(root), locked(root):
            job = load_job(run_id, root)
            if job.queued:
                _unqueue(job)
                save_job(job, root)
        return job
    if job.status != "running":
        return job
    try:
        os.kill(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        return refresh(job, root)
    job.status = "cancelling"
    save_job(job, root)
    return job


def _unqueue(job: Job) -> None:
    """Take ``job`` out of the queue: a new run is cancelled, a queued resume gets back the
    status, epochs and arguments it had before."""
    before = job.extra.pop("before_queue", None)
    job.queued_at, job.queued_resume = None, False
    if before:  # a queued resume: back to how it was
        job.status, job.epochs, job.args = before["status"], before["epochs"], before["args"]
        job.message, job.starts = before.get("message", ""), max(1, job.starts - 1)
    else:
        job.status, job.ended_at = "cancelled", time.time()
        job.message = "removed from the queue before it started"


def can_resume(job: Job, root: Path | None = None) -> bool:
    """Has ``job`` stopped short of finishing, with a checkpoint to continue from?"""
    path = run_path(job.run_id, root)
    return (not job.active and not job.queued and job.status != "finished"
            and (path / "checkpoint.safetensors").exists())


def resume(run_id: str, root: Path | None = None, epochs: int | None = None, who: Who | None = None,
           queue: bool = False) -> Job:
    """Start ``run_id`` again with ``--resume`` (optionally with more ``epochs``); while another run
    trains: ``JobBusy``, or with ``queue`` it waits in the queue."""
    root = Path(root or runs_dir())
    with writable(root), locked(root):
        jobs = scan(root)
        job = next((j for j in jobs if j.run_id == run_id), None) or refresh(load_job(run_id, root), root)
        check(job, who, "resume")
        if job.active and not queue:
            raise busy_error(job)
        if job.active or job.queued:
            raise JobError(f"run {run_id!r} is already {job.status}")
        now = admit(root, jobs, who, queue)
        path = run_path(run_id, root)
        more = epochs is not None and epochs > job.epochs
        if not (path / "checkpoint.safetensors").exists():
            raise JobError(f"run {run_id!r} has no checkpoint to resume from; start a new run")
        if job.status == "finished" and not more:
            raise JobError(f"run {run_id!r} already finished; give it more epochs to continue")
        before = {"status": job.status, "epochs": job.epochs, "args": list(job.args), "message": job.message}
        if epochs is not None and epochs != job.epochs:
            if epochs < 1:
                raise JobError(f"epochs must be >= 1, got {epochs}")
            if "--epochs" in job.args:
                job.args[job.args.index("--epochs") + 1] = str(int(epochs))
            else:
                job.args += ["--epochs", str(int(epochs))]
            job.epochs = int(epochs)
        job.starts += 1
        if now:
            launch(job, root, resume=True)
        else:
            job.extra["before_queue"] = before
            job.queued_resume = True
            enqueue(job, root)
    if job.queued:
        ensure_promoter(root)
    return job


def delete(run_id: str, root: Path | None = None, who: Who | None = None) -> None:
    """Remove a run's folder (refused while it trains; a queued run leaves the queue)."""
    root = Path(root or runs_dir())
    with locked(root):
        job = refresh(load_job(run_id, root), root)
        check(job, who, "delete")
        if job.active:
            raise JobError(f"run {run_id!r} is still training; cancel it first")
        shutil.rmtree(run_path(run_id, root))

