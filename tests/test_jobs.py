"""dashboard.jobs: background training runs with their state on disk.

Real (tiny) runs of ``python -m engine train denoiser --num-hiddens 8 ...``: start and poll until
finished; cancel (SIGTERM -> checkpoint) and resume with a contiguous log; one run at a time;
a dead pid is not "running"; run ids cannot escape the runs folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from dashboard import jobs, runner
from engine.runs import read_log

TINY = ["--num-hiddens", "8", "--threads", "1"]


def wait_for(pred, timeout=90.0, poll=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(poll)
    return False


@pytest.fixture
def runs(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(root))
    yield root
    for job in jobs.list_jobs(root):  # never leave a training process behind
        if job.active and job.pid:
            jobs.cancel(job.run_id, root)
            jobs.wait(job.run_id, root, 60)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("../../etc/passwd", "etc-passwd"),
        ("My run #2", "my-run-2"),
        (".hidden", "hidden"),
        ("a/../../b", "a-b"),
        ("flow-class-20260101-120000", "flow-class-20260101-120000"),
        ("x" * 200, "x" * jobs.RUN_ID_MAX),
    ],
)
def test_sanitize_run_id(text, expected):
    out = jobs.sanitize_run_id(text)
    assert out == expected
    assert "/" not in out and ".." not in out and not out.startswith(".")


@pytest.mark.parametrize("text", ["", "   ", "../..", "///", "..."])
def test_sanitize_refuses_empty(text):
    with pytest.raises(jobs.JobError):
        jobs.sanitize_run_id(text)


@pytest.mark.parametrize("run_id", ["..", "../x", "a/b", "/etc", ".lock", "UPPER"])
def test_run_path_refuses_escapes(tmp_path, run_id):
    with pytest.raises(jobs.JobError):
        jobs.run_path(run_id, tmp_path)


def test_start_sanitizes_the_name(runs):
    with pytest.raises(jobs.JobError):
        jobs.start("denoiser", jobs.train_args("denoiser", 1), "../../", runs)
    assert not (runs.parent / "denoiser").exists()


def test_train_args():
    args = jobs.train_args("flow-class", 2, 0.01, 64, 2048, 8, 1)
    assert args == ["--epochs", "2", "--lr", "0.01", "--batch-size", "64", "--train-count", "2048",
                    "--num-hiddens", "8", "--threads", "1"]
    assert jobs.train_args("denoiser", 1) == ["--epochs", "1"]
    with pytest.raises(jobs.JobError):
        jobs.train_args("no-such-model", 1)
    with pytest.raises(jobs.JobError):
        jobs.train_args("denoiser", 0)
    with pytest.raises(jobs.JobError):
        jobs.train_args("denoiser", 1, batch_size=0)


def test_run_finishes_and_is_polled(runs):
    args = jobs.train_args("denoiser", 1, train_count=256) + TINY
    job = jobs.start("denoiser", args, "tiny run", runs)
    assert job.run_id == "tiny-run" and job.status == "running" and job.pid
    assert "--no-progress" in job.command and "--out" in job.command
    job = jobs.wait(job.run_id, runs, timeout=120)
    assert job.status == "finished", job.message
    folder = runs / "tiny-run"
    for f in ("job.json", "log.jsonl", "model.safetensors", "manifest.json", "checkpoint.safetensors"):
        assert (folder / f).exists(), f
    assert json.loads((folder / "job.json").read_text())["status"] == "finished"
    p = jobs.progress(job, runs)
    assert p.fraction == 1.0 and p.step == 1 and p.loss is not None  # 256 images, batch 256
    assert [j.run_id for j in jobs.list_jobs(runs)] == ["tiny-run"]
    assert jobs.running_job(runs) is None
    assert not jobs.can_resume(job, runs)
    with pytest.raises(jobs.JobError):
        jobs.resume("tiny-run", runs)  # finished, no more epochs asked for
    with pytest.raises(jobs.JobError):
        jobs.start("denoiser", args, "tiny-run", runs)  # the name is taken
    jobs.delete("tiny-run", runs)
    assert not folder.exists()


def test_cancel_resume_and_one_at_a_time(runs):
    # batch 8 over all 60000 images: far more steps than the test waits for
    args = jobs.train_args("denoiser", 1, batch_size=8, train_count=0) + TINY
    job = jobs.start("denoiser", args, "long", runs)
    log = runs / "long" / "log.jsonl"
    assert wait_for(lambda: len(read_log(log)) >= 5), runner.output_tail(runs / "long")

    with pytest.raises(jobs.JobBusy, match="one run at a time"):
        jobs.start("denoiser", args, "second", runs)
    assert not (runs / "second").exists()
    assert jobs.running_job(runs).run_id == "long"

    job = jobs.cancel("long", runs)
    assert job.status == "cancelling"
    job = jobs.wait("long", runs, timeout=60)
    assert job.status == "cancelled", job.message
    assert jobs.can_resume(job, runs)
    steps_at_cancel = len(read_log(log))

    job = jobs.resume("long", runs)
    assert job.status == "running" and job.starts == 2 and "--resume" in job.command
    with pytest.raises(jobs.JobBusy):
        jobs.resume("long", runs)
    assert wait_for(lambda: len(read_log(log)) >= steps_at_cancel + 5)
    jobs.cancel("long", runs)
    job = jobs.wait("long", runs, timeout=60)
    assert job.status == "cancelled"
    steps = [r["step"] for r in read_log(log)]
    assert steps == list(range(len(steps)))  # resumed exactly: no gap, no duplicate
    assert len(steps) > steps_at_cancel


def test_dead_pid_is_not_running(runs):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (runs / "ghost").mkdir(parents=True)
    ghost = jobs.Job("ghost", "denoiser", ["--epochs", "1"], 1, status="running", pid=dead.pid,
                     pid_started=time.time() - 5, started_at=time.time())
    (runs / "ghost" / "job.json").write_text(json.dumps(ghost.__dict__))
    assert jobs.running_job(runs) is None
    job = jobs.load_job("ghost", runs)
    assert job.status == "failed" and not job.active  # no output, no checkpoint: not resumable
    assert not jobs.can_resume(job, runs)


def test_reused_pid_is_not_running(runs):
    """A live pid whose process started at another time (a reboot reused it) is not our run."""
    import os

    (runs / "old").mkdir(parents=True)
    old = jobs.Job("old", "denoiser", ["--epochs", "1"], 1, status="running", pid=os.getpid(),
                   pid_started=1.0, started_at=1.0)
    (runs / "old" / "job.json").write_text(json.dumps(old.__dict__))
    assert jobs.running_job(runs) is None
