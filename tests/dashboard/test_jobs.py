"""dashboard.jobs: background training runs with their state on disk.

Real (tiny) runs of ``python -m engine train denoiser --num-hiddens 8 ...``: start and poll until
finished; cancel (SIGTERM -> checkpoint) and resume with a contiguous log; one run at a time;
a dead pid is not "running"; run ids cannot escape the runs folder. Sharing a class (with
``sleep`` standing in for the engine): the queue and its cap, owners and the teacher, the queue
thread, pruning past the disk budget, a full disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from dashboard import jobs, previews, runner
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
    # the class recipe, and checkpoints often enough for the page to draw the run's digits
    assert jobs.recipes("flow-class") == ["course", "class"] and jobs.recipes("ddpm-class") == ["course"]
    assert jobs.recipe_preset("flow-class", "class").ema_decay > 0
    assert jobs.train_args("flow-class", 1, recipe="class", checkpoint_every=20) == [
        "--epochs", "1", "--recipe", "class", "--checkpoint-every", "20.0"]
    with pytest.raises(jobs.JobError, match="no 'class' recipe"):
        jobs.train_args("ddpm-class", 1, recipe="class")
    with pytest.raises(jobs.JobError, match="checkpoint_every"):
        jobs.train_args("flow-class", 1, checkpoint_every=0)


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
    assert jobs.weights_stamp("tiny-run", runs) > 0
    assert previews.run_preview(folder) is None  # a denoiser draws no digits
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


# ----------------------------------------------------------------------------- sharing a class


@pytest.fixture
def fake_engine(monkeypatch):
    """``runner.spawn`` starts ``sleep 60`` instead of the engine: the queue, owners and pruning
    are about processes and records, not about training."""
    import psutil

    procs = []

    def spawn(job, path, resume):
        proc = subprocess.Popen(["sleep", "60"])
        procs.append(proc)
        runner._CHILDREN[proc.pid] = proc
        job.pid, job.pid_started = proc.pid, psutil.Process(proc.pid).create_time()
        job.command = f"sleep 60 (resume={resume})"
        job.status, job.returncode, job.ended_at, job.message = "running", None, None, ""
        job.started_at = job.started_at or time.time()

    monkeypatch.setattr(runner, "spawn", spawn)
    monkeypatch.setattr(jobs.queue, "PROMOTE_EVERY", 0.2)
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def finish(procs, job):
    """End a fake run as if it had finished (the record then says so on the next refresh)."""
    proc = next(p for p in procs if p.pid == job.pid)
    proc.kill()
    proc.wait()


ANN, BOB = jobs.Who("session:ann", label="session ann"), jobs.Who("session:bob", label="session bob")
TEACHER = jobs.Who("session:tea", teacher=True, label="session tea")


def test_owner_id():
    assert jobs.owner_id("tok", email="Prof@School.edu") == ("user:prof@school.edu", "Prof@School.edu")
    a, label = jobs.owner_id("tok", "r1." + "ab" * 16)
    b, _ = jobs.owner_id("tok", "r2." + "ab" * 16)  # after a failover: same browser, same owner
    assert a == b and a.startswith("browser:") and "ab" * 16 not in a and label.startswith("browser ")
    assert jobs.owner_id("tok", "r1.not-hex!") == ("session:tok", "session tok")  # forged: ignored
    assert jobs.owner_id("tok", None, local=True) == ("local", "this computer")
    assert jobs.owner_id("tok") == ("session:tok", "session tok")


def test_identify_teachers_and_password():
    """``jobs.access``: who a session is from its request, and teacher mode."""
    teachers = jobs.Teachers.from_secrets({"teacher_password": "pw", "teachers": ["Prof@School.edu "]})
    assert teachers.password == "pw" and teachers.emails == {"prof@school.edu"}
    assert jobs.Teachers.from_secrets({"teachers": "a@b.c"}).emails == {"a@b.c"}  # one address
    assert jobs.Teachers.from_secrets({}) == jobs.Teachers()
    direct = jobs.identify("tok", headers={"Host": "localhost"}, ip=None)  # Streamlit reached directly
    assert direct == jobs.Who("local", False, "this computer")
    proxied = jobs.identify("tok", headers={"X-Forwarded-For": "10.0.0.2"}, ip=None)
    assert proxied.owner == "session:tok"
    assert jobs.identify("tok").owner == "session:tok"  # no request at all (AppTest)
    assert jobs.identify("tok", route_cookie=7).owner == "session:tok"  # a stand-in, not a cookie
    prof = jobs.identify("tok", email="prof@school.edu", teachers=teachers)
    assert prof.teacher and prof.owner == "user:prof@school.edu"
    assert not jobs.identify("tok", email="student@school.edu", teachers=teachers).teacher
    assert jobs.identify("tok", teacher_mode=True).teacher
    assert jobs.password_ok("pw", "pw", delay_s=0)
    t0 = time.monotonic()
    assert not jobs.password_ok("guess", "pw", delay_s=0.2)
    assert time.monotonic() - t0 >= 0.2  # a wrong password costs time
    assert not jobs.password_ok("", None, delay_s=0)  # no password set: nobody gets in
    job = jobs.Job("r", "denoiser", [], 1, owner="session:tok", owner_label="session tok")
    assert jobs.owns(job, jobs.Who("session:tok")) and not jobs.owns(job, jobs.Who("session:x"))
    assert jobs.owner_text(job, jobs.Who("session:tok")) == "you"
    assert jobs.owner_text(job, jobs.Who("session:x")) == "session tok"
    assert jobs.owner_text(jobs.Job("r", "denoiser", [], 1), jobs.Who("session:x")) == "anyone"


def test_presets_are_the_engines_but_reflow_and_read_only():
    from engine.config import PRESETS

    presets = jobs.presets()
    # every engine preset but reflow, whose teacher pairs are a GPU job made before training
    assert dict(presets) == {n: c for n, c in PRESETS.items() if n != "flow-class-reflow"}
    assert "flow-class" in presets and "flow-class-reflow" in PRESETS
    with pytest.raises(jobs.JobError, match="unknown model 'flow-class-reflow'"):
        jobs.train_args("flow-class-reflow", 1)
    with pytest.raises(TypeError):
        presets["mine"] = presets["flow-class"]
    assert jobs.default_threads() >= 1


def test_queue_owners_and_cap(runs, fake_engine):
    args = jobs.train_args("denoiser", 1)
    first = jobs.start("denoiser", args, "ann-1", runs, who=ANN, queue=True)
    assert first.status == "running" and first.owner == "session:ann"
    with pytest.raises(jobs.JobBusy, match="one run at a time"):
        jobs.start("denoiser", args, "plain", runs)  # without queue=True: refused as before
    b1 = jobs.start("denoiser", args, "bob-1", runs, who=BOB, queue=True)
    b2 = jobs.start("denoiser", args, "bob-2", runs, who=BOB, queue=True)
    assert (b1.status, b2.status) == ("queued", "queued") and b1.pid is None
    with pytest.raises(jobs.JobQueueFull, match=f"at most {jobs.MAX_QUEUED}"):
        jobs.start("denoiser", args, "bob-3", runs, who=BOB, queue=True)
    assert not (runs / "bob-3").exists()
    jobs.start("denoiser", args, "tea-1", runs, who=TEACHER, queue=True)  # teachers: no cap
    all_jobs = jobs.list_jobs(runs)
    places = [jobs.queue_position(jobs.load_job(r, runs), all_jobs) for r in ("bob-1", "bob-2", "tea-1")]
    assert places == [1, 2, 3]
    assert jobs.queue_position(first, all_jobs) is None

    # others watch: no cancel, resume or delete of another session's run
    for action in (lambda: jobs.cancel("ann-1", runs, who=BOB), lambda: jobs.delete("bob-1", runs, who=ANN)):
        with pytest.raises(jobs.JobForbidden, match="only the session that started it or the teacher"):
            action()
    assert jobs.load_job("ann-1", runs).status == "running" and (runs / "bob-1").exists()
    # the owner takes a run out of the queue; the teacher too
    assert jobs.cancel("bob-2", runs, who=BOB).status == "cancelled"
    assert jobs.cancel("tea-1", runs, who=TEACHER).message == "removed from the queue before it started"
    assert jobs.load_job("bob-2", runs).message == "removed from the queue before it started"
    assert not jobs.can_resume(jobs.load_job("bob-2", runs), runs)

    # the run ends: the queue moves (list_jobs, as every open page calls it)
    finish(fake_engine, jobs.load_job("ann-1", runs))
    listed = {j.run_id: j.status for j in jobs.list_jobs(runs)}
    assert listed["ann-1"] == "failed" and listed["bob-1"] == "running"
    assert jobs.cancel("bob-1", runs, who=TEACHER).status == "cancelling"  # the teacher manages every run
    jobs.wait("bob-1", runs, 10)
    jobs.delete("ann-1", runs, who=ANN)
    jobs.delete("bob-2", runs, who=TEACHER)
    assert sorted(j.run_id for j in jobs.list_jobs(runs)) == ["bob-1", "tea-1"]


def test_queue_moves_without_a_page(runs, fake_engine):
    """The server's queue thread starts the next run with no list_jobs call from a page."""
    args = jobs.train_args("denoiser", 1)
    first = jobs.start("denoiser", args, "first", runs, who=ANN, queue=True)
    jobs.start("denoiser", args, "second", runs, who=BOB, queue=True)
    finish(fake_engine, first)
    assert wait_for(lambda: jobs.load_job("second", runs).status == "running", timeout=10)
    assert jobs.load_job("first", runs).status == "failed"  # refreshed on the way


