"""The student's process: ``python -I engine/check/child.py --zygote LABSPEC`` (started by
``engine.check.sandbox``, never imported by the server or the CLI).

The zygote imports torch and builds the lab once, then forks a fresh process per check: on a
busy 2-core machine importing torch takes 5-20 s, forking a few milliseconds. The student's code
only ever runs in a forked process, never in the zygote. A job folder JOB holds ``request.json``
(the lab, the functions, names, limits), ``inputs.npz`` (the case arrays) and ``student.py``.
The forked process hardens itself (``engine.check.guard``), imports the file as its own module
with the notebook's globals in its namespace, and runs each function on its cases with a
per-function timer. For each function it writes ``out/NAME.start`` before and ``out/NAME.json``
+ ``out/NAME.npz`` after (outputs and every network call), so a process killed half-way still
leaves the finished functions. Nothing is pickled.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # started with -I: the repository is not on sys.path yet
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import contextlib  # noqa: E402
import inspect  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402

STDOUT_CAP = 4000  # characters of what a function prints that come back


def student_lines(exc: BaseException, path: str) -> list[str]:
    """The traceback lines in the student's own file, then the exception's last line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    lines = [f"line {f.lineno}, in {f.name}: {(f.line or '').strip()}"[:300] for f in frames]
    if isinstance(exc, SyntaxError) and exc.filename == path:
        lines.append(f"line {exc.lineno}: {(exc.text or '').strip()}"[:300])
    last = traceback.format_exception_only(type(exc), exc)[-1].strip().splitlines() or [type(exc).__name__]
    return lines[-8:] + [" ".join(x.strip() for x in last)[:400]]


def describe(exc: BaseException, path: str, limits: dict) -> dict:
    from engine.check.guard import CheckTimeout

    if isinstance(exc, CheckTimeout):
        return {
            "kind": "hang",
            "message": f"stopped after {limits['wall_s']:g} s (an infinite loop, or far too "
            "much work for one call)",
            "lines": [],
        }
    text = str(exc)
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "not enough memory" in text:
        return {
            "kind": "memory",
            "message": f"ran out of memory (the limit is {limits['memory_mb']} MB)",
            "lines": student_lines(exc, path),
        }
    lines = student_lines(exc, path)
    return {"kind": "exception", "message": lines[-1].strip(), "lines": lines}


class _Capped(io.StringIO):
    def write(self, s):
        return super().write(s[: max(0, STDOUT_CAP - self.tell())])


