"""Background training runs for the Training lab page: one subprocess per run, state on disk,
shared by every browser session of every server process.

A run is ``python -m engine train MODEL --out cache/runs/<run-id> [--resume] --no-progress``
(``dashboard.runner`` starts and watches the process). Everything about a run lives in its
folder, so the page can be left, reloaded, or the server restarted without losing it:

- the engine's files: ``checkpoint.safetensors``, ``log.jsonl``, ``model.safetensors``,
  ``manifest.json``, ``snapshots/`` (see ``engine.runs.RunFiles``);
- ``job.json``: our record (model, the exact command, pid and process start time, status, owner);
- ``output.log``: the engine's stdout and stderr (its last line says how it ended).

Cancel is SIGTERM: the engine finishes the step, writes a checkpoint and exits, so *resume*
(the same command plus ``--resume``) continues exactly where it stopped.

Sharing one machine with a class:

- **One run trains at a time** (the machines have 2 cores). With ``queue=True`` (the page) a
  run started while another trains is recorded as ``"queued"`` instead of refused; ``promote``
  starts the oldest queued run once nothing trains. A file lock makes "check, then start"
  atomic across sessions and server processes (replicas share the runs folder).
- **Who may do what.** A run records its ``owner`` (an opaque id of the browser that started
  it, see ``owner_id``). Everyone can watch every run; only its owner or a teacher (``Who``)
  may cancel, resume or delete it. ``who=None`` is the operator (scripts, tests): no check.
- **The queue moves without a page open.** ``promote`` runs under the lock from every
  ``list_jobs`` (each open lab page calls it every 2 s) and from one daemon thread per server
  process that lives while a queue exists (``_ensure_promoter``): a run ends, the next starts
  within ``PROMOTE_EVERY`` seconds as long as one dashboard process is up.
- **Caps.** At most ``MAX_QUEUED`` waiting runs per owner (teachers exempt). Before a run starts,
  finished, cancelled and failed runs are deleted oldest first while the runs folder is over its
  budget (``DIFFLAB_RUNS_BUDGET_MB``, default 500; 0 keeps everything); running and queued runs
  are never touched. A full disk (ENOSPC, EDQUOT) is refused with a message that says so.

This module makes no ``st.*`` calls; the page polls ``list_jobs``/``progress`` from a fragment.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dashboard import runner
from dashboard.runner import OUTPUT_FILE  # noqa: F401  -- part of a run folder
from engine.checkpoints import atomic_write_text
from engine.config import PRESETS
from engine.adapters import RUNS_DIR
from engine.runs import RunFiles, read_log

JOB_FILE = "job.json"
RUN_ID_MAX = 60
# Statuses: "queued" (waiting for the machine, no process yet), "running" (process alive),
# "cancelling" (SIGTERM sent, still writing its checkpoint), and when the process is gone:
# "finished", "cancelled", "failed".
ACTIVE = ("running", "cancelling")
QUEUED = "queued"
MAX_QUEUED = 2  # waiting runs per owner; teachers are exempt
PROMOTE_EVERY = 2.0  # s between two looks of the server's queue thread
BUDGET_MB = 500.0  # default DIFFLAB_RUNS_BUDGET_MB
MIN_FREE_MB = 100.0  # default DIFFLAB_RUNS_MIN_FREE_MB: refuse to start a run below this
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
log = logging.getLogger("difflab.jobs")


class JobError(RuntimeError):
    """A user-facing refusal (bad id, run not found, already running); the message says why."""


class JobBusy(JobError):
    """Another training run is still running (one at a time) and the caller did not queue."""


class JobForbidden(JobError):
    """The run belongs to another session; only its owner or a teacher may change it."""


class JobQueueFull(JobError):
    """This session already has ``MAX_QUEUED`` runs waiting."""


@dataclass(frozen=True)
class Who:
    """The session asking: ``owner`` from ``owner_id``; ``label`` is what others see."""

    owner: str
    teacher: bool = False
    label: str = ""


def owner_id(session_token: str, route_cookie: str | None = None, local: bool = False,
             email: str | None = None) -> tuple[str, str]:
    """(owner id, label) for the browser behind a session, most stable first:

    1. ``email`` of a user signed in with ``st.login``: that person, on any device;
    2. the class proxy's ``difflab_route`` cookie (``r<k>.<hex id>``, minted by nginx once per
       browser, see deploy/nginx.conf.template): that browser, across reloads, tabs and a
       replica failover (the replica part changes, the id does not); only a hash is kept;
    3. ``local``: a browser on this machine talking to Streamlit directly (no proxy): the person
       at this computer, the laptop case, across reloads;
    4. otherwise ``session_token``, a random token the page keeps in its session state: this
       tab's session only (a reload starts a new one; the teacher can still manage the run).
    """
    if email:
        return f"user:{email.strip().lower()}", email.strip()
    m = re.fullmatch(r"r\d+\.([0-9a-f]{16,64})", route_cookie or "")
    if m:
        digest = hashlib.sha256(m.group(1).encode()).hexdigest()[:20]
        return f"browser:{digest}", f"browser {digest[:6]}"
    if local:
        return "local", "this computer"
    return f"session:{session_token}", f"session {session_token[:6]}"


def may_manage(job: Job, who: Who | None) -> bool:
    """Cancel, resume, delete: the operator (``who=None``), a teacher, the owner; a run without
    an owner (made before owners existed, or by a script) belongs to everyone."""
    return who is None or who.teacher or not job.owner or job.owner == who.owner


def _check(job: Job, who: Who | None, action: str) -> None:
    if not may_manage(job, who):
        by = f" (started by {job.owner_label})" if job.owner_label else ""
        raise JobForbidden(
            f"run {job.run_id!r} belongs to another session{by}: you can watch it, but only the "
            f"session that started it or the teacher can {action} it"
        )


def runs_dir() -> Path:
    """``cache/runs``, or ``DIFFLAB_RUNS_DIR`` (tests and replicas point it elsewhere)."""
    return Path(os.environ.get("DIFFLAB_RUNS_DIR", RUNS_DIR))


def _env_mb(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def budget_bytes() -> int:
    """The runs folder's disk budget (``DIFFLAB_RUNS_BUDGET_MB``, default 500); 0: no pruning."""
    return max(0, int(_env_mb("DIFFLAB_RUNS_BUDGET_MB", BUDGET_MB) * 2**20))