def test_queued_resume_and_unqueue_restore(runs, fake_engine):
    args = jobs.train_args("denoiser", 2)
    old = jobs.start("denoiser", args, "old", runs, who=ANN, queue=True)
    (runs / "old" / "checkpoint.safetensors").write_bytes(b"x")
    jobs.cancel("old", runs, who=ANN)
    jobs.wait("old", runs, 10)
    assert jobs.load_job("old", runs).status == "cancelled"
    jobs.start("denoiser", args, "busy", runs, who=BOB, queue=True)
    with pytest.raises(jobs.JobBusy):
        jobs.resume("old", runs, who=ANN)  # without queue=True: refused as before
    job = jobs.resume("old", runs, epochs=5, who=ANN, queue=True)
    assert job.status == "queued" and job.queued_resume and job.epochs == 5
    with pytest.raises(jobs.JobError, match="already queued"):
        jobs.resume("old", runs, who=ANN, queue=True)
    back = jobs.cancel("old", runs, who=ANN)  # out of the queue: as it was before
    assert (back.status, back.epochs, back.args, back.starts) == ("cancelled", 2, old.args, 1)
    jobs.resume("old", runs, epochs=3, who=ANN, queue=True)
    finish(fake_engine, jobs.load_job("busy", runs))
    assert wait_for(lambda: jobs.load_job("old", runs).status == "running", timeout=10)
    job = jobs.load_job("old", runs)
    assert "resume=True" in job.command and job.epochs == 3 and job.starts == 2


