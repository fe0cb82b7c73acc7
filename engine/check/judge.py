"""Verdicts: a student's run of one function against the reference and the catalogue.

- ``forward`` is random, so it is judged statistically: with the course's coefficients, the
  noise its output implies, eps = (x_t - sqrt(abar) x_0) / sqrt(1 - abar), must look like
  N(0, 1) (mean, standard deviation), be uncorrelated with x_0 and differ from image to image
  (5 standard errors each, on 16 x 784 pixels per t). A catalogued mistake is named when its
  coefficients pass the same test.
- Every other function is deterministic given the checker's variance noise: its output must
  match one of the accepted implementations within tolerance; otherwise the catalogue's
  implementations are tried (each stopped at its first step that leaves the student's run), and
  the first step where the student's run leaves the reference's is reported.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from .compare import LOSS_RTOL, Diverged, Follower, close, divergence, fit_shape, max_err, steps_of
from .contract import ERROR, FAIL, MISSING, PASS, SPECS, FunctionResult, course_timesteps
from .inputs import Case, decode_arg
from .lab import Lab, Recorder, as_array, notebook_globals
from .mutations import CATALOGUE, accepted, describe, mutations
from .reference import IMPLEMENTATIONS, Variant, forward_coefficients

Z = 5.0  # standard errors a statistic of forward's noise may stray


def run_variant(lab: Lab, name: str, v: Variant, case: Case, arrays: dict, recorder: Recorder) -> np.ndarray:
    """The reference implementation ``v`` of ``name`` on ``case`` (same inputs and noise)."""
    holder = {"generator": torch.Generator().manual_seed(case.seed)}
    timesteps = course_timesteps()
    env = SimpleNamespace(**notebook_globals(lab, recorder, holder, timesteps))
    unet = lab.flow_unet(recorder)
    spec = case.to_json()
    args = [decode_arg(a, arrays, unet, timesteps) for a in spec["args"]]
    kwargs = {k: decode_arg(a, arrays, unet, timesteps) for k, a in spec["kwargs"].items()}
    with torch.no_grad():
        return as_array(IMPLEMENTATIONS[name](env, v, *args, **kwargs))


# ----------------------------------------------------------------------------- forward


def noise_stats(y: np.ndarray, x0: np.ndarray, a: float, b: float) -> dict:
    """What the noise implied by coefficients (a, b) looks like; ``ok`` if it is N(0, 1), independent
    of x_0 and of the other images."""
    e = (y.astype(np.float64) - a * x0) / b
    n = e.size
    flat = e.reshape(e.shape[0], -1)
    x = x0.reshape(-1) - x0.mean()
    corr = float(
        np.dot(e.reshape(-1) - e.mean(), x) / (np.linalg.norm(e - e.mean()) * np.linalg.norm(x) + 1e-12)
    )
    pairs = (
        [np.corrcoef(flat[i], flat[i + 1])[0, 1] for i in range(len(flat) - 1)] if len(flat) > 1 else [0.0]
    )
    shared = float(np.mean(pairs))
    shared_limit = Z / (n / len(flat)) ** 0.5 / max(len(flat) - 1, 1) ** 0.5
    s = {"mean": float(e.mean()), "std": float(e.std()), "corr_x0": corr, "corr_images": shared}
    s["ok"] = bool(
        np.isfinite(e).all()
        and abs(s["mean"]) <= Z / n**0.5
        and abs(s["std"] - 1) <= Z / (2 * n) ** 0.5
        and abs(corr) <= Z / n**0.5
        and abs(shared) <= shared_limit
    )
    return s


def _why_not(s: dict) -> str:
    if not np.isfinite([s["mean"], s["std"]]).all():
        return "your output has NaN or infinite values"
    if abs(s["corr_images"]) > 0.5:
        return f"the noise is the same in every image of the batch (correlation {s['corr_images']:.2f})"
    if abs(s["corr_x0"]) > 0.05:
        return f"the noise it implies is correlated with x_0 (correlation {s['corr_x0']:.2f})"
    return f"the noise it implies is not N(0, 1) (mean {s['mean']:.3f}, std {s['std']:.3f})"


def judge_forward(record: dict, outs: dict, cases: list[Case], arrays: dict) -> FunctionResult:
    ys, worst, first_fail = [], 0.0, None
    for case in cases:
        y = outs.get(case.index)
        x0 = arrays[case.args[0].key]
        y = None if y is None else fit_shape(y, x0.shape)
        if y is None:
            return FunctionResult(
                "forward",
                FAIL,
                message=f"your output has shape {np.shape(outs.get(case.index))}; "
                f"expected {x0.shape}, the shape of im",
            )
        ys.append((case, y, x0))
        a, b = forward_coefficients(case.meta["abar"])
        xc = x0 - x0.mean()
        a_fit = float(np.sum((y - y.mean()) * xc) / np.sum(xc**2))
        b_fit = float(np.std(y - a_fit * x0))
        worst = max(worst, abs(a_fit - a), abs(b_fit - b)) if np.isfinite([a_fit, b_fit]).all() else np.inf
        s = noise_stats(y, x0, a, b)
        if not s["ok"] and first_fail is None:
            first_fail = (case, s, a_fit, b_fit, a, b)
    if first_fail is None:
        return FunctionResult(
            "forward",
            PASS,
            max_abs_err=worst,
            message="the noise your forward adds is N(0, 1) and independent of x_0 at every t checked",
        )
    for m in (m for m in CATALOGUE if "forward" in m.functions):
        if all(noise_stats(y, x0, *forward_coefficients(c.meta["abar"], m.variant))["ok"] for c, y, x0 in ys):
            return FunctionResult("forward", FAIL, m.code, worst, m.message)
    case, s, a_fit, b_fit, a, b = first_fail
    return FunctionResult(
        "forward",
        FAIL,
        None,
        worst,
        f"at t = {case.meta['t']}, {_why_not(s)}: your x_t ≈ "
        f"{a_fit:.3f} x_0 + {b_fit:.3f} ε, the course's is {a:.3f} x_0 + {b:.3f} ε",
    )


# ----------------------------------------------------------------------------- deterministic functions


def _search(lab, name, case, arrays, student_steps, y, variants) -> tuple[object, Variant, np.ndarray] | None:
    """The first (tag, variant, its output) whose run follows the student's step by step and ends at ``y``."""
    for tag, v in variants:
        follower = Follower(student_steps)
        try:
            out = run_variant(lab, name, v, case, arrays, follower)
            follower.close_step()
        except Diverged:
            continue
        except (RuntimeError, ValueError, IndexError):  # a mutation that breaks on these inputs
            continue
        if _matches(name, y, out):
            return tag, v, out
    return None


