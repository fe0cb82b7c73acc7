"""The "Check your code" page under AppTest, and who may run code (``dashboard.check.logic.gate``).

The page runs a student's code only where the server allows it: under AppTest there is no browser
connection, so by default it says why it will not, and ``DIFFLAB_CHECK_CODE=on`` (the teacher's
setting) turns it on; ``DIFFLAB_CHECK_LAB=tiny`` puts the small random nets behind ``stage_1``.
Pasted code gets a verdict per function, a planted ``cfg-sign`` its diagnosis and a step slider
that ends at the first divergence; a scored model shows next to the shipped one here and on the
Flow matching page.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.check.logic import gate
from engine.check.student_model import ModelReport, ModelScore

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "check_data"
sys.path.insert(0, str(DATA))
from plants import plant  # noqa: E402

PAGE = str(ROOT / "pages" / "c2_check_your_code.py")
CORRECT = (DATA / "correct.py").read_text()
pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture
def allowed(monkeypatch):
    monkeypatch.setenv("DIFFLAB_CHECK_CODE", "on")
    monkeypatch.setenv("DIFFLAB_CHECK_LAB", "tiny")


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [i.value for i in at.info] + [s.value for s in at.success] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


def test_gate():
    local = {"Host": "127.0.0.1:8501", "User-Agent": "x"}
    assert gate(None, "127.0.0.1", local, None).allowed
    assert not gate(None, "127.0.0.1", local | {"X-Forwarded-For": "10.0.0.7"}, None).allowed  # behind nginx
    assert not gate(None, "0.0.0.0", local, None).allowed  # listening to the room
    assert not gate(None, "127.0.0.1", {}, None).allowed  # no browser connection at all
    assert not gate(None, "127.0.0.1", local, "10.0.0.7").allowed
    assert gate("on", "0.0.0.0", {}, "10.0.0.7").allowed
    assert not gate("off", "127.0.0.1", local, None).allowed
    assert "DIFFLAB_CHECK_CODE=on" in gate(None, "0.0.0.0", local, None).reason


def test_off_by_default_says_why(monkeypatch):
    monkeypatch.delenv("DIFFLAB_CHECK_CODE", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "shared server" in texts(at) and "DIFFLAB_CHECK_CODE=on" in texts(at)
    assert not at.button  # no "Check my code" button: nothing can run
    assert at.get("download_button")  # the starter file is still there


def run_pasted(source: str, **state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state["c2_source"] = "Paste it"
    at.session_state["c2_code"] = source
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.button(key="c2_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_correct_file_passes(allowed):
    at = run_pasted(CORRECT)
    assert "7 of 7 functions you wrote match the reference" in texts(at)
    assert texts(at).count(":material/check_circle:") == 7
    assert len(at.image) >= 6  # yours | reference | |difference| for the image functions
    assert {s.key for s in at.select_slider} >= {"c2_step_iterative_denoise", "c2_step_flow_sample"}


def test_cfg_sign_is_named_and_the_slider_stops_at_the_divergence(allowed):
    at = run_pasted(plant(CORRECT, ["cfg-sign"]), c2_only=["iterative_denoise_cfg"])
    body = texts(at)
    assert "`cfg-sign`" in body and "guidance direction reversed" in body
    assert "step 1, t = 960" in body
    slider = at.select_slider(key="c2_step_iterative_denoise_cfg")
    assert slider.options == ["i = 0, t = 990", "i = 1, t = 960"] and slider.value == 1
    slider.set_value(0).run()
    assert any("i = 0, t = 990" in (img.caption or "") for el in at.get("image") for img in el.proto.imgs)


def test_errors_in_pasted_code_are_reported(allowed):
    at = run_pasted("def forward(im, t):\n    return im.nope()\n", c2_only=["forward", "flow_sample"])
    body = texts(at)
    assert "AttributeError" in body and "line 2, in forward" in body and "remove_circle" in body
    at = run_pasted("")
    assert "Paste your code" in texts(at)


def fake_report() -> ModelReport:
    g = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 2)
    yours = ModelScore("your model", g.random((20, 28, 28)), labels, 0.4, 80.0, 14.0, 3.0)
    shipped = ModelScore("flow-class", g.random((20, 28, 28)), labels, 1.0, 12.8, 14.0, 2.0)
    return ModelReport("pass", "your class-conditioned model, 20 samples, 50 Euler steps", yours, shipped)


def test_a_scored_model_shows_next_to_the_shipped_one(allowed):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["check_model_report"] = fake_report()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert any("accuracy 40 %" in c for c in captions) and any("accuracy 100 %" in c for c in captions)
    assert "The shipped flow-class" in texts(at)


def test_your_model_block_on_the_flow_page():
    def script():
        import streamlit as st

        from dashboard import check

        if st.session_state.get("with_model"):
            st.session_state["check_model_report"] = st.session_state["with_model"]
        check.your_model_block()

    at = AppTest.from_function(script, default_timeout=60).run()
    assert "Check your code" in texts(at) and not at.image
    at.session_state["with_model"] = fake_report()
    at.run()
    assert not at.exception and len(at.image) == 2 and "Your model" in texts(at)
    assert "check.your_model_block()" in (ROOT / "pages" / "b2_flow.py").read_text()
