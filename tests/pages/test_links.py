"""Shareable links: a page's key controls live in its URL (``?a1_t=700&...``), so a teacher's
link opened in a fresh session shows the same figure, pixel for pixel (image ids name the PNG
bytes' hash). The browser side (the address bar, the "Link to this view" box) is in
test_browser_links.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.helpers import image_ids, ok

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"


@pytest.fixture(scope="module")
def models_dir(page_models):
    old = os.environ.get("DIFFLAB_MODELS_DIR")
    os.environ["DIFFLAB_MODELS_DIR"] = str(page_models)
    yield page_models
    if old is None:
        os.environ.pop("DIFFLAB_MODELS_DIR", None)
    else:
        os.environ["DIFFLAB_MODELS_DIR"] = old


def fresh(name: str, params: dict | None = None, **state) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=120)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def link_of(at: AppTest) -> dict:
    """What the browser's address bar would carry after these clicks."""
    return {k: v if len(v) > 1 else v[0] for k, v in at.query_params.items() if v}


def test_forward_link_reproduces_the_figure(models_dir):
    sender = fresh("a1_forward.py")
    ok(sender)
    start = image_ids(sender)
    sender.number_input(key="a1_index").set_value(7).run()
    sender.slider(key="a1_t").set_value(700).run()
    ok(sender)
    link = link_of(sender)
    assert link == {"a1_index": "7", "a1_t": "700"}  # only what differs from the defaults
    student = fresh("a1_forward.py", link)
    ok(student)
    assert student.slider(key="a1_t").value == 700 and student.number_input(key="a1_index").value == 7
    assert image_ids(student) == image_ids(sender) != start
    assert any("x_t at t = 700" in m.value for m in student.markdown)


def test_illusion_link_reproduces_three_views(models_dir):
    state = {"a5_stride": 100, "a5_count": 1}
    sender = fresh("a5_illusions.py", **state)
    sender.segmented_control(key="a5_views").set_value(3).run()
    sender.selectbox(key="a5_v3").set_value("negate").run()
    sender.select_slider(key="a5_stride").set_value(50).run()
    ok(sender)
    link = link_of(sender)
    assert {"a5_views", "a5_v3", "a5_stride"} <= set(link)
    student = fresh("a5_illusions.py", link, a5_count=1)
    ok(student)
    assert student.selectbox(key="a5_v3").value == "negate"
    assert image_ids(student) == image_ids(sender)


def test_a_bad_link_falls_back_to_the_defaults(models_dir):
    """A hand-edited or stale link: out-of-range and unknown values are ignored, not a crash."""
    at = fresh("a1_forward.py", {"a1_t": "5000", "a1_index": "abc", "a1_source": "nonsense"})
    ok(at)
    assert at.slider(key="a1_t").value == 999  # clamped into range
    assert at.number_input(key="a1_index").value == 0


def test_sidebar_seed_and_presenter_come_from_the_link(models_dir):
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.query_params["seed"] = "3"
    at.query_params["presenter"] = "true"
    at.run()
    ok(at)
    assert at.sidebar.number_input(key="seed").value == 3
    assert at.sidebar.toggle(key="presenter").value is True
