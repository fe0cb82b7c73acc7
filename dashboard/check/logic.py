"""What the "Check your code" page computes, without Streamlit: whether this server may run a
student's code, the check itself (``engine.check``: the student's code runs in the sandbox,
never in this process), the student's own Part B model, and the pictures.

Who may run code (``gate``): the teacher's setting ``DIFFLAB_CHECK_CODE`` (docs/serving.md):
"on" runs it for everyone, "off" for no one; unset ("auto"), only when this Streamlit server
listens on loopback and the browser talks to it directly from the same machine (no proxy
between them): a student's own laptop. A class server behind nginx is off by default.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from engine.check import CODES, NAMES, CheckReport, LabSpec, Limits, check_source, parse_map, starter_text
from engine.check.contract import SPECS, FunctionResult
from engine.check.lab import Lab
from engine.check.student_model import MODEL_STEPS, PER_DIGIT, WEIGHT_SUFFIXES, ModelReport, evaluate_model

from .. import images
from ..partb import models_dir

SETTING = "DIFFLAB_CHECK_CODE"  # "on" | "off" | "auto" (the default)
LAB_SETTING = "DIFFLAB_CHECK_LAB"  # "builtin" (default) | "tiny" (small random nets: tests, demos)
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
PROXY_HEADERS = ("x-forwarded-for", "x-real-ip", "forwarded")
MAX_CODE_BYTES = 200_000
__all__ = ["CODES", "MODEL_STEPS", "NAMES", "PER_DIGIT", "SPECS", "WEIGHT_SUFFIXES", "starter_text"]


@dataclass(frozen=True)
class Gate:
    allowed: bool
    reason: str


def gate(setting: str | None, server_address: str | None, headers: dict, ip: str | None) -> Gate:
    """May this request run student code here? (see the module docstring)"""
    value = (setting or "auto").strip().lower()
    if value in ("on", "1", "true", "yes"):
        return Gate(True, f"The teacher turned code checking on for this server ({SETTING}=on).")
    if value in ("off", "0", "false", "no"):
        return Gate(False, f"Code checking is turned off on this server ({SETTING}=off).")
    lower = {str(k).lower() for k in headers}
    direct = bool(headers) and not (lower & set(PROXY_HEADERS)) and (ip is None or ip in LOOPBACK)
    if (server_address or "").strip() in LOOPBACK and direct:
        return Gate(
            True,
            "This server listens only on this computer and you are using it here, so your code "
            "runs on your own machine (in a sandbox).",
        )
    return Gate(
        False,
        "This looks like a shared server: running students' code on it is off unless the teacher "
        f"turns it on ({SETTING}=on, see docs/serving.md). You can still download the starter "
        "file and check your code on your own computer with `python -m engine check my_file.py`.",
    )


def gate_from_env(server_address: str | None, headers: dict, ip: str | None) -> Gate:
    return gate(os.environ.get(SETTING), server_address, headers, ip)


def lab_spec() -> LabSpec:
    kind = os.environ.get(LAB_SETTING, "builtin").strip().lower()
    return LabSpec("tiny" if kind == "tiny" else "builtin", root=str(models_dir()))


_LABS: dict[LabSpec, Lab] = {}


def lab() -> Lab:
    """The reference side's models, built once per spec (read-only, shared by sessions)."""
    spec = lab_spec()
    if spec not in _LABS:
        _LABS[spec] = Lab(spec)
    return _LABS[spec]


def code_key(source: str, only, rename: str) -> str:
    return hashlib.sha256(f"{source}\0{','.join(only)}\0{rename}".encode()).hexdigest()[:16]