def _ended_run(root, run_id, ended_at, mb, status="finished"):
    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "blob.bin").write_bytes(b"\0" * int(mb * 2**20))
    job = jobs.Job(run_id, "denoiser", ["--epochs", "1"], 1, status=status, started_at=ended_at - 10,
                   ended_at=ended_at)
    (folder / "job.json").write_text(json.dumps(job.__dict__))


def test_prune_oldest_finished_past_the_budget(runs, fake_engine, monkeypatch):
    for i, status in enumerate(["finished", "failed", "cancelled", "finished"]):
        _ended_run(runs, f"old-{i}", 1000.0 + i, 1.0, status)
    live = jobs.start("denoiser", jobs.train_args("denoiser", 1), "live", runs, who=ANN, queue=True)
    (runs / "live" / "blob.bin").write_bytes(b"\0" * 2**20)
    waiting = jobs.start("denoiser", jobs.train_args("denoiser", 1), "waiting", runs, who=BOB, queue=True)
    (runs / "waiting" / "blob.bin").write_bytes(b"\0" * 2**20)
    assert waiting.queued and live.active
    removed = jobs.prune(runs, budget=int(3.5 * 2**20))  # 6 MB of runs: the 3 oldest ended ones go
    assert removed == ["old-0", "old-1", "old-2"]
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == ["live", "old-3", "waiting"]
    assert jobs.prune(runs, budget=1) == ["old-3"]  # never the running or the queued run
    # a start prunes under DIFFLAB_RUNS_BUDGET_MB
    _ended_run(runs, "older", 500.0, 1.0)
    monkeypatch.setenv("DIFFLAB_RUNS_BUDGET_MB", "2.5")
    finish(fake_engine, live)
    jobs.list_jobs(runs)  # "waiting" starts, and before it the oldest ended run goes
    assert not (runs / "older").exists() and (runs / "live").exists()
    assert jobs.load_job("waiting", runs).status == "running"