def sanitize_run_id(text: str) -> str:
    """A safe folder name: lower-case letters, digits, ``-``, ``_``, ``.``; no leading dot.

    ``"../../etc"`` -> ``"etc"``, ``"My run #2"`` -> ``"my-run-2"``. Raises ``JobError`` when
    nothing usable is left.
    """
    s = re.sub(r"[^a-z0-9._-]+", "-", str(text).strip().lower())
    s = re.sub(r"[-._]{2,}", "-", s).strip("-._")[:RUN_ID_MAX].strip("-._")
    if not s:
        raise JobError(f"run name {text!r} has no usable characters (use letters, digits, - or _)")
    return s


def run_path(run_id: str, root: Path | None = None) -> Path:
    """The folder of ``run_id`` inside the runs folder; refuses anything that would escape it."""
    root = Path(root or runs_dir()).resolve()
    if run_id != sanitize_run_id(run_id):
        raise JobError(f"not a valid run id: {run_id!r}")
    path = (root / run_id).resolve()
    if path.parent != root:
        raise JobError(f"run id {run_id!r} points outside {root}")
    return path


def default_run_id(model: str) -> str:
    return sanitize_run_id(f"{model}-{time.strftime('%Y%m%d-%H%M%S')}")


@dataclass
class Job:
    run_id: str
    model: str
    args: list[str]  # the engine arguments after "train MODEL --out DIR"
    epochs: int
    status: str = "running"
    pid: int | None = None
    pid_started: float | None = None  # psutil create_time of pid, to tell a reused pid apart
    started_at: float = 0.0  # first start of the process (0 while a new run waits in the queue)
    ended_at: float | None = None
    returncode: int | None = None
    message: str = ""
    starts: int = 1  # 1 + number of resumes
    command: str = ""
    extra: dict = field(default_factory=dict)
    owner: str = ""  # see owner_id; "" = everyone's
    owner_label: str = ""
    queued_at: float | None = None  # when it joined the queue (None: not queued)
    queued_resume: bool = False  # the queued start is a resume (--resume)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def queued(self) -> bool:
        return self.status == QUEUED

    @property
    def sort_time(self) -> float:
        return self.started_at or self.queued_at or 0.0


# ----------------------------------------------------------------------------- files


def _job_file(path: Path) -> Path:
    return path / JOB_FILE


def _save(job: Job, root: Path) -> None:
    atomic_write_text(_job_file(run_path(job.run_id, root)), json.dumps(asdict(job), indent=2) + "\n")


