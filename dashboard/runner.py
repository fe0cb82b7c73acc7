"""The process behind a Training-lab run: ``python -m engine train MODEL --out DIR [--resume]
--no-progress``, started from the repository root in its own session (so a Ctrl-C of the
Streamlit server does not reach it), its stdout and stderr in ``DIR/output.log``.

``alive`` tells whether a run's process still runs: not exited, not a zombie, and started when
the job says it did (pids get reused after a reboot). ``ended_status`` reads how it ended from
its exit code or, after a server restart when the exit code is lost, from the engine's last
output line and files. ``dashboard.jobs`` keeps the records; no ``st.*`` calls here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from engine.data import ROOT

OUTPUT_FILE = "output.log"

# Popen objects of the children this server started: polling them reaps the exited ones, so
# they never linger as zombies that look alive. After a server restart, psutil takes over.
_CHILDREN: dict[int, subprocess.Popen] = {}


def alive(job) -> bool:
    """Is the job's own process still running (not exited, not a zombie, not a reused pid)?"""
    if job.pid is None:
        return False
    child = _CHILDREN.get(job.pid)
    if child is not None and child.poll() is not None:
        job.returncode = child.returncode
        _CHILDREN.pop(job.pid, None)
        return False
    try:
        proc = psutil.Process(job.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            if child is not None:  # it died between poll() and now: reap it, keep its exit code
                job.returncode = child.wait(timeout=5)
                _CHILDREN.pop(job.pid, None)
            return False
        if job.pid_started is not None and abs(proc.create_time() - job.pid_started) > 1.0:
            return False
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return True


def output_tail(path: Path, lines: int = 3) -> str:
    try:
        text = (path / OUTPUT_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.strip().splitlines()[-lines:])


def killed_message(path: Path, how: str) -> str:
    if (path / "checkpoint.safetensors").exists():
        return f"{how}; resume continues from the last checkpoint"
    return f"{how} before its first checkpoint; start a new run"


def ended_status(job, path: Path) -> tuple[str, str]:
    """How a run whose process is gone ended, from its exit code or (after a server restart,
    when the exit code is lost) from the engine's last output line and files."""
    tail = output_tail(path)
    # the "$ engine train ..." lines _spawn writes are ours, not the engine's
    said = [line for line in tail.splitlines() if not line.startswith("$ ")]
    last = said[-1] if said else ""
    if last.startswith("error:") or "Traceback" in tail:
        return "failed", tail
    if job.status == "cancelling":  # also when SIGTERM came before the engine's handler was set
        return "cancelled", "cancelled; resume continues from the last checkpoint"
    if job.returncode is not None and job.returncode < 0:  # killed by a signal (kill -9, OOM killer)
        try:
            name = signal.Signals(-job.returncode).name
        except ValueError:
            name = f"signal {-job.returncode}"
        return "failed", killed_message(path, f"the training process was killed ({name})")
    if job.returncode not in (None, 0):
        return "failed", tail or f"exited with status {job.returncode}"
    if last.startswith("finished") and (path / "manifest.json").exists():
        return "finished", last
    if last.startswith("stopped"):
        return "cancelled", "cancelled; resume continues from the last checkpoint"
    if not said:
        return "failed", killed_message(path, "the training process ended without a message (killed?)")
    return "failed", tail


def spawn(job, path: Path, resume: bool) -> None:
    cmd = [sys.executable, "-m", "engine", "train", job.model, "--out", str(path), *job.args]
    cmd += ["--no-progress"] + (["--resume"] if resume else [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(path / OUTPUT_FILE, "a") as out:
        out.write(f"$ {' '.join(cmd[1:])}\n")
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    job.pid, job.command = proc.pid, "python " + " ".join(cmd[1:])
    try:
        job.pid_started = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:  # already gone: refresh() reads its exit code
        job.pid_started = None
    job.status, job.returncode, job.ended_at, job.message = "running", None, None, ""
    job.started_at = job.started_at or time.time()


def undo_spawn(job) -> None:
    """Stop a process we just started but could not record (it would train unseen)."""
    proc = _CHILDREN.pop(job.pid, None) if job.pid is not None else None
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)
