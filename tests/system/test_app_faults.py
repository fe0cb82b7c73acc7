"""Faults the app itself must survive (results: docs/hardening.md, section 2 and 4).

1. ``kill -9`` of a training run the *app* started (``dashboard.jobs``): the job manager reports
   it as not running and resumable, the checkpoint loads, Resume through ``jobs`` finishes and
   ``log.jsonl`` holds exactly steps 0..N-1.
2. (``-m browser``) A browser tab closed while the Flow page samples live: the server is not
   stuck. A new session renders a page, ``/_stcore/health`` answers, and the server's CPU use is
   reported (never asserted) before, during and after the orphaned run.
3. A read-only or full runs folder: the Training lab's Start shows an error box (no exception) and
   leaves the existing runs' files byte-identical; and no page ever writes the models folder.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from dashboard import jobs, runner
from engine.checkpoints import load_weights
from tests.support import devserver
from tests.support.helpers import checkpoint_step, logged_steps
from tests.support.tiny import train_tiny

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"
STEPS = 512 // 32 * 3  # 48 optimizer steps
REPORT: dict = {}


def tree_state(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: sha256 and mtime_ns (a rewrite with equal bytes shows too)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns)
        elif p.is_dir():
            out[str(p.relative_to(root)) + "/"] = ("dir", 0)
    return out


# ----------------------------------------------------------------------------- tiny models


MODELS = [
    "denoiser",
    "denoiser-pure-noise",
    "flow-time",
    "flow-class",
    "flow-class-constant-lr",
    "ddpm-class",
]


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    """Tiny trained models (never the shipped ones: a page that wrote them would harm them)."""
    root = tmp_path_factory.mktemp("more_models")
    for name in MODELS:
        # flow-class wider (D=16), so that live sampling lasts long enough to close a tab
        train_tiny(name, root / name, num_hiddens=16 if name == "flow-class" else 4)
    return root


# ----------------------------------------------------------------------------- 1. kill -9 of an app run


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """Start a run through jobs, kill -9 its process once a checkpoint and a few steps exist,
    then resume it through jobs. Returns what was seen at each stage."""
    runs = tmp_path_factory.mktemp("more_runs")
    seen: dict = {"runs": runs}
    args = jobs.train_args("denoiser", 3, num_hiddens=8, train_count=512, batch_size=32, threads=1)
    args += ["--checkpoint-every", "0.5"]  # jobs.start passes any engine arguments through
    job = jobs.start("denoiser", args, run_id="killed", root=runs)
    folder = jobs.run_path("killed", runs)
    proc = psutil.Process(job.pid)
    seen["cmdline"], seen["pid"] = proc.cmdline(), job.pid
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        got = logged_steps(folder) if (folder / "log.jsonl").exists() else []
        ck = checkpoint_step(folder)
        if ck and len(got) >= 12:
            break
        assert jobs.refresh(jobs.load_job("killed", runs), runs).status == "running", _tail(folder)
        time.sleep(0.05)
    else:
        pytest.fail(f"no checkpoint and 12 steps after 150 s: {_tail(folder)}")
    assert jobs.load_job("killed", runs).pid == job.pid
    os.kill(job.pid, signal.SIGKILL)
    seen["killed_after_steps"] = len(logged_steps(folder))
    after = jobs.wait("killed", runs, timeout=30)
    seen["status"], seen["message"] = after.status, after.message
    seen["active"], seen["can_resume"] = after.active, jobs.can_resume(after, runs)
    seen["steps_after_kill"] = logged_steps(folder)
    seen["checkpoint_after_kill"] = checkpoint_step(folder)
    # as a restarted server sees it: no Popen object, no exit code, only the files
    saved = json.loads((folder / jobs.JOB_FILE).read_text())
    fresh = jobs.Job(**{**saved, "status": "running", "returncode": None, "message": ""})
    runner._CHILDREN.pop(job.pid, None)
    seen["restart_view"] = runner.ended_status(fresh, folder)
    t0 = time.monotonic()
    resumed = jobs.resume("killed", runs)
    seen["resume_pid"] = resumed.pid
    done = jobs.wait("killed", runs, timeout=240)
    seen["resume_s"] = round(time.monotonic() - t0, 1)
    seen["final"] = done
    seen["folder"] = folder
    return seen


def _tail(folder: Path) -> str:
    try:
        return (folder / jobs.OUTPUT_FILE).read_text()[-1500:]
    except OSError:
        return ""


def test_kill_9_of_an_app_started_run_then_resume(killed_run):
    s = killed_run
    folder = s["folder"]
    assert s["cmdline"][1:4] == ["-m", "engine", "train"] and str(folder) in s["cmdline"], s["cmdline"]
    # not running, resumable, and says so
    assert not s["active"] and s["status"] in ("failed", "cancelled"), s["status"]
    assert s["can_resume"]
    assert "killed" in s["message"] and "resume" in s["message"].lower(), s["message"]
    assert "killed" in s["restart_view"][1] and "resume" in s["restart_view"][1].lower(), s["restart_view"]
    # the checkpoint loads and the log is a prefix 0..k with k >= checkpoint step
    ck = s["checkpoint_after_kill"]
    assert ck is not None and 0 < ck < STEPS
    logged = s["steps_after_kill"]
    assert logged == list(range(len(logged))) and len(logged) >= ck
    # resume through jobs: finishes; exactly 0..N-1; no temp file
    job = s["final"]
    assert job.status == "finished", (job.status, job.message, _tail(folder))
    assert job.starts == 2 and s["resume_pid"] != s["pid"]
    assert logged_steps(folder) == list(range(STEPS)), "log has a gap or a duplicate"
    assert checkpoint_step(folder) == STEPS
    _, _, meta = load_weights(folder / "model.safetensors")
    assert meta["manifest"]["steps"] == STEPS
    assert not list(folder.glob(".*.tmp"))
    REPORT["kill9"] = {
        k: s[k]
        for k in (
            "killed_after_steps",
            "checkpoint_after_kill",
            "status",
            "message",
            "restart_view",
            "resume_s",
        )
    }
    print("\n[kill -9 via jobs]", json.dumps(REPORT["kill9"], default=str))


# ----------------------------------------------------------------------------- 3. read-only / full disk


def _write_mode(mode) -> bool:
    return isinstance(mode, str) and any(c in mode for c in "wax+")


def _under(path, root: Path) -> bool:
    try:
        if isinstance(path, int):
            return False
        return Path(os.fsdecode(path)).resolve().is_relative_to(root.resolve())
    except (TypeError, ValueError, OSError):
        return False


@contextmanager
def refuse_writes(monkeypatch, root: Path, err: int, log: list | None = None):
    """Every attempt to create or open-for-writing a file or folder under ``root`` raises
    ``OSError(err)`` (tests run as root, so chmod would not stop anything). With ``log``, the
    attempts are only recorded, not refused."""
    real_open, real_io_open, real_os_open, real_mkdir = builtins.open, io.open, os.open, os.mkdir
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def hit(path):
        if log is not None:
            log.append(str(path))
            return
        raise OSError(err, os.strerror(err), str(path))

    def p_open(file, mode="r", *a, **k):
        if _write_mode(mode) and _under(file, root):
            hit(file)
        return real_open(file, mode, *a, **k)

    def p_io_open(file, mode="r", *a, **k):
        if _write_mode(mode) and _under(file, root):
            hit(file)
        return real_io_open(file, mode, *a, **k)

    def p_os_open(path, flags, *a, **k):
        if flags & write_flags and _under(path, root):
            hit(path)
        return real_os_open(path, flags, *a, **k)

    def p_mkdir(path, *a, **k):
        if _under(path, root) and not os.path.isdir(path):
            hit(path)
        return real_mkdir(path, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", p_open)
        m.setattr(io, "open", p_io_open)
        m.setattr(os, "open", p_os_open)
        m.setattr(os, "mkdir", p_mkdir)
        yield


def _lab(models_root, runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(models_root))
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(runs))
    at = AppTest.from_file(str(PAGES / "b3_training_lab.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="b3_model").set_value("denoiser").run()
    at.number_input(key="b3_epochs_denoiser").set_value(1)
    at.number_input(key="b3_count_denoiser").set_value(256)
    at.number_input(key="b3_width_denoiser").set_value(4)
    return at


def _training_children() -> list[psutil.Process]:
    out = []
    for c in psutil.Process().children(recursive=True):
        try:
            if "engine" in c.cmdline() and c.status() != psutil.STATUS_ZOMBIE:
                out.append(c)
        except psutil.NoSuchProcess:
            pass
    return out


def test_training_lab_start_on_a_read_only_or_full_runs_folder(
    killed_run, models_root, tmp_path, monkeypatch
):
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(killed_run["folder"], runs / "old-run")  # a finished run
    # and a run whose record still says "running" but whose process is gone (server died with it)
    shutil.copytree(killed_run["folder"], runs / "orphan")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rec = json.loads((runs / "orphan" / jobs.JOB_FILE).read_text())
    rec.update(run_id="orphan", status="running", pid=dead.pid, pid_started=None, ended_at=None)
    (runs / ".lock").touch()  # made by the earlier starts
    at = _lab(models_root, runs, monkeypatch)
    (runs / "orphan" / jobs.JOB_FILE).write_text(json.dumps(rec))  # after the page's first run
    before = tree_state(runs)
    got = {}
    # (a) read-only file system: nothing under runs/ can be created or opened for writing
    with refuse_writes(monkeypatch, runs, errno.EROFS):
        at.text_input(key="b3_name").set_value("ro-run")
        at.button(key="FormSubmitter:b3_start-Start training").click().run()
        assert not at.exception, [e.value for e in at.exception]
        got["read-only"] = [e.value for e in at.error]
        at.run()  # the page keeps working (the orphan's status cannot be saved, nothing raises)
        assert not at.exception, [e.value for e in at.exception]
    assert any("Not started" in e and "Read-only file system" in e for e in got["read-only"]), got
    assert tree_state(runs) == before
    assert not _training_children()

    # (b) full disk after the process was started: job.json cannot be written
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    (runs / "orphan" / jobs.JOB_FILE).write_text(json.dumps({**rec, "status": "failed"}))
    before = tree_state(runs)
    with monkeypatch.context() as m:
        m.setattr(jobs.store, "atomic_write_text", full)
        at.text_input(key="b3_name").set_value("full-run")
        at.button(key="FormSubmitter:b3_start-Start training").click().run()
        assert not at.exception, [e.value for e in at.exception]
        got["full"] = [e.value for e in at.error]
    assert any("Not started" in e and "No space left" in e for e in got["full"]), got
    assert tree_state(runs) == before  # the half-made run folder is removed again
    assert not _training_children(), "the started process was left running without a record"
    REPORT["read_only_full"] = got
    print("\n[runs folder not writable]", json.dumps(got))


def test_pages_never_write_the_models_folder(models_root, tmp_path, monkeypatch):
    """Every page that uses a model, under AppTest, with its main action pressed: no file under
    the models folder is opened for writing, and bytes, mtimes and the listing stay the same."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(models_root))
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(tmp_path / "runs"))
    before = tree_state(models_root)
    attempts: list[str] = []
    ran = []
    with refuse_writes(monkeypatch, models_root, errno.EROFS, log=attempts):
        for page in (
            "home.py",
            "a1_forward.py",
            "a3_sampling.py",
            "b1_denoiser.py",
            "b2_flow.py",
            "ab_ddpm_vs_flow.py",
            "b3_training_lab.py",
        ):
            at = AppTest.from_file(str(PAGES / page), default_timeout=180)
            at.run()
            if page == "b2_flow.py":
                at.select_slider(key="b2_steps").set_value(5)
                at.button(key="FormSubmitter:b2_form-Sample").click().run()
            assert not at.exception, (page, [e.value for e in at.exception])
            ran.append(page)
    assert attempts == [], attempts
    assert tree_state(models_root) == before
    print("\n[models folder untouched]", ran, len(before), "files")