def test_disk_full_is_refused_with_a_clear_message(runs, fake_engine, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    with pytest.raises(jobs.JobError, match="the disk is full") as e:
        jobs.start("denoiser", jobs.train_args("denoiser", 1), "full", runs, who=ANN, queue=True)
    assert "No space left on device" in str(e.value) and "nothing was started" in str(e.value)
    assert not (runs / "full").exists() and not fake_engine
    assert jobs.disk_full("error: [Errno 28] cannot write x: No space left on device")


def test_a_queued_run_that_cannot_start_fails_and_the_next_starts(runs, fake_engine, monkeypatch):
    import errno

    first = jobs.start("denoiser", jobs.train_args("denoiser", 1), "first", runs, who=ANN, queue=True)
    jobs.start("denoiser", jobs.train_args("denoiser", 1), "doomed", runs, who=BOB, queue=True)
    jobs.start("denoiser", jobs.train_args("denoiser", 1), "next", runs, who=ANN, queue=True)
    spawn = runner.spawn

    def picky(job, path, resume):
        if job.run_id == "doomed":
            raise OSError(errno.ENOSPC, "No space left on device")
        spawn(job, path, resume)

    monkeypatch.setattr(runner, "spawn", picky)
    finish(fake_engine, first)
    status = {j.run_id: j for j in jobs.list_jobs(runs)}
    assert status["doomed"].status == "failed" and "the disk is full" in status["doomed"].message
    assert status["next"].status == "running"


def test_a_class_recipe_run_draws_its_digits_as_it_learns(runs):
    """The Training lab's live grid: a flow-class run with the class recipe checkpoints often, and
    its latest weights (the EMA's) draw 3 of each digit from fixed noise, scored by the classifier."""
    args = jobs.train_args("flow-class", 1, train_count=256, recipe="class", checkpoint_every=0.5) + TINY
    job = jobs.start("flow-class", args, "live-digits", runs)
    assert "--recipe class" in job.command
    folder = runs / "live-digits"
    job = jobs.wait(job.run_id, runs, timeout=180)
    assert job.status == "finished", job.message
    got = previews.run_preview(folder)
    assert got["images"].shape == (30, 28, 28) and 0.0 <= got["accuracy"] <= 1.0
    assert got["images"].min() >= 0 and got["images"].max() <= 1
    again = previews.run_preview(folder)
    assert (again["images"] == got["images"]).all()  # fixed noise: the same weights draw the same digits
    assert json.loads((folder / "manifest.json").read_text())["config"]["ema_decay"] == 0.999
    (folder / "model.safetensors").unlink()  # mid-run: only the checkpoint, whose EMA draws
    mid = previews.run_preview(folder)
    assert not mid["finished"] and mid["step"] > 0 and mid["images"].shape == (30, 28, 28)
    (folder / "checkpoint.safetensors").write_bytes(b"half a file")  # a broken file: nothing to draw
    assert previews.run_preview(folder) is None
