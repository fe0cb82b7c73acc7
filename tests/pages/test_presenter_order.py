"""Issue 25 under AppTest: presenter mode leads with the picture, a desk keeps the reading order.

Each topic page runs twice with its defaults. In presenter mode its first picture (image or
chart) comes before the "What is happening" expander, which holds the explanation. Outside
presenter mode there is no such expander, and the explanation's text comes before the first
picture, as it always did. Where the picture sits on a real screen is the browser test's part
(tests/system/test_presenter_layout.py).
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import navigation
from tests.support.first_screen import TOPIC_PAGES

EXPANDER = "What is happening"
PAGES = [p for p in navigation.present_pages()
         if p.url_path in TOPIC_PAGES and p.url_path != "b3_training_lab"]


@pytest.fixture
def env(page_models, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(page_models))
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(tmp_path / "runs"))


def walk(node):
    """The page's elements in the order a reader meets them (depth first)."""
    for child in getattr(node, "children", {}).values():
        yield child
        yield from walk(child)


def order(at: AppTest) -> list[str]:
    """'picture', 'expander', 'text' (a markdown paragraph of a sentence or more), in page order."""
    out = []
    for el in walk(at.main):
        kind = getattr(el, "type", "")
        if kind in ("imgs", "image", "plotly_chart", "iframe"):  # iframe: the Forward page's scrubber
            out.append("picture")
        elif kind in ("expander", "expandable") and EXPANDER in str(getattr(el, "label", "")):
            out.append("expander")
        elif kind == "markdown" and len(str(el.value).split()) >= 8:
            out.append("text")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.url_path)
def test_presenter_leads_with_the_picture(env, page):
    at = AppTest.from_file(str(page.path), default_timeout=240)
    at.session_state["presenter"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    seen = order(at)
    assert "expander" in seen, f"no '{EXPANDER}' expander in presenter mode: {seen}"
    assert "picture" in seen and seen.index("picture") < seen.index("expander"), seen


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.url_path)
def test_a_desk_reads_the_explanation_first(env, page):
    at = AppTest.from_file(str(page.path), default_timeout=240).run()
    assert not at.exception, [e.value for e in at.exception]
    seen = order(at)
    assert "expander" not in seen, seen
    assert "text" in seen and "picture" in seen and seen.index("text") < seen.index("picture"), seen
