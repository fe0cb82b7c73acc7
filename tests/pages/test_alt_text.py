"""Issue 20, item 1: every image and chart a page shows says what it shows (WCAG 1.1.1).

Each page runs under AppTest with its defaults (built-in backend, the page-test models); every
``st.image`` must carry an alt text and every Plotly chart an ``alt`` that is meaningful: not
empty, not a number, not a file name, a few words at least. ``dashboard.alt`` writes chart
summaries from the figure's own data; those are checked here against figures with known data.
"""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import alt, navigation

PAGES = [p for p in navigation.present_pages() if p.file != "b3_training_lab.py"]  # no images until a run


def meaningless(text: str) -> str:
    """Why ``text`` is not a text alternative, or ""."""
    t = (text or "").strip()
    if not t:
        return "empty"
    if re.fullmatch(r"[-+0-9.,eE ]+", t):
        return "a number"
    if re.search(r"\.(png|jpe?g|gif|webp|svg)$", t, re.I) or "/" in t.split()[0]:
        return "a file name"
    if len(t.split()) < 3:
        return "fewer than three words"
    return ""


@pytest.fixture
def env(page_models, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(page_models))
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(tmp_path / "runs"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.url_path or "home")
def test_every_image_and_chart_says_what_it_shows(env, page):
    at = AppTest.from_file(str(page.path), default_timeout=240).run()
    assert not at.exception, [e.value for e in at.exception]
    alts = [(img.alt, img.caption) for el in at.get("image") for img in el.proto.imgs]
    charts = [el.proto.alt for el in at.get("plotly_chart")]
    bad = [(a, c, meaningless(a)) for a, c in alts if meaningless(a)]
    bad += [(a, "chart", meaningless(a)) for a in charts if meaningless(a)]
    assert not bad, bad


def test_chart_summary_comes_from_the_data():
    fig = go.Figure(layout={"title": {"text": "<b>Training loss</b>"}, "xaxis_title": "step",
                            "yaxis_title": "MSE"})
    fig.add_scatter(x=[0, 10, 20, 30], y=[0.5, 0.2, 0.1, 0.12], name="train")
    fig.add_scatter(x=[0, 30], y=[np.nan, np.nan], name="empty")  # nothing to say: left out
    fig.add_vline(x=20, annotation_text="best 0.1")
    text = alt.chart(fig)
    assert text.startswith("Chart: Training loss. x: step, y: MSE.")
    assert "train, 4 points, from 0.5 to 0.12 (lowest 0.1 at 20, highest 0.5 at 0)" in text
    assert "empty" not in text and "Marked: best 0.1." in text
    many = go.Figure([go.Scatter(y=[i, i + 1], name=f"s{i}") for i in range(alt.MAX_SERIES + 2)])
    assert "And 2 more series." in alt.chart(many) and alt.chart(many).startswith("Chart. ")
    hist = go.Figure(go.Histogram(x=[1.0, 2.0, 3.0], name="bits"))
    assert "bits: a histogram of 3 values from 1 to 3, mean 2" in alt.chart(hist)


def test_image_alt_is_the_pages_words_or_its_caption_never_nothing():
    assert alt.image("**γ = 5**, 300 steps", None) == "γ = 5, 300 steps"
    assert alt.image("short", "Ten digits sampled with $\\gamma$ = 7") == "Ten digits sampled with gamma = 7"
    with pytest.raises(ValueError, match="caption or an alt"):
        alt.image(None, " ")
    said = alt.noisy("test digit #0 (a 7)", 500, 0.49)
    assert said == "x_t at t = 500 (ᾱ = 0.49): test digit #0 (a 7), about half noise"
    words = ["barely touched by noise", "lightly noisy", "about half noise", "mostly noise",
             "all noise to the eye"]
    assert [alt.level(a) for a in (0.99, 0.7, 0.3, 0.05, 0.0)] == words