def call_with(fn, args: list, kwargs: dict):
    """Call with the keyword arguments the function takes (an optional one it lacks is left out)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return fn(*args, **kwargs)


def run_function(name, fn, cases, ctx) -> tuple[dict, dict]:
    """Every case of one function: (JSON record, arrays)."""
    import torch

    from engine.check.guard import start_timer, stop_timer
    from engine.check.inputs import decode_arg
    from engine.check.lab import as_array

    record, arrays, out = {"name": name, "status": "ok", "cases": []}, {}, _Capped()
    t0 = time.monotonic()
    for case in cases:
        ctx["recorder"].calls.clear()
        ctx["holder"]["generator"] = torch.Generator().manual_seed(case["seed"])
        torch.manual_seed(case["seed"])  # the notebook's forward draws from the global generator
        unet = ctx["flow_unet"]
        args = [decode_arg(a, ctx["arrays"], unet, ctx["timesteps"]) for a in case["args"]]
        kwargs = {k: decode_arg(v, ctx["arrays"], unet, ctx["timesteps"]) for k, v in case["kwargs"].items()}
        k = case["index"]
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                start_timer(ctx["limits"]["wall_s"])
                try:
                    result = call_with(fn, args, kwargs)
                finally:
                    stop_timer()
            arrays[f"{k}/output"] = as_array(result)
            entry = {"output": f"{k}/output"}
        except BaseException as e:  # noqa: BLE001 -- the student's exception is the result
            if isinstance(e, KeyboardInterrupt):
                raise
            record |= {"status": "error", "error": describe(e, ctx["path"], ctx["limits"])}
            entry = {"output": None}
        calls = []
        for j, (t, x) in enumerate(ctx["recorder"].calls):
            arrays[f"{k}/call{j}"] = x
            calls.append([t, f"{k}/call{j}"])
        record["cases"].append(entry | {"calls": calls})
        if record["status"] == "error":
            break
    record |= {"stdout": out.getvalue(), "seconds": round(time.monotonic() - t0, 3)}
    return record, arrays


def write_result(out_dir: Path, name: str, record: dict, arrays: dict) -> None:
    import numpy as np

    np.savez(out_dir / f"{name}.npz", **arrays)
    (out_dir / f"{name}.json").write_text(json.dumps(record))


def load_student(path: Path, namespace: dict) -> types.ModuleType:
    """The file as its own module ("student"), the globals set before its code runs."""
    module = types.ModuleType("student")
    module.__file__ = str(path)
    module.__dict__.update(namespace)
    sys.modules["student"] = module
    code = compile(path.read_text(), str(path), "exec")
    exec(code, module.__dict__)  # noqa: S102 -- the point of this process
    return module


def run_job(job: Path, lab) -> int:
    """One check in a freshly forked process: harden, import the student's file, run it."""
    import numpy as np
    import torch

    import engine.check.guard as guard
    from engine.check.contract import course_timesteps
    from engine.check.lab import Recorder, notebook_globals

    request = json.loads((job / "request.json").read_text())
    limits, out_dir, path = request["limits"], job / "out", job / "student.py"
    arrays = dict(np.load(job / "inputs.npz", allow_pickle=False))
    recorder, holder, timesteps = Recorder(), {"generator": torch.Generator()}, course_timesteps()
    namespace = notebook_globals(lab, recorder, holder, timesteps)
    guard.preimport(path.read_text())
    if request.get("mode") == "model":
        from engine.check.student_model import sample_in_child, warm_up  # while the files are readable

        warm_up()
    notes = guard.harden(job / "work", [str(job)], limits["memory_mb"], limits["cpu_s"], limits["file_mb"])
    (out_dir / "ready.json").write_text(json.dumps({"notes": notes}))
    ctx = {
        "recorder": recorder,
        "holder": holder,
        "arrays": arrays,
        "timesteps": timesteps,
        "limits": limits,
        "path": str(path),
        "flow_unet": lab.flow_unet(recorder),
    }
    if request.get("mode") == "model":
        return sample_in_child(path, namespace, request, out_dir, ctx, load_student, describe)
    out = _Capped()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            guard.start_timer(limits["wall_s"])
            try:
                module = load_student(path, namespace)
            finally:
                guard.stop_timer()
    except BaseException as e:  # noqa: BLE001
        (out_dir / "import.json").write_text(
            json.dumps({"error": describe(e, str(path), limits), "stdout": out.getvalue()})
        )
        return 0
    for name in request["functions"]:
        fn = getattr(module, request["rename"].get(name, name), None)
        if not callable(fn):
            write_result(out_dir, name, {"name": name, "status": "missing", "cases": []}, {})
            continue
        (out_dir / f"{name}.start").write_text(str(time.time()))
        cases = [c for c in request["cases"] if c["function"] == name]
        record, arrays_out = run_function(name, fn, cases, ctx)
        write_result(out_dir, name, record, arrays_out)
    return 0


def _forked(job: Path, lab) -> None:
    """The forked process: its own session, its own log as stdout/stderr, never returns."""
    rc = 1
    try:
        os.setsid()
        log = os.open(job / "child.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the zygote's pipes are gone from this process
        os.environ.update(HOME=str(job / "work"), TMPDIR=str(job / "work"))
        rc = run_job(job, lab)
    except BaseException:  # noqa: BLE001 -- reported in the job's log; the parent reads the status
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def zygote(spec: dict) -> int:
    """Import torch and build the lab once, then fork one process per job path read on stdin.
    Writes "ready", "started PID JOB" and "exit PID STATUS" lines on stdout."""
    import select
    import signal

    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from engine.check.guard import preimport
    from engine.check.lab import Lab, LabSpec

    lab = Lab(LabSpec(**spec))
    preimport(PRELOAD)
    torch.zeros(2, 2) @ torch.zeros(2, 2)
    children, buffer = set(), b""
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([0], [], [], 0.1)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            print(f"exit {pid} {status}", flush=True)
        if not ready:
            continue
        chunk = os.read(0, 4096)
        if not chunk:  # the checker has gone: so do the jobs
            for pid in children:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            return 0
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            job = Path(line.decode().strip())
            pid = os.fork()
            if pid == 0:
                _forked(job, lab)
            children.add(pid)
            print(f"started {pid} {job}", flush=True)


# what every job may need, imported once in the zygote (the file's other imports: in the job)
PRELOAD = "import numpy\nimport torch.nn.functional\nimport torchvision.transforms.functional\n"

if __name__ == "__main__":
    sys.exit(zygote(json.loads(sys.argv[2])) if sys.argv[1:2] == ["--zygote"] else 2)
