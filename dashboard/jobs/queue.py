"""The training queue: one run trains at a time (the machines have 2 cores). A start while
another run trains is recorded as "queued" instead of refused (``admit``; at most ``MAX_QUEUED``
waiting runs per owner, teachers exempt), and ``promote`` starts the oldest queued run once
nothing trains. A file lock makes "check, then start" atomic across sessions and server
processes (replicas share the runs folder).

The queue moves without a page open: ``promote`` runs under the lock from every ``list_jobs``
(each open lab page calls it every 2 s) and from one daemon thread per server process that lives
while a queue exists (``ensure_promoter``): a run ends, the next starts within ``PROMOTE_EVERY``
seconds as long as one dashboard process is up.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from pathlib import Path

from dashboard import runner

from .access import Who
from .disk import check_free_space, prune_locked, why
from .store import (
    QUEUED,
    Job,
    JobBusy,
    JobError,
    JobQueueFull,
    load_job,
    locked,
    refresh,
    run_path,
    runs_dir,
    save_job,
    scan,
    waiting,
)

MAX_QUEUED = 2  # waiting runs per owner; teachers are exempt
PROMOTE_EVERY = 2.0  # s between two looks of the server's queue thread
log = logging.getLogger("difflab.jobs")


def list_jobs(root: Path | None = None) -> list[Job]:
    """All runs in the runs folder, newest first, statuses refreshed; starts the next queued run
    when nothing trains (so every open lab page moves the queue)."""
    root = Path(root or runs_dir())
    jobs = scan(root)
    if any(j.queued for j in jobs):
        if not any(j.active for j in jobs) and promote(root) is not None:
            jobs = scan(root)
        ensure_promoter(root)
    return jobs


def running_job(root: Path | None = None) -> Job | None:
    """The run that trains now, if any (moves the queue like ``list_jobs``)."""
    return next((j for j in list_jobs(root) if j.active), None)


def queue_position(job: Job, jobs: list[Job]) -> int | None:
    """1 for the next run to start, ...; None when ``job`` is not waiting."""
    ids = [j.run_id for j in waiting(jobs)]
    return ids.index(job.run_id) + 1 if job.run_id in ids else None


def launch(job: Job, root: Path, resume: bool) -> None:
    """Start ``job``'s process and record it; a process that cannot be recorded is stopped."""
    path = run_path(job.run_id, root)
    prune_locked(root, keep=job.run_id)
    check_free_space(root)
    job.queued_at, job.queued_resume = None, False
    job.extra.pop("before_queue", None)
    try:
        runner.spawn(job, path, resume=resume)
        save_job(job, root)
    except BaseException:
        runner.undo_spawn(job)
        raise


def promote_locked(root: Path, jobs: list[Job]) -> Job | None:
    """With the lock held and nothing training: start the first queued run that can start. One
    that cannot (disk full, its folder gone) is marked failed with the reason, and the next
    one is tried."""
    if any(j.active for j in jobs):
        return None
    for job in waiting(jobs):
        resume = job.queued_resume
        try:
            launch(job, root, resume)
            log.info("difflab: queued run %s started", job.run_id)
            return job
        except (OSError, JobError) as e:
            job.status, job.ended_at, job.pid = "failed", time.time(), None
            job.queued_at, job.queued_resume = None, False
            job.message = f"could not start from the queue: {why(e, root)}"
            with suppress(OSError, JobError):
                save_job(job, root)
    return None


def promote(root: Path | None = None) -> Job | None:
    """Start the oldest queued run if nothing trains; returns it (None: nothing started)."""
    root = Path(root or runs_dir())
    with suppress(OSError), locked(root):  # an unwritable folder: the queue just waits
        return promote_locked(root, scan(root))
    return None


_PROMOTERS: dict[Path, threading.Thread] = {}
_PROMOTERS_LOCK = threading.Lock()


def ensure_promoter(root: Path) -> None:
    """One daemon thread per runs folder in this server process while a queue exists."""
    key = Path(root).resolve()
    with _PROMOTERS_LOCK:
        thread = _PROMOTERS.get(key)
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(target=_promote_loop, args=(key,), name="difflab-queue", daemon=True)
        _PROMOTERS[key] = thread
        thread.start()


def _promote_loop(root: Path) -> None:
    """The queue thread: every ``PROMOTE_EVERY`` s, start the next run if nothing trains; end
    when the queue is empty."""
    while True:
        time.sleep(PROMOTE_EVERY)
        try:
            jobs = scan(root)
            with _PROMOTERS_LOCK:  # decide to stop where ensure_promoter looks
                if not any(j.queued for j in jobs):
                    _PROMOTERS.pop(root, None)
                    return
            if not any(j.active for j in jobs):
                promote(root)
        except Exception:  # never let the thread die with a queue left; try again next time
            log.exception("difflab: the training queue could not be advanced")


def admit(root: Path, jobs: list[Job], who: Who | None, queue: bool) -> bool:
    """With the lock held: True when a new start may run now; False when it must queue. The
    queue is fair: a waiting run starts before a newcomer."""
    if not any(j.active for j in jobs) and waiting(jobs):
        promote_locked(root, jobs)
    busy = next((j for j in jobs if j.active), None)
    if busy is None:
        return True
    if not queue:
        raise busy_error(busy)
    mine = [j for j in waiting(jobs) if who is not None and j.owner == who.owner]
    if who is not None and not who.teacher and len(mine) >= MAX_QUEUED:
        raise JobQueueFull(
            f"you already have {len(mine)} runs waiting ({', '.join(j.run_id for j in mine)}); "
            f"at most {MAX_QUEUED} per session. Wait for one to start or remove one from the queue."
        )
    return False


def busy_error(busy: Job) -> JobBusy:
    """The refusal of a start while ``busy`` trains and the caller did not queue."""
    return JobBusy(f"run {busy.run_id!r} ({busy.model}) is still training; one run at a time on this "
                   "machine. Wait for it to finish or cancel it first.")


def enqueue(job: Job, root: Path) -> None:
    """Record ``job`` as waiting in the queue, from now."""
    job.status, job.queued_at, job.pid, job.returncode = QUEUED, time.time(), None, None
    job.message = ""
    save_job(job, root)


def wait(run_id: str, root: Path | None = None, timeout: float = 120.0, poll: float = 0.2) -> Job:
    """Block until the run is neither active nor queued (tests and scripts; never in a page)."""
    root = Path(root or runs_dir())
    deadline = time.monotonic() + timeout
    while True:
        job = refresh(load_job(run_id, root), root)
        if job.queued:
            list_jobs(root)  # moves the queue
            job = load_job(run_id, root)
        if (not job.active and not job.queued) or time.monotonic() > deadline:
            return job
        time.sleep(poll)
