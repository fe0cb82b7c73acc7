"""Background training runs for the Training lab page: one subprocess per run, state on disk.

A run is ``python -m engine train MODEL --out cache/runs/<run-id> [--resume] --no-progress``
(``dashboard.runner`` starts and watches the process). Everything about a run lives in its
folder, so the page can be left, reloaded, or the server restarted without losing it:

- the engine's files: ``checkpoint.safetensors``, ``log.jsonl``, ``model.safetensors``,
  ``manifest.json``, ``snapshots/`` (see ``engine.runs.RunFiles``);
- ``job.json``: our record (model, the exact command, pid and process start time, status);
- ``output.log``: the engine's stdout and stderr (its last line says how it ended).

Cancel is SIGTERM: the engine finishes the step, writes a checkpoint and exits, so *resume*
(the same command plus ``--resume``) continues exactly where it stopped. Only one run trains
at a time (the machines have 2 cores); a file lock makes "check nothing runs, then start" atomic
across browser sessions.

This module makes no ``st.*`` calls; the page polls ``list_jobs``/``progress`` from a fragment.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dashboard import runner
from dashboard.runner import OUTPUT_FILE  # noqa: F401  -- part of a run folder
from engine.checkpoints import atomic_write_text
from engine.config import PRESETS
from engine.models import RUNS_DIR
from engine.runs import RunFiles, read_log

JOB_FILE = "job.json"
RUN_ID_MAX = 60
# Statuses: "running" (process alive), "cancelling" (SIGTERM sent, still writing its
# checkpoint), and when the process is gone: "finished", "cancelled", "failed".
ACTIVE = ("running", "cancelling")

class JobError(RuntimeError):
    """A user-facing refusal (bad id, run not found, already running); the message says why."""


class JobBusy(JobError):
    """Another training run is still running (one at a time)."""


def runs_dir() -> Path:
    """``cache/runs``, or ``DIFFLAB_RUNS_DIR`` (tests point it at a temporary folder)."""
    return Path(os.environ.get("DIFFLAB_RUNS_DIR", RUNS_DIR))


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
    started_at: float = 0.0
    ended_at: float | None = None
    returncode: int | None = None
    message: str = ""
    starts: int = 1  # 1 + number of resumes
    command: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


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
    """Exclusive lock over starting runs (all sessions, all server processes)."""
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


def list_jobs(root: Path | None = None) -> list[Job]:
    """All runs in the runs folder, newest first, statuses refreshed."""
    root = Path(root or runs_dir())
    jobs = []
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and (p / JOB_FILE).exists():
                try:
                    jobs.append(refresh(load_job(p.name, root), root))
                except JobError:
                    continue
    return sorted(jobs, key=lambda j: j.started_at, reverse=True)


def running_job(root: Path | None = None) -> Job | None:
    return next((j for j in list_jobs(root) if j.active), None)


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


def _refuse_if_busy(root: Path) -> None:
    busy = running_job(root)
    if busy is not None:
        raise JobBusy(
            f"run {busy.run_id!r} ({busy.model}) is still training; one run at a time on this "
            "machine. Wait for it to finish or cancel it first."
        )


def start(model: str, args: list[str], run_id: str | None = None, root: Path | None = None) -> Job:
    """Start a new run of ``model`` with engine ``args`` (see ``train_args``)."""
    root = Path(root or runs_dir())
    run_id = sanitize_run_id(run_id) if run_id else default_run_id(model)
    path = run_path(run_id, root)
    epochs = int(args[args.index("--epochs") + 1]) if "--epochs" in args else PRESETS[model].epochs
    with _writable(root), _lock(root):
        _refuse_if_busy(root)
        if path.exists():
            raise JobError(f"a run named {run_id!r} already exists; pick another name or resume it")
        path.mkdir(parents=True)
        job = Job(run_id, model, list(args), epochs, started_at=time.time())
        try:
            runner.spawn(job, path, resume=False)
            _save(job, root)
        except BaseException:
            runner.undo_spawn(job)
            shutil.rmtree(path, ignore_errors=True)  # our own, just-made folder
            raise
    return job


@contextmanager
def _writable(root: Path):
    """Turn a full disk or a read-only runs folder into a ``JobError`` that says so."""
    try:
        yield
    except OSError as e:
        raise JobError(
            f"cannot write the runs folder {root}: {e.strerror or e} "
            f"(errno {e.errno}); nothing was started and no existing run was changed"
        ) from e


def cancel(run_id: str, root: Path | None = None) -> Job:
    """SIGTERM: the engine writes a checkpoint and exits; status "cancelling" until it has."""
    root = Path(root or runs_dir())
    job = refresh(load_job(run_id, root), root)
    if job.status != "running":
        return job
    try:
        os.kill(job.pid, signal.SIGTERM)
    except ProcessLookupError:
        return refresh(job, root)
    job.status = "cancelling"
    _save(job, root)
    return job


def can_resume(job: Job, root: Path | None = None) -> bool:
    path = run_path(job.run_id, root)
    return not job.active and job.status != "finished" and (path / "checkpoint.safetensors").exists()


def resume(run_id: str, root: Path | None = None, epochs: int | None = None) -> Job:
    """Start ``run_id`` again with ``--resume`` (optionally with more ``epochs``)."""
    root = Path(root or runs_dir())
    with _writable(root), _lock(root):
        _refuse_if_busy(root)
        job = refresh(load_job(run_id, root), root)
        path = run_path(run_id, root)
        more = epochs is not None and epochs > job.epochs
        if not (path / "checkpoint.safetensors").exists():
            raise JobError(f"run {run_id!r} has no checkpoint to resume from; start a new run")
        if job.status == "finished" and not more:
            raise JobError(f"run {run_id!r} already finished; give it more epochs to continue")
        if epochs is not None and epochs != job.epochs:
            if epochs < 1:
                raise JobError(f"epochs must be >= 1, got {epochs}")
            if "--epochs" in job.args:
                job.args[job.args.index("--epochs") + 1] = str(int(epochs))
            else:
                job.args += ["--epochs", str(int(epochs))]
            job.epochs = int(epochs)
        job.starts += 1
        try:
            runner.spawn(job, path, resume=True)
            _save(job, root)
        except BaseException:
            runner.undo_spawn(job)
            raise
    return job


def delete(run_id: str, root: Path | None = None) -> None:
    """Remove a run's folder (refused while it trains)."""
    root = Path(root or runs_dir())
    with _lock(root):
        job = refresh(load_job(run_id, root), root)
        if job.active:
            raise JobError(f"run {run_id!r} is still training; cancel it first")
        shutil.rmtree(run_path(run_id, root))


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
    """Block until the run is no longer active (tests and scripts; never in a page)."""
    deadline = time.monotonic() + timeout
    while True:
        job = refresh(load_job(run_id, root), root)
        if not job.active or time.monotonic() > deadline:
            return job
        time.sleep(poll)
