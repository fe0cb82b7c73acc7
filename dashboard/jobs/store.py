"""The run store: one folder per training run in the runs folder (``cache/runs``, or
``DIFFLAB_RUNS_DIR``), its record ``job.json`` (``Job``), its status brought up to date with its
process, and what it has logged so far (``progress``, the loss log, the engine's output).

Statuses: "queued" (waiting for the machine, no process yet), "running" (process alive),
"cancelling" (SIGTERM sent, still writing its checkpoint), and when the process is gone:
"finished", "cancelled", "failed". Run ids are safe folder names (``sanitize_run_id``) and
never lead outside the runs folder (``run_path``). No ``st.*`` calls here.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dashboard import runner
from engine.adapters import RUNS_DIR
from engine.checkpoints import atomic_write_text
from engine.runs import RunFiles, read_log

JOB_FILE = "job.json"
RUN_ID_MAX = 60
ACTIVE = ("running", "cancelling")
QUEUED = "queued"


class JobError(RuntimeError):
    """A user-facing refusal (bad id, run not found, already running); the message says why."""


class JobBusy(JobError):
    """Another training run is still running (one at a time) and the caller did not queue."""


class JobForbidden(JobError):
    """The run belongs to another session; only its owner or a teacher may change it."""


class JobQueueFull(JobError):
    """This session already has ``MAX_QUEUED`` runs waiting."""


def runs_dir() -> Path:
    """``cache/runs``, or ``DIFFLAB_RUNS_DIR`` (tests and replicas point it elsewhere)."""
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


def save_job(job: Job, root: Path) -> None:
    """Write ``job``'s record (atomically: a reader never sees half a file)."""
    atomic_write_text(run_path(job.run_id, root) / JOB_FILE, json.dumps(asdict(job), indent=2) + "\n")


def load_job(run_id: str, root: Path | None = None) -> Job:
    """The job record of ``run_id`` (status as last saved; ``refresh`` brings it up to date)."""
    path = run_path(run_id, root) / JOB_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise JobError(f"no training run named {run_id!r}") from None
    except (OSError, json.JSONDecodeError) as e:
        raise JobError(f"the record of run {run_id!r} is unreadable: {e}") from e
    known = Job.__dataclass_fields__
    return Job(**{k: v for k, v in data.items() if k in known})


@contextmanager
def locked(root: Path):
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
            save_job(job, root)
    return job


def scan(root: Path) -> list[Job]:
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


def waiting(jobs: list[Job]) -> list[Job]:
    """The queue, first in line first."""
    return sorted((j for j in jobs if j.queued), key=lambda j: (j.queued_at or 0.0, j.run_id))


def get_job(run_id: str, root: Path | None = None) -> Job:
    """The record of ``run_id`` with its status up to date (``JobError`` when there is none)."""
    return refresh(load_job(run_id, root), root)


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


def weights_stamp(run_id: str, root: Path | None = None) -> float:
    """When the run last wrote weights (its checkpoint, or its finished model): the mtime, 0 when
    there are none yet. The Training lab redraws the run's digits when it changes."""
    files = RunFiles(run_path(run_id, root))
    stamps = []
    for p in (files.checkpoint, files.weights):
        try:
            stamps.append(p.stat().st_mtime)
        except OSError:  # not written yet, or the run was just deleted
            continue
    return max(stamps, default=0.0)


def output_tail(run_id: str, lines: int = 12, root: Path | None = None) -> str:
    """The last ``lines`` lines the engine printed for ``run_id`` ("" before it printed any)."""
    return runner.output_tail(run_path(run_id, root), lines)
