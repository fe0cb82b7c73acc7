"""Run a student's file in a separate, limited process and collect what it returns.

A *zygote* (``engine/check/child.py --zygote``) is started once per lab: ``python -I`` with a
scrubbed environment, in its own network namespace where the OS allows it (``unshare -n`` as
root, ``unshare -rn`` otherwise; without either, the audit hook still refuses sockets and the
report says so). It imports torch and builds the lab, then forks one process per check; that
process limits itself (``engine.check.guard``) before the student's file runs. This side adds a
wall clock per function: a function that runs past ``Limits.wall_s`` per case is killed with its
process group and reported as a hang, and a new process runs the functions that were left.
Results come back as JSON and ``.npz`` read with ``allow_pickle=False``; the job folder (under the
system's temp dir) is deleted afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .contract import Limits
from .guard import NOBODY

CHILD = Path(__file__).with_name("child.py")
POLL_S = 0.05
MAX_ARRAY_BYTES = 256 * 2**20  # what the parent reads back from one function


@dataclass
class ChildResult:
    """Per function: the child's JSON record and its arrays; or the import error of the file."""

    records: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    import_error: dict | None = None
    import_stdout: str = ""
    notes: list = field(default_factory=list)


@lru_cache(maxsize=1)
def network_prefix() -> tuple[tuple[str, ...], str | None]:
    """(command prefix, note): a new network namespace if this OS lets us make one."""
    unshare = shutil.which("unshare")
    if unshare:
        for flags in (("-n",) if os.geteuid() == 0 else ()) + ("-rn",):
            try:
                ok = subprocess.run([unshare, flags, "true"], capture_output=True, timeout=10).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            if ok:
                return (unshare, flags, "--"), None
    return (), "no network namespace on this system (unshare -n failed): the audit hook alone refuses sockets"


def scrubbed_env() -> dict:
    """Only what Python and torch need: no tokens, proxies or user settings reach the child."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "HOME": tempfile.gettempdir(),
        "TMPDIR": tempfile.gettempdir(),
    }


class Zygote:
    """The process that forks the checks of one lab (see the module docstring)."""

    def __init__(self, spec: dict, startup_s: float):
        self.log = Path(tempfile.mkstemp(prefix="difflab-zygote-", suffix=".log")[1])
        cmd = [*network_prefix()[0], sys.executable, "-I", "-B", str(CHILD), "--zygote", json.dumps(spec)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=scrubbed_env(),
                cwd=tempfile.gettempdir(),
                start_new_session=True,
            )
        self.lock, self.changed = threading.Lock(), threading.Condition()
        self.started: dict[str, int] = {}
        self.exits: dict[int, int] = {}
        self.ready = False
        threading.Thread(target=self._read, daemon=True, name="difflab-zygote").start()
        with self.changed:
            if not self.changed.wait_for(lambda: self.ready or self.proc.poll() is not None, startup_s):
                self.close()
        if not self.ready:
            tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            self.close()
            raise RuntimeError(f"the checker's process did not start: {tail.strip()[-600:] or 'timed out'}")

    def _read(self) -> None:
        for raw in self.proc.stdout:
            words = raw.decode(errors="replace").split()
            with self.changed:
                if words[:1] == ["ready"]:
                    self.ready = True
                elif words[:1] == ["started"] and len(words) == 3:
                    self.started[words[2]] = int(words[1])
                elif words[:1] == ["exit"] and len(words) == 3:
                    self.exits[int(words[1])] = os.waitstatus_to_exitcode(int(words[2]))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def alive(self) -> bool:
        return self.ready and self.proc.poll() is None

    def spawn(self, job: Path) -> int:
        """Fork a process for ``job``; its pid (also its process group)."""
        with self.lock:
            self.proc.stdin.write(f"{job}\n".encode())
            self.proc.stdin.flush()
        with self.changed:
            if not self.changed.wait_for(
                lambda: str(job) in self.started or self.proc.poll() is not None, 60
            ):
                raise RuntimeError("the checker's process did not start the job")
            if str(job) not in self.started:
                raise RuntimeError("the checker's process stopped")
            return self.started.pop(str(job))

    def exit_code(self, pid: int) -> int | None:
        with self.changed:
            if pid in self.exits:
                return self.exits.pop(pid)
            return -signal.SIGKILL if self.proc.poll() is not None else None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.unlink(missing_ok=True)


_ZYGOTES: dict[str, Zygote] = {}
_ZYGOTES_LOCK = threading.Lock()


def zygote_for(spec: dict, startup_s: float) -> Zygote:
    """The running zygote of this lab, started on first use (and again if it died)."""
    key = json.dumps(spec, sort_keys=True)
    with _ZYGOTES_LOCK:
        z = _ZYGOTES.get(key)
        if z is None or not z.alive():
            z = _ZYGOTES[key] = Zygote(spec, startup_s)
        return z


@atexit.register
def close_all() -> None:
    for z in list(_ZYGOTES.values()):
        z.close()
    _ZYGOTES.clear()


def make_job(source: str, request: dict, arrays: dict, files: dict | None = None) -> Path:
    """The job folder: request, inputs, the student's file (and ``files``, e.g. their weights);
    ``work/`` and ``out/`` for the child."""
    job = Path(tempfile.mkdtemp(prefix="difflab-check-"))
    os.chmod(job, 0o755)
    (job / "student.py").write_text(source)
    for name, data in (files or {}).items():
        (job / Path(name).name).write_bytes(data)
    np.savez(job / "inputs.npz", **arrays)
    (job / "request.json").write_text(json.dumps(request))
    for sub in ("work", "out"):
        (job / sub).mkdir()
        if os.geteuid() == 0:
            os.chown(job / sub, NOBODY, NOBODY)
    return job


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _running(out: Path, names: list[str]) -> str | None:
    return next(
        (n for n in names if (out / f"{n}.start").exists() and not (out / f"{n}.json").exists()), None
    )


def _watch(zyg: Zygote, pid: int, job: Path, names, ncases: dict, limits: Limits, progress):
    """Wait for the job's process; kill it when its start, the import or one function overstays.
    Returns (exit code, the function that was running or None, "exit" | "hang" | "startup")."""
    out, started, since, current = job / "out", time.monotonic(), None, None
    while (rc := zyg.exit_code(pid)) is None:
        time.sleep(POLL_S)
        now = time.monotonic()
        if not (out / "ready.json").exists():
            if now - started > limits.startup_s:
                _kill(pid)
                return _wait_exit(zyg, pid), None, "startup"
            continue
        running = _running(out, names)
        if running != current or since is None:
            current, since = running, now
            if progress and running:
                progress(0.1 + 0.8 * names.index(running) / max(len(names), 1), f"running your {running}")
        if now - since > limits.wall_s * (ncases.get(current, 1) if current else 1) + limits.grace_s:
            _kill(pid)
            return _wait_exit(zyg, pid), current, "hang"
    return rc, _running(out, names), "exit"


def _wait_exit(zyg: Zygote, pid: int) -> int:
    deadline = time.monotonic() + 10
    while (rc := zyg.exit_code(pid)) is None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return -signal.SIGKILL if rc is None else rc


def stopped_message(rc: int, why: str, limits: Limits, log_tail: str) -> dict:
    if why == "hang":
        return {
            "kind": "hang",
            "message": f"stopped after {limits.wall_s:g} s: it did not return (an infinite loop?)",
            "lines": [],
        }
    if rc == -signal.SIGXCPU:
        return {
            "kind": "cpu",
            "message": f"stopped: it used more than {limits.cpu_s} s of CPU time",
            "lines": [],
        }
    if rc < 0:
        return {
            "kind": "crash",
            "message": f"the process running it died (signal {-rc}): out of memory, "
            "or a crash in native code",
            "lines": [],
        }
    last = log_tail.strip().splitlines()[-1] if log_tail.strip() else ""
    return {
        "kind": "crash",
        "message": f"the process running it stopped (status {rc}) {last}".strip(),
        "lines": [],
    }


def _read(out: Path, name: str) -> tuple[dict, dict]:
    """A function's record and arrays, validated (plain numbers, bounded size)."""
    try:
        record = json.loads((out / f"{name}.json").read_text())
        if not isinstance(record, dict):
            raise ValueError("the record is not a JSON object")
        with np.load(out / f"{name}.npz", allow_pickle=False) as z:
            arrays, size = {}, 0
            for k in z.files:
                a = np.asarray(z[k])
                size += a.nbytes
                if size > MAX_ARRAY_BYTES or a.dtype.kind not in "fiub":
                    raise ValueError(f"array {k} is not a plain numeric array of bounded size")
                arrays[k] = a.astype(np.float32)
    except (OSError, ValueError, KeyError) as e:
        return {
            "name": name,
            "status": "error",
            "cases": [],
            "error": {"kind": "crash", "message": f"its result could not be read back ({e})", "lines": []},
        }, {}
    return record, arrays


