"""Background training runs for the Training lab page: one subprocess per run, state on disk,
shared by every browser session of every server process. One module per part:

- ``store``: the runs folder, one folder per run and its record ``job.json`` (``Job``), statuses
  brought up to date with the process, progress, the loss log and the engine's output;
- ``queue``: one run trains at a time, the others wait in a queue that moves by itself;
- ``actions``: start, resume, cancel, delete;
- ``access``: who a session is (``identify``, ``owner_id``), who may manage a run
  (``may_manage``), teacher mode (``Teachers``, ``password_ok``);
- ``disk``: the runs folder's usage, its budget and pruning, a full disk in words;
- ``presets``: the models a run can train (``presets()``) and a run's engine arguments.

Everything about a run lives in its folder, so the page can be left, reloaded, or the server
restarted without losing it:

- the engine's files: ``checkpoint.safetensors``, ``log.jsonl``, ``model.safetensors``,
  ``manifest.json``, ``snapshots/`` (see ``engine.runs.RunFiles``);
- ``job.json``: our record (model, the exact command, pid and process start time, status, owner);
- ``output.log``: the engine's stdout and stderr (its last line says how it ended).

This package makes no ``st.*`` calls; the page polls ``list_jobs``/``progress`` from a fragment.
Pages use the names below; the modules' other names are the package's own.
"""

from dashboard.runner import OUTPUT_FILE

from .access import Teachers, Who, identify, may_manage, owner_id, owner_text, owns, password_ok
from .actions import can_resume, cancel, delete, resume, start
from .disk import BUDGET_MB, MIN_FREE_MB, budget_bytes, disk_full, prune, usage
from .presets import default_threads, presets, recipe_preset, recipes, train_args
from .queue import MAX_QUEUED, list_jobs, promote, queue_position, running_job, wait
from .store import (
    ACTIVE,
    JOB_FILE,
    QUEUED,
    RUN_ID_MAX,
    Job,
    JobBusy,
    JobError,
    JobForbidden,
    JobProgress,
    JobQueueFull,
    get_job,
    load_job,
    log_path,
    log_records,
    output_tail,
    progress,
    refresh,
    run_path,
    runs_dir,
    sanitize_run_id,
    weights_stamp,
)

__all__ = [
    "ACTIVE", "BUDGET_MB", "JOB_FILE", "MAX_QUEUED", "MIN_FREE_MB", "OUTPUT_FILE", "QUEUED", "RUN_ID_MAX",
    "Job", "JobBusy", "JobError", "JobForbidden", "JobProgress", "JobQueueFull", "Teachers", "Who",
    "budget_bytes", "can_resume", "cancel", "default_threads", "delete", "disk_full", "get_job", "identify",
    "list_jobs", "load_job", "log_path", "log_records", "may_manage", "output_tail", "owner_id",
    "owner_text", "owns", "password_ok", "presets", "progress", "promote", "prune", "queue_position",
    "recipe_preset", "recipes", "refresh", "resume", "run_path", "running_job", "runs_dir",
    "sanitize_run_id", "start", "train_args", "usage", "wait", "weights_stamp",
]