def load_job(run_id: str, root: Path | None = None) -> Job:
    """The job record of ``run_id`` (status as last saved; ``refresh`` brings it up to date)."""
    path = _job_file(run_path(run_id, root))
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise JobError(f"no training run named {run_id!r}") from None
    except (OSError, json.JSONDecodeError) as e:
        raise JobError(f"the record of run {run_id!r} is unreadable: {e}") from e
    known = Job.__dataclass_fields__
    return Job(**{k: v for k, v in data.items() if k in known})


@contextmanager
def _lock(root: Path):
    """Exclusive lock over starting, queueing and removing runs (all sessions, all server
    processes). Never nested: a second ``open`` in the same process would wait for the first."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def refresh(job: Job, root: Path | None = None) -> Job:
    """Bring ``job.status`` up to date with its process; saves the record when it changed."""
    root = Path(root or runs_dir())
    if job.active and not runner.alive(job):
        job.status, job.message = runner.ended_status(job, run_path(job.run_id, root))
        job.ended_at = time.time()
        with suppress(OSError):  # read-only or full disk: report the status anyway, save it later
            _save(job, root)
    return job


def _scan(root: Path) -> list[Job]:
    """Every run's record, statuses refreshed, newest first (no promotion)."""
    jobs = []
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and (p / JOB_FILE).exists():
                try:
                    jobs.append(refresh(load_job(p.name, root), root))
                except JobError:
                    continue
    return sorted(jobs, key=lambda j: j.sort_time, reverse=True)


def _waiting(jobs: list[Job]) -> list[Job]:
    """The queue, first in line first."""
    return sorted((j for j in jobs if j.queued), key=lambda j: (j.queued_at or 0.0, j.run_id))


def list_jobs(root: Path | None = None) -> list[Job]:
    """All runs in the runs folder, newest first, statuses refreshed; starts the next queued run
    when nothing trains (so every open lab page moves the queue)."""
    root = Path(root or runs_dir())
    jobs = _scan(root)
    if any(j.queued for j in jobs):
        if not any(j.active for j in jobs) and promote(root) is not None:
            jobs = _scan(root)
        _ensure_promoter(root)
    return jobs


def running_job(root: Path | None = None) -> Job | None:
    return next((j for j in list_jobs(root) if j.active), None)


def queue_position(job: Job, jobs: list[Job]) -> int | None:
    """1 for the next run to start, ...; None when ``job`` is not waiting."""
    ids = [j.run_id for j in _waiting(jobs)]
    return ids.index(job.run_id) + 1 if job.run_id in ids else None


def train_args(
    model: str,
    epochs: int,
    lr: float | None = None,
    batch_size: int | None = None,
    train_count: int | None = None,
    num_hiddens: int | None = None,
    threads: int | None = None,
) -> list[str]:
    """Engine arguments (after ``--out DIR``) for a run; ``None`` keeps the preset's value."""
    if model not in PRESETS:
        raise JobError(f"unknown model {model!r}; choose from {', '.join(sorted(PRESETS))}")
    if epochs < 1:
        raise JobError(f"epochs must be >= 1, got {epochs}")
    args = ["--epochs", str(int(epochs))]
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


# ----------------------------------------------------------------------------- the queue


def _launch(job: Job, root: Path, resume: bool) -> None:
    """Start ``job``'s process and record it; a process that cannot be recorded is stopped."""
    path = run_path(job.run_id, root)
    _prune_locked(root, keep=job.run_id)
    _check_free_space(root)
    job.queued_at, job.queued_resume = None, False
    job.extra.pop("before_queue", None)
    try:
        runner.spawn(job, path, resume=resume)
        _save(job, root)
    except BaseException:
        runner.undo_spawn(job)
        raise


def _promote_locked(root: Path, jobs: list[Job]) -> Job | None:
    """With the lock held and nothing training: start the first queued run that can start. One
    that cannot (disk full, its folder gone) is marked failed with the reason, and the next
    one is tried."""
    if any(j.active for j in jobs):
        return None
    for job in _waiting(jobs):
        resume = job.queued_resume
        try:
            _launch(job, root, resume)
            log.info("difflab: queued run %s started", job.run_id)
            return job
        except (OSError, JobError) as e:
            job.status, job.ended_at, job.pid = "failed", time.time(), None
            job.queued_at, job.queued_resume = None, False
            job.message = f"could not start from the queue: {_why(e, root)}"
            with suppress(OSError, JobError):
                _save(job, root)
    return None