def run_check(source: str, only: tuple[str, ...] = NAMES, rename: str = "", _progress=None) -> CheckReport:
    """The whole check of pasted or uploaded code (``rename``: "theirs=ours, ..."). Raises
    ``ValueError`` with a message for the page on bad input."""
    if not source.strip():
        raise ValueError("Paste your code or upload a .py file first.")
    if len(source.encode(errors="replace")) > MAX_CODE_BYTES:
        raise ValueError(
            f"That is more than {MAX_CODE_BYTES // 1000} kB of code; upload only your functions."
        )
    mapping = parse_map([rename]) if rename.strip() else {}
    return check_source(source, lab=lab(), only=only, rename=mapping, limits=Limits(), progress=_progress)


def run_model(
    source: str,
    weights: bytes,
    weights_name: str,
    steps: int = MODEL_STEPS,
    per_digit: int = PER_DIGIT,
    _progress=None,
) -> ModelReport:
    """The student's own Part B model, sampled in the sandbox and scored next to the shipped one."""
    if not source.strip():
        raise ValueError("Your code must define build_unet(): paste it or upload the .py file first.")
    return evaluate_model(
        source,
        weights,
        weights_name,
        lab_spec().to_dict(),
        steps=steps,
        per_digit=per_digit,
        root=str(models_dir()),
        progress=_progress,
    )


# ----------------------------------------------------------------------------- pictures


def comparison(yours: np.ndarray | None, reference: np.ndarray, scale: int = 6) -> np.ndarray:
    """yours | reference | |difference|, all in [0, 1] pixel units (so float noise stays black and
    a real difference shows; the caption gives the number)."""
    if yours is None or np.shape(yours) != np.shape(reference):
        yours = np.zeros_like(reference)
    diff = np.abs(yours - reference)
    return images.labeled_row([yours, reference, diff], ["yours", "reference", "|difference|"], scale=scale)


def step_frame(result: FunctionResult, i: int, scale: int = 6) -> tuple[np.ndarray, str]:
    """The trail at the notebook's step ``i``: the picture and its caption."""
    trail = result.trail
    k = trail.steps.index(i)
    yours, ref = trail.yours[k], trail.reference[k]
    diff = float(np.abs(yours.astype(np.float64) - ref).max())
    caption = (f"{step_label(result, i)}: the x_t each run fed the network (max |difference| {diff:.3g} "
               "in [0, 1] pixels)")
    return comparison(yours, ref, scale), caption


def step_label(result: FunctionResult, i: int) -> str:
    """ "i = 4, t = 870" for a DDPM loop, "step 4, t = 0.200" for the Euler sampler."""
    t = result.trail.times[result.trail.steps.index(i)]
    if SPECS[result.name].kind == "loop":
        return f"i = {i}, t = {t:g}"
    return f"step {i}, t = {t:.3f}"


STATUS_ICON = {"pass": ":green[:material/check_circle:]", "fail": ":red[:material/cancel:]",
               "error": ":orange[:material/error:]", "missing": ":gray[:material/remove_circle_outline:]"}


def verdict_line(r: FunctionResult) -> str:
    bug = f" · `{r.bug}`" if r.bug else ""
    err = f" · max error {r.max_abs_err:.2g}" if r.max_abs_err is not None and r.status != "missing" else ""
    return f"{STATUS_ICON[r.status]} **{r.name}**: {r.status}{bug}{err}"


def digit_grid(samples: np.ndarray, per_digit: int) -> np.ndarray:
    """(10 * per_digit, 28, 28) grouped by digit -> one picture, a column per digit."""
    return images.table(images.digit_columns(np.clip(samples, 0, 1), per_digit))


def score_line(s) -> str:
    acc = "" if s.accuracy is None else f"accuracy {100 * s.accuracy:.0f} % · "
    return f"{acc}Fréchet distance {s.fd:.1f} (real digits: {s.fd_floor:.1f}) · sampled in {s.seconds:.0f} s"


def check_parse_map(text: str) -> str | None:
    """None if ``text`` is a valid "theirs=ours" list, else the message."""
    try:
        parse_map([text])
    except ValueError as e:
        return str(e)
    return None