def _matches(name: str, y, ref: np.ndarray) -> bool:
    if y is None:
        return False
    if SPECS[name].kind == "loss":
        return abs(float(y) - float(ref)) <= LOSS_RTOL * abs(float(ref)) + 1e-6
    return y.shape == ref.shape and close(y, ref)


def _student_output(name: str, raw, ref: np.ndarray):
    """(output in the reference's shape or None, complaint)."""
    if raw is None:
        return None, "it returned nothing we could read"
    if SPECS[name].kind == "loss":
        raw = np.asarray(raw)
        return (
            (float(raw.reshape(-1)[0]), "")
            if raw.size == 1
            else (
                None,
                f"your loss has shape {raw.shape}: return one number (a 0-dim or mean-reduced tensor)",
            )
        )
    y = fit_shape(raw, ref.shape)
    return (
        (y, "")
        if y is not None
        else (None, f"your output has shape {tuple(np.shape(raw))}; expected {ref.shape}")
    )


def _err(name: str, y, ref) -> float | None:
    if y is None:
        return None
    return abs(float(y) - float(ref)) if SPECS[name].kind == "loss" else max_err(y, ref)


def judge_function(
    lab: Lab,
    name: str,
    record: dict,
    outs: dict,
    calls: dict,
    cases: list[Case],
    arrays: dict,
    main_refs: dict,
) -> FunctionResult:
    """A deterministic function: pass, a named mistake, or a fail with the divergence."""
    variance_matters = not lab.variance_constant
    errs, ways, matched = [], set(), None
    for case in cases:
        ref, ref_calls = main_refs[case.index]
        y, complaint = _student_output(name, outs.get(case.index), ref)
        student_steps = steps_of(calls.get(case.index, []))
        if y is not None and _matches(name, y, ref):
            errs.append(_err(name, y, ref))
            continue
        alternatives = [(None, v) for v in accepted(name, variance_matters)[1:]]
        found = _search(lab, name, case, arrays, student_steps, y, alternatives)
        if found is not None:
            errs.append(_err(name, y, found[2]))
            ways.add(describe(found[1]))
            matched = found[1]
            continue
        _, sentence = divergence(student_steps, steps_of(ref_calls), case.meta.get("i_start", 0))
        err = _err(name, y, ref)
        hit = _search(lab, name, case, arrays, student_steps, y, mutations(name, variance_matters))
        if hit is not None:
            return FunctionResult(name, FAIL, hit[0].code, err, hit[0].message, divergence=sentence)
        if complaint:
            return FunctionResult(name, FAIL, None, None, complaint, divergence=sentence)
        nan = "; it contains NaN" if np.isnan(np.asarray(y, dtype=np.float64)).any() else ""
        message = (
            f"your {'loss' if SPECS[name].kind == 'loss' else 'output'} differs from the reference by "
            f"{err:.3g} (max){nan}"
        )
        return FunctionResult(
            name,
            FAIL,
            None,
            err,
            message + (f"; first difference at {sentence}" if sentence else ""),
            divergence=sentence,
        )
    how = f" (with {'; '.join(sorted(w for w in ways if w))})" if any(ways) else ""
    return FunctionResult(
        name, PASS, None, max(errs, default=0.0), "matches the reference" + how, matched=matched
    )


def from_error(name: str, record: dict) -> FunctionResult:
    if record.get("status") == "missing":
        return FunctionResult(name, MISSING, message=f"no function named {name} in your file")
    err = record.get("error") or {}
    lines = [str(x) for x in err.get("lines", [])][-6:]
    message = str(err.get("message", "it raised an exception"))
    if lines[:-1]:
        message += " (" + "; ".join(x.strip() for x in lines[:-1]) + ")"
    return FunctionResult(name, ERROR, message=message, stdout=str(record.get("stdout", "")))