def promote(root: Path | None = None) -> Job | None:
    """Start the oldest queued run if nothing trains; returns it (None: nothing started)."""
    root = Path(root or runs_dir())
    with suppress(OSError), _lock(root):  # an unwritable folder: the queue just waits
        return _promote_locked(root, _scan(root))
    return None


_PROMOTERS: dict[Path, threading.Thread] = {}
_PROMOTERS_LOCK = threading.Lock()


def _ensure_promoter(root: Path) -> None:
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
    while True:
        time.sleep(PROMOTE_EVERY)
        try:
            jobs = _scan(root)
            with _PROMOTERS_LOCK:  # decide to stop where _ensure_promoter looks
                if not any(j.queued for j in jobs):
                    _PROMOTERS.pop(root, None)
                    return
            if not any(j.active for j in jobs):
                promote(root)
        except Exception:  # never let the thread die with a queue left; try again next time
            log.exception("difflab: the training queue could not be advanced")


def _admit(root: Path, jobs: list[Job], who: Who | None, queue: bool) -> bool:
    """With the lock held: True when a new start may run now; False when it must queue. The
    queue is fair: a waiting run starts before a newcomer."""
    if not any(j.active for j in jobs) and _waiting(jobs):
        _promote_locked(root, jobs)
    busy = next((j for j in jobs if j.active), None)
    if busy is None:
        return True
    if not queue:
        raise _busy(busy)
    mine = [j for j in _waiting(jobs) if who is not None and j.owner == who.owner]
    if who is not None and not who.teacher and len(mine) >= MAX_QUEUED:
        raise JobQueueFull(
            f"you already have {len(mine)} runs waiting ({', '.join(j.run_id for j in mine)}); "
            f"at most {MAX_QUEUED} per session. Wait for one to start or remove one from the queue."
        )
    return False


def _busy(busy: Job) -> JobBusy:
    return JobBusy(f"run {busy.run_id!r} ({busy.model}) is still training; one run at a time on this "
                   "machine. Wait for it to finish or cancel it first.")


def _queue(job: Job, root: Path) -> None:
    job.status, job.queued_at, job.pid, job.returncode = QUEUED, time.time(), None, None
    job.message = ""
    _save(job, root)


# ----------------------------------------------------------------------------- start, resume, ...


def start(model: str, args: list[str], run_id: str | None = None, root: Path | None = None,
          who: Who | None = None, queue: bool = False) -> Job:
    """Start a new run of ``model`` with engine ``args`` (see ``train_args``). While another run
    trains: ``JobBusy``, or with ``queue`` a run with status ``"queued"`` (``JobQueueFull`` past
    ``MAX_QUEUED`` waiting runs of ``who``)."""
    root = Path(root or runs_dir())
    run_id = sanitize_run_id(run_id) if run_id else default_run_id(model)
    path = run_path(run_id, root)
    epochs = int(args[args.index("--epochs") + 1]) if "--epochs" in args else PRESETS[model].epochs
    with _writable(root), _lock(root):
        now = _admit(root, _scan(root), who, queue)
        if path.exists():
            raise JobError(f"a run named {run_id!r} already exists; pick another name or resume it")
        path.mkdir(parents=True)
        job = Job(run_id, model, list(args), epochs, owner=who.owner if who else "",
                  owner_label=who.label if who else "")
        try:
            if now:
                job.started_at = time.time()
                _launch(job, root, resume=False)
            else:
                _queue(job, root)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # our own, just-made folder
            raise
    if job.queued:
        _ensure_promoter(root)
    return job


@contextmanager
def _writable(root: Path):
    """Turn a full disk or a read-only runs folder into a ``JobError`` that says so."""
    try:
        yield
    except OSError as e:
        raise JobError(f"{_why(e, root)}; nothing was started and no existing run was changed") from e


def _why(e: BaseException, root: Path) -> str:
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


def _check_free_space(root: Path) -> None:
    need = _env_mb("DIFFLAB_RUNS_MIN_FREE_MB", MIN_FREE_MB) * 2**20
    free = shutil.disk_usage(root).free
    if free < need:
        raise OSError(errno.ENOSPC, f"No space left on device: {free / 2**20:.0f} MB free, a run needs "
                      f"{need / 2**20:.0f} MB")