def run(
    source: str,
    request: dict,
    arrays: dict,
    limits: Limits,
    names: list[str],
    progress=None,
    keep: bool = False,
    files: dict | None = None,
) -> ChildResult:
    """Run ``names`` of the student's ``source`` (one process; a new one after a kill)."""
    request = dict(request, limits=asdict(limits))
    ncases = {n: max(1, sum(c["function"] == n for c in request.get("cases", []))) for n in names}
    result, remaining = ChildResult(), list(names)
    result.notes += [n for n in [network_prefix()[1]] if n]
    if progress:
        progress(0.02, "starting the sandbox")
    zyg = zygote_for(request["lab"], limits.startup_s)
    job = make_job(source, request, arrays, files)
    out = job / "out"
    try:
        while remaining:
            (job / "request.json").write_text(json.dumps(dict(request, functions=remaining)))
            for stale in [*out.glob("*.start"), out / "ready.json"]:
                stale.unlink(missing_ok=True)
            pid = zyg.spawn(job)
            try:
                rc, culprit, why = _watch(zyg, pid, job, remaining, ncases, limits, progress)
            except BaseException:  # the caller gave up (a page rerun): stop the student's process too
                _kill(pid)
                raise
            for name in [n for n in remaining if (out / f"{n}.json").exists()]:
                result.records[name], result.arrays[name] = _read(out, name)
                remaining.remove(name)
            if (out / "import.json").exists():
                data = json.loads((out / "import.json").read_text())
                result.import_error, result.import_stdout = data.get("error"), str(data.get("stdout", ""))
                break
            if not remaining:
                break
            log = (
                (job / "child.log").read_text(errors="replace")[-2000:]
                if (job / "child.log").exists()
                else ""
            )
            stopped = stopped_message(rc, why, limits, log)
            if culprit is None:  # before any function: the sandbox's start, or the file's own code
                what = "starting the sandbox" if why == "startup" else "loading your file"
                result.import_error = dict(stopped, message=f"{what}: {stopped['message']}")
                break
            result.records[culprit] = {"name": culprit, "status": "error", "cases": [], "error": stopped}
            result.arrays[culprit] = {}
            remaining.remove(culprit)
        if (out / "ready.json").exists():
            result.notes += [
                f"sandbox: {n}" for n in json.loads((out / "ready.json").read_text()).get("notes", [])
            ]
    finally:
        if not keep:
            shutil.rmtree(job, ignore_errors=True)
    return result