# ----------------------------------------------------------------------------- 2. closed tab mid-sampling

@contextmanager
def streamlit_server(models_root: Path, runs: Path, log_path: Path):
    with devserver.serve(models_root, log_path, runs_dir=runs, timeout=90) as srv:
        yield srv.proc, srv.url


def _wait_idle(page, title: str | None, limit: float, settle: float = 1.0) -> float:
    return devserver.wait_idle(page, limit, settle, title)


def _cpu(proc: psutil.Process, seconds: float = 2.0) -> float:
    """Server CPU % (100 = one core) over ``seconds``, threads and children included."""
    procs = [proc] + proc.children(recursive=True)
    t0 = sum(sum(p.cpu_times()[:2]) for p in procs)
    time.sleep(seconds)
    t1 = sum(sum(p.cpu_times()[:2]) for p in procs if p.is_running())
    return round(100 * (t1 - t0) / seconds, 1)


@pytest.mark.browser
def test_closing_the_tab_mid_sampling_leaves_the_server_usable(models_root, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs python playwright")
    if devserver.chromium_path() is None:
        pytest.skip("chromium not found")
    steps_wanted = 300  # Euler steps; 40 images x CFG on a D=16 UNet: 10-60 s on 2 busy cores
    rep: dict = {"euler_steps": steps_wanted}
    log = tmp_path / "server.log"
    with (
        streamlit_server(models_root, tmp_path / "runs", log) as (proc, base),
        sync_api.sync_playwright() as pw,
    ):
        server = psutil.Process(proc.pid)
        browser = pw.chromium.launch(executable_path=devserver.chromium_path(), args=devserver.CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            page.goto(base + "/b2_flow")
            _wait_idle(page, "Flow matching", 150)
            rep["cpu_idle_pct"] = _cpu(server)
            slider = page.locator('[data-testid="stSlider"] input[type="range"]').nth(1)  # γ, then steps
            slider.focus()
            slider.press("Home")
            for _ in range([5, 10, 20, 50, 100, 300].index(steps_wanted)):
                slider.press("ArrowRight")
            assert slider.get_attribute("aria-valuetext") == str(steps_wanted), slider.get_attribute(
                "aria-valuetext"
            )
            page.get_by_role("button", name="Sample", exact=True).click()
            bar = page.locator('[data-testid="stProgress"]')
            t_click = time.monotonic()
            done = 0
            while time.monotonic() - t_click < 120:
                # "Sampling: 300 Euler steps on 40 images…" first, then "Euler step 12 of 300"
                m = re.search(r"Euler step (\d+) of", " ".join(bar.all_inner_texts()))
                if m:
                    done = int(m.group(1))
                    if done >= 3:
                        break
                time.sleep(0.1)
            assert 3 <= done < steps_wanted, f"sampling not seen running (step {done})"
            t_close = time.monotonic()
            rate = done / (t_close - t_click)
            rep["steps_done_at_close"] = done
            rep["s_from_click_to_close"] = round(t_close - t_click, 1)
            rep["estimated_run_s"] = round(steps_wanted / rate, 1)
            ctx.close()  # the tab (and its websocket) goes away mid-run
            rep["cpu_right_after_close_pct"] = _cpu(server, 1.0)

            # a new session at once: the same page renders, health answers
            t0 = time.monotonic()
            ctx2 = browser.new_context(viewport={"width": 1280, "height": 900})
            page2 = ctx2.new_page()
            page2.set_default_timeout(30_000)
            page2.goto(base + "/b2_flow")
            _wait_idle(page2, "Flow matching", 60)
            rep["new_session_render_s"] = round(time.monotonic() - t0, 1)
            assert page2.locator('[data-testid="stException"]').count() == 0
            t1 = time.monotonic()
            assert devserver.healthy(base, timeout=10)
            rep["health_s"] = round(time.monotonic() - t1, 2)
            # server CPU, 2 s windows, until the orphaned run would have finished (at most 60 s
            # after the close); then two more windows
            timeline = []
            until = min(rep["estimated_run_s"] - (t_close - t_click) + 2, 60)
            while time.monotonic() - t_close < until:
                timeline.append((round(time.monotonic() - t_close, 1), _cpu(server)))
            rep["cpu_timeline_after_close"] = timeline
            rep["cpu_after_orphan_would_end_pct"] = [_cpu(server) for _ in range(2)]
            # and the new session can itself sample (5 steps) to the end
            page2.locator('[data-testid="stSlider"] input[type="range"]').nth(1).focus()
            page2.locator('[data-testid="stSlider"] input[type="range"]').nth(1).press("Home")
            t2 = time.monotonic()
            page2.get_by_role("button", name="Sample", exact=True).click()
            page2.locator('[data-testid="stMain"] [data-testid="stImageCaption"]').filter(
                has_text="5 steps"
            ).first.wait_for(timeout=90_000)
            rep["new_session_sample_5_steps_s"] = round(time.monotonic() - t2, 1)
            _wait_idle(page2, "Flow matching", 60)
            assert page2.locator('[data-testid="stException"]').count() == 0
            # the closed tab's exact request again (300 steps, same seed and γ): near-instant if the
            # orphaned run had finished (flow_samples caches results), a full run if it was stopped
            page2.locator('[data-testid="stSlider"] input[type="range"]').nth(1).press("End")
            t3 = time.monotonic()
            page2.get_by_role("button", name="Sample", exact=True).click()
            page2.locator('[data-testid="stMain"] [data-testid="stImageCaption"]').filter(
                has_text=f"{steps_wanted} steps"
            ).first.wait_for(timeout=120_000)
            rep["same_request_again_s"] = round(time.monotonic() - t3, 1)
            _wait_idle(page2, "Flow matching", 60)
            assert page2.locator('[data-testid="stException"]').count() == 0
            ctx2.close()
        finally:
            browser.close()
        rep["server_alive"] = proc.poll() is None
        assert rep["server_alive"]
        rep["tracebacks_in_server_log"] = log.read_text().count("Traceback")
    REPORT["closed_tab"] = rep
    print("\n[closed tab mid-sampling]", json.dumps(rep))
