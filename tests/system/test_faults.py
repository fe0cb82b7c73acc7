"""Faults: kill -9 of a training run at random points then --resume; a full disk
and a read-only folder during a checkpoint write; two runs at once (engine level and through the
app's job manager). Nothing may be left corrupt and nothing already written may be lost.
Results: docs/hardening.md."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.checkpoints import load_weights
from engine.runs import read_log
from tests.support.helpers import checkpoint_step, logged_steps

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--num-hiddens",
    "8",
    "--train-count",
    "512",
    "--batch-size",
    "32",
    "--epochs",
    "3",
    "--checkpoint-every",
    "0.5",
    "--threads",
    "1",
    "--no-progress",
]
STEPS = 512 // 32 * 3  # 48 global steps


def train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine", "train", "denoiser", *TINY, "--out", str(out), *extra]


def kill_when(proc: subprocess.Popen, condition, timeout: float = 60.0) -> float:
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if condition(time.monotonic() - t0):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    return time.monotonic() - t0


def test_kill_9_twice_then_resume(tmp_path):
    """Kill 1: a seeded random 2-6 s after start (startup included, as a user would). Kill 2:
    right after a seeded random step is logged (always mid-training). Then --resume to the end."""
    rng = random.Random(179)
    out = tmp_path / "run"
    history = []
    delay = rng.uniform(2, 6)
    p = subprocess.Popen(train_cmd(out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when(p, lambda t: t >= delay)
    history.append((f"kill after {delay:.1f} s", p.returncode, len(logged_steps(out)), checkpoint_step(out)))

    for _ in range(2):  # repeat kills (a run that already finished is not killed again)
        if (out / "model.safetensors").exists():
            break
        before = checkpoint_step(out) or 0
        target = rng.randrange(before + 1, STEPS - 1)
        log = out / "log.jsonl"
        inode = log.stat().st_ino if log.exists() else None
        p = subprocess.Popen(
            train_cmd(out, "--resume"), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

        def reached(_t, log=log, inode=inode, target=target):
            """The resumed run trimmed (replaced) the log and logged past ``target``."""
            try:
                fresh = log.stat().st_ino != inode
            except FileNotFoundError:
                return False
            got = logged_steps(out)
            return fresh and bool(got) and got[-1] >= target

        kill_when(p, reached)
        history.append(
            (f"kill after logged step {target}", p.returncode, len(logged_steps(out)), checkpoint_step(out))
        )
        assert (checkpoint_step(out) or 0) >= before  # a checkpoint never goes backwards

    res = subprocess.run(train_cmd(out, "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "finished denoiser" in res.stdout
    assert logged_steps(out) == list(range(STEPS)), "log has a gap or a duplicate"
    assert checkpoint_step(out) == STEPS
    model, cfg, meta = load_weights(out / "model.safetensors")
    assert meta["manifest"]["steps"] == STEPS
    leftovers = sorted(p.name for p in out.glob(".*.tmp"))
    print(
        "kill history (what, exit code, logged steps, checkpoint step):",
        history,
        "leftover temp files:",
        leftovers,
    )
    assert history[0][1] in (-9, 0)


def test_full_disk_and_read_only_folder_keep_the_old_checkpoint(tmp_path, monkeypatch, capsys):
    """A finished run, then --resume with more epochs while every atomic write fails: one clear
    line (exit 1), the old checkpoint, weights and manifest byte-identical, no temp file left."""
    from engine import checkpoints as ckpt
    from engine.cli import main

    out = tmp_path / "run"
    subprocess.run(train_cmd(out), cwd=ROOT, check=True, capture_output=True, timeout=300)
    names = ("checkpoint.safetensors", "model.safetensors", "manifest.json", "log.jsonl")
    before = {n: (out / n).read_bytes() for n in names}
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 3])  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        ckpt.os, "fdopen", lambda fd, mode="r", *a, **k: FullDisk(real_fdopen(fd, mode, *a, **k))
    )
    import torch

    threads = torch.get_num_threads()
    try:
        code = main(
            ["train", "denoiser", *TINY[:6], "--epochs", "4", *TINY[8:], "--out", str(out), "--resume"]
        )
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "No space left on device" in err[0] and "unchanged" in err[0], err
    assert "cannot write" in err[0]
    for n in names:
        assert (out / n).read_bytes() == before[n], n
    assert not list(out.glob(".*.tmp"))

    def read_only(*a, **k):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(ckpt.os, "fdopen", real_fdopen)
    monkeypatch.setattr(ckpt.tempfile, "mkstemp", read_only)
    code = main(["train", "denoiser", *TINY[:6], "--epochs", "4", *TINY[8:], "--out", str(out), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "Read-only" in err[0], err
    for n in names:
        assert (out / n).read_bytes() == before[n], n
    torch.set_num_threads(threads)


def test_atomic_write_failure_modes(tmp_path, monkeypatch):
    from engine import checkpoints as ckpt

    target = tmp_path / "f.bin"
    ckpt.atomic_write_bytes(target, b"old")
    for where in ("fsync", "replace"):

        def boom(*a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr(ckpt.os, where, boom)
            with pytest.raises(OSError, match="cannot write .*f.bin.*unchanged") as info:
                ckpt.atomic_write_bytes(target, b"new" * 1000)
        assert info.value.errno == errno.ENOSPC
        assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_exclusive_folder_lock(tmp_path):
    """The engine-level guard offered to train.py (see docs/hardening.md): a second holder is
    refused, and the lock dies with its process (kill -9 included)."""
    from engine.checkpoints import FolderBusy, exclusive_folder

    code = (
        "from engine.checkpoints import exclusive_folder\nimport time\n"
        f"with exclusive_folder({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match="in use by another process"), exclusive_folder(tmp_path):
            pass
    finally:
        p.kill()
        p.wait()
    with exclusive_folder(tmp_path):
        pass


def test_two_engine_runs_in_different_folders_at_once(tmp_path):
    procs = {
        n: subprocess.Popen(train_cmd(tmp_path / n), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n in ("a", "b")
    }
    for p in procs.values():
        assert p.wait(timeout=300) == 0, p.stderr.read()
    for n in procs:
        assert logged_steps(tmp_path / n) == list(range(STEPS))
        load_weights(tmp_path / n / "model.safetensors")
    # same seed, same data, separate folders: the two runs are identical, so neither disturbed the other
    assert (tmp_path / "a" / "log.jsonl").read_text().count("loss") == STEPS
    la = [(r["step"], r["loss"]) for r in read_log(tmp_path / "a" / "log.jsonl")]
    lb = [(r["step"], r["loss"]) for r in read_log(tmp_path / "b" / "log.jsonl")]
    assert la == lb


def test_the_same_folder_twice_at_once(tmp_path):
    """Two `python -m engine train` into one folder at the same moment. Files never tear (atomic
    writes), and train.py holds ``checkpoints.exclusive_folder`` for the whole run, so the second
    one is refused with a sentence and the first one's files are its own."""
    out = tmp_path / "same"
    procs = [
        subprocess.Popen(train_cmd(out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    for _, _, err in results:
        assert "Traceback" not in err
    load_weights(out / "model.safetensors")  # whatever happened, the files are whole
    checkpoint_step(out)
    refused = [r for r in results if r[0] != 0]
    print("same folder twice: exit codes", [r[0] for r in results], [r[2].strip()[-120:] for r in refused])
    assert len(refused) == 1
    # normally "in use"; if the second started after the first finished: "already has a checkpoint"
    assert "in use" in refused[0][2] or "already has a checkpoint" in refused[0][2]
    assert logged_steps(out) == list(range(STEPS))


def test_two_app_sessions_start_training_at_once(tmp_path, monkeypatch):
    """Two browser sessions press "Start" at the same moment: dashboard/jobs' lock lets
    exactly one run start; the other gets JobBusy with a sentence. Cancel writes a checkpoint."""
    from dashboard import jobs

    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(tmp_path))
    args = jobs.train_args("denoiser", 3, num_hiddens=8, train_count=512, batch_size=32, threads=1)
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def press(name):
        barrier.wait()
        try:
            outcome[name] = jobs.start("denoiser", args, run_id=f"session-{name}", root=tmp_path)
        except jobs.JobError as e:
            outcome[name] = e

    threads = [threading.Thread(target=press, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    started = [v for v in outcome.values() if isinstance(v, jobs.Job)]
    refused = [v for v in outcome.values() if isinstance(v, jobs.JobBusy)]
    assert len(started) == 1 and len(refused) == 1, outcome
    assert "one run at a time" in str(refused[0])
    job = jobs.wait(started[0].run_id, tmp_path, timeout=120)
    assert job.status == "finished", (job.status, job.message)
    folder = jobs.run_path(job.run_id, tmp_path)
    assert logged_steps(folder) == list(range(STEPS))
    load_weights(folder / "model.safetensors")
