"""Check your code, end to end on the tiny IF-layout lab: a correct file passes, a file written in
another allowed style passes, and every catalogued mistake planted in a copy of the correct file
is reported on the right function with the right code (``tests/check_data/plants.py``; plants in
different functions share one file, so each sandbox run tests several codes).

Each check runs the student's file in the sandbox (a forked process of the checker's zygote,
started once for the module) and the reference in this process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.check import CODES, check_source
from engine.check.contract import FAIL, NAMES, PASS
from engine.check.lab import Lab, LabSpec

DATA = Path(__file__).resolve().parents[1] / "check_data"
sys.path.insert(0, str(DATA))
from plants import BUNDLES, EXPECTED, expected, plant  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread_module")
CORRECT = (DATA / "correct.py").read_text()


@pytest.fixture(scope="module")
def lab():
    return Lab(LabSpec("tiny"))


def test_correct_file_passes(lab):
    report = check_source(CORRECT, lab=lab)
    assert {n: r.status for n, r in report.functions.items()} == dict.fromkeys(NAMES, PASS), report.functions
    assert report.ok and report.to_json()["functions"]["forward"]["bug"] is None
    loops = report.functions["iterative_denoise_cfg"]
    assert loops.trail is not None and loops.trail.diverged is None and len(loops.trail.steps) == 33
    assert loops.max_abs_err < 1e-3 and loops.yours.shape == loops.reference.shape


def test_other_allowed_style_passes(lab):
    report = check_source((DATA / "accepted.py").read_text(), lab=lab)
    assert all(r.status == PASS for r in report.functions.values()), {
        n: r.message for n, r in report.functions.items()
    }
    assert "clipped" in report.functions["iterative_denoise_cfg"].message


def test_every_code_is_planted():
    planted = {code for want in EXPECTED.values() for code in want.values()}
    required = {
        "missing-sqrt",
        "t-off-by-one",
        "t-swapped",
        "missing-variance",
        "cfg-sign",
        "cfg-scale-wrong-term",
        "flip-not-undone",
        "low-high-swapped",
        "x1-fed",
        "target-reversed",
        "time-reversed",
        "step-size",
    }
    assert planted == set(CODES) and required <= planted
    assert sorted(p for b in BUNDLES for p in b) == sorted(EXPECTED)


@pytest.mark.parametrize("bundle", BUNDLES, ids=["+".join(b) for b in BUNDLES])
def test_planted_mistakes_are_named(lab, bundle):
    report = check_source(plant(CORRECT, bundle), lab=lab)
    want = expected(bundle)
    got = {n: (r.status, r.bug) for n, r in report.functions.items()}
    assert got == {n: (FAIL, want[n]) if n in want else (PASS, None) for n in NAMES}, {
        n: r.message for n, r in report.functions.items()
    }
    assert not report.ok
    for name in want:
        r = report.functions[name]
        assert r.message and r.max_abs_err is None or r.max_abs_err >= 0
        if name != "forward" and name != "flow_matching_loss":
            assert r.divergence and ("step" in r.divergence)


def test_divergence_for_cfg_sign_stops_the_trail(lab):
    report = check_source(plant(CORRECT, ["cfg-sign"]), lab=lab, only=("iterative_denoise_cfg",))
    r = report.functions["iterative_denoise_cfg"]
    assert r.bug == "cfg-sign" and "guidance direction reversed" in r.message
    # the first step's input is the same noise; the second already differs
    assert r.divergence.startswith("step 1, t = 960: your x_t differs by")
    assert r.trail.diverged == 1 and len(r.trail.steps) == 2 and r.trail.steps == [0, 1]


def test_renamed_and_missing_functions(lab):
    source = CORRECT.replace("def forward(", "def my_forward(").replace("def flow_sample(", "def _gone(")
    report = check_source(source, lab=lab, only=("forward", "flow_sample"), rename={"forward": "my_forward"})
    assert report.functions["forward"].status == PASS
    assert report.functions["flow_sample"].status == "missing" and report.ok
