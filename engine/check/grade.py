"""Check a student's file: run it in the sandbox, run the reference here on the same inputs, judge.

``check_source(source)`` is the whole check: it builds the inputs, starts the student's process
(``engine.check.sandbox``) and, while that runs, computes the reference runs in this process
(never importing the student's code); then each function gets a ``FunctionResult``
(``engine.check.judge``) with what the page shows (images, both trajectories).
``check_folder`` grades every ``*.py`` of a folder, one report per file.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .compare import divergence, nearest, steps_of
from .contract import ERROR, NAMES, SPECS, CheckReport, CheckSettings, FunctionResult, Limits, Trail
from .inputs import Case, build_cases
from .judge import from_error, judge_forward, judge_function, run_variant
from .lab import Lab, LabSpec, Recorder
from .reference import CORRECT, forward
from .sandbox import run as run_sandbox

MAX_SOURCE_BYTES = 1_000_000


def _to_unit(x: np.ndarray, kind: str) -> np.ndarray:
    """(C, H, W) in the function's pixel range -> (H, W) or (H, W, 3) in [0, 1] for display."""
    x = np.asarray(x, dtype=np.float32)
    x = (x + 1) / 2 if kind in ("loop", "random") else x
    x = np.clip(np.nan_to_num(x, nan=0.0), 0, 1)
    return x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1)


def _trail(name: str, case: Case, student_calls: list, ref_calls: list, diverged: int | None) -> Trail | None:
    student, ref = steps_of(student_calls), steps_of(ref_calls)
    if not ref or not student:
        return None
    kind, first = SPECS[name].kind, case.meta.get("i_start", 0)
    last = (
        min(len(ref), len(student)) - 1 if diverged is None else min(diverged, len(ref) - 1, len(student) - 1)
    )
    yours, theirs, times = [], [], []
    for k in range(last + 1):
        t, rows = ref[k]
        pick = nearest(rows[0], student[k][1])[0]
        yours.append(_to_unit(student[k][1][pick], kind))
        theirs.append(_to_unit(rows[0], kind))
        times.append(t)
    return Trail(list(range(first, first + last + 1)), times, np.stack(yours), np.stack(theirs), diverged)


def _main_references(lab: Lab, cases: list[Case], arrays: dict) -> dict:
    """{function: {case index: (reference output, its network calls)}} for the deterministic ones."""
    refs: dict = {}
    for case in cases:
        if case.function == "forward":
            continue
        rec = Recorder()
        out = run_variant(lab, case.function, CORRECT, case, arrays, rec)
        refs.setdefault(case.function, {})[case.index] = (out, rec.calls)
    return refs


def _outputs(record: dict, arrays: dict) -> tuple[dict, dict]:
    outs, calls = {}, {}
    for k, entry in enumerate(record.get("cases", [])):
        key = entry.get("output")
        outs[k] = arrays.get(key) if key else None
        calls[k] = [(float(t), arrays[a]) for t, a in entry.get("calls", []) if a in arrays]
    return outs, calls


def _judge_one(lab, name, record, child_arrays, cases, arrays, refs) -> FunctionResult:
    if record is None:
        return FunctionResult(name, ERROR, message="no result came back from your code's process")
    if record.get("status") != "ok":
        return from_error(name, record)
    outs, calls = _outputs(record, child_arrays)
    mine = [c for c in cases if c.function == name]
    if name == "forward":
        result = judge_forward(record, outs, mine, arrays)
        case = mine[len(mine) // 2]
        y = outs.get(case.index)
        if y is not None and np.size(y) == np.size(arrays[case.args[0].key]):
            import torch

            x0 = torch.from_numpy(arrays[case.args[0].key])
            ref = forward(lab, CORRECT, x0, case.args[1], generator=torch.Generator().manual_seed(case.seed))
            result.yours = _to_unit(np.reshape(y, x0.shape)[0], "random")
            result.reference = _to_unit(ref.numpy()[0], "random")
            result.numbers = {"t": case.meta["t"]}
    else:
        result = judge_function(lab, name, record, outs, calls, mine, arrays, refs[name])
        case = mine[0]
        ref, ref_calls = refs[name][case.index]
        if result.matched is not None:  # passed as an accepted alternative: show that one
            rec = Recorder()
            ref, ref_calls = run_variant(lab, name, result.matched, case, arrays, rec), rec.calls
        y = outs.get(case.index)
        if SPECS[name].kind == "loss":
            result.numbers = {
                "yours": None if y is None or np.size(y) != 1 else float(np.reshape(y, -1)[0]),
                "reference": float(ref),
            }
        else:
            if y is not None and np.size(y) == ref.size:
                result.yours = _to_unit(np.reshape(y, ref.shape)[0], SPECS[name].kind)
            result.reference = _to_unit(ref[0], SPECS[name].kind)
            stop = None
            if result.divergence is not None:
                stop = divergence(steps_of(calls.get(case.index, [])), steps_of(ref_calls), 0)[0]
            result.trail = _trail(name, case, calls.get(case.index, []), ref_calls, stop)
    result.stdout = str(record.get("stdout", ""))
    return result


def check_source(
    source: str,
    lab: Lab | None = None,
    settings: CheckSettings = CheckSettings(),
    limits: Limits = Limits(),
    only=NAMES,
    rename: dict | None = None,
    progress=None,
) -> CheckReport:
    """The whole check of a student's file given as text (see the module docstring)."""
    t0 = time.monotonic()
    if len(source.encode(errors="replace")) > MAX_SOURCE_BYTES:
        raise ValueError(f"the file is larger than {MAX_SOURCE_BYTES // 1000} kB; is it really your code?")
    lab = lab or Lab(LabSpec())
    only = tuple(n for n in NAMES if n in only)
    cases, arrays = build_cases(lab, settings, only)
    request = {"lab": lab.spec.to_dict(), "cases": [c.to_json() for c in cases], "rename": dict(rename or {})}
    with ThreadPoolExecutor(1, thread_name_prefix="difflab-check") as pool:
        child_run = pool.submit(run_sandbox, source, request, arrays, limits, list(only), progress)
        refs = _main_references(lab, cases, arrays)
        child = child_run.result()
    if progress:
        progress(0.95, "comparing with the reference")
    results = {}
    for name in only:
        if child.import_error is not None:
            err = child.import_error
            lines = "; ".join(x.strip() for x in err.get("lines", [])[:-1])
            msg = f"your file could not be loaded: {err.get('message', '')}" + (
                f" ({lines})" if lines else ""
            )
            results[name] = FunctionResult(name, ERROR, message=msg, stdout=child.import_stdout)
            continue
        results[name] = _judge_one(
            lab, name, child.records.get(name), child.arrays.get(name, {}), cases, arrays, refs
        )
    return CheckReport(results, child.notes, time.monotonic() - t0)


def check_file(path, **kwargs) -> CheckReport:
    return check_source(Path(path).read_text(errors="replace"), **kwargs)


def check_folder(folder, **kwargs) -> list[tuple[Path, CheckReport]]:
    """Every ``*.py`` directly in ``folder``, sorted by name; the lab is built once."""
    files = sorted(p for p in Path(folder).glob("*.py") if p.is_file())
    if kwargs.get("lab") is None:
        kwargs["lab"] = Lab(LabSpec())
    return [(p, check_file(p, **kwargs)) for p in files]