def cancel(run_id: str, root: Path | None = None, who: Who | None = None) -> Job:
    """SIGTERM: the engine writes a checkpoint and exits; status "cancelling" until it has. A
    queued run leaves the queue (a new one becomes "cancelled", a queued resume gets its old
    status back)."""
    root = Path(root or runs_dir())
    job = refresh(load_job(run_id, root), root)
    _check(job, who, "cancel")
    if job.queued:
        with _writable(root), _lock(root):
            job = load_job(run_id, root)
            if job.queued:
                _unqueue(job)
                _save(job, root)
        return job
    if job.status != "running":
        return job
    try:
        os.kill(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        return refresh(job, root)
    job.status = "cancelling"
    _save(job, root)
    return job


def _unqueue(job: Job) -> None:
    before = job.extra.pop("before_queue", None)
    job.queued_at, job.queued_resume = None, False
    if before:  # a queued resume: back to how it was
        job.status, job.epochs, job.args = before["status"], before["epochs"], before["args"]
        job.message, job.starts = before.get("message", ""), max(1, job.starts - 1)
    else:
        job.status, job.ended_at = "cancelled", time.time()
        job.message = "removed from the queue before it started"


def can_resume(job: Job, root: Path | None = None) -> bool:
    path = run_path(job.run_id, root)
    return (not job.active and not job.queued and job.status != "finished"
            and (path / "checkpoint.safetensors").exists())


def resume(run_id: str, root: Path | None = None, epochs: int | None = None, who: Who | None = None,
           queue: bool = False) -> Job:
    """Start ``run_id`` again with ``--resume`` (optionally with more ``epochs``); while another run
    trains: ``JobBusy``, or with ``queue`` it waits in the queue."""
    root = Path(root or runs_dir())
    with _writable(root), _lock(root):
        jobs = _scan(root)
        job = next((j for j in jobs if j.run_id == run_id), None) or refresh(load_job(run_id, root), root)
        _check(job, who, "resume")
        if job.active and not queue:
            raise _busy(job)
        if job.active or job.queued:
            raise JobError(f"run {run_id!r} is already {job.status}")
        now = _admit(root, jobs, who, queue)
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
            _launch(job, root, resume=True)
        else:
            job.extra["before_queue"] = before
            job.queued_resume = True
            _queue(job, root)
    if job.queued:
        _ensure_promoter(root)
    return job


def delete(run_id: str, root: Path | None = None, who: Who | None = None) -> None:
    """Remove a run's folder (refused while it trains; a queued run leaves the queue)."""
    root = Path(root or runs_dir())
    with _lock(root):
        job = refresh(load_job(run_id, root), root)
        _check(job, who, "delete")
        if job.active:
            raise JobError(f"run {run_id!r} is still training; cancel it first")
        shutil.rmtree(run_path(run_id, root))


# ----------------------------------------------------------------------------- disk budget


def folder_bytes(path: Path) -> int:
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


def _prune_locked(root: Path, keep: str | None = None, budget: int | None = None) -> list[str]:
    budget = budget_bytes() if budget is None else budget
    if budget <= 0:
        return []
    total = usage(root)
    if total <= budget:
        return []
    ended = [j for j in _scan(root) if not j.active and not j.queued and j.run_id != keep]
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
    with _lock(root):
        return _prune_locked(root, budget=budget)


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class JobProgress:
    step: int  # optimizer steps done
    epoch: float  # fractional epochs done
    epochs: int
    loss: float | None
    lr: float | None
    seconds: float  # training time so far

    @property
    def fraction(self) -> float:
        return min(max(self.epoch / max(self.epochs, 1), 0.0), 1.0)


def log_path(run_id: str, root: Path | None = None) -> Path:
    """The run's loss log (``engine.runs.RunFiles.log``)."""
    return RunFiles(run_path(run_id, root)).log


def log_records(run_id: str, root: Path | None = None) -> list[dict]:
    return read_log(log_path(run_id, root))


def progress(job: Job, root: Path | None = None, records: list[dict] | None = None) -> JobProgress:
    records = log_records(job.run_id, root) if records is None else records
    if not records:
        return JobProgress(0, 0.0, job.epochs, None, None, 0.0)
    last = records[-1]
    return JobProgress(
        int(last.get("step", 0)) + 1, float(last.get("epoch", 0.0)), job.epochs,
        last.get("loss"), last.get("lr"), float(last.get("time", 0.0)),
    )


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
