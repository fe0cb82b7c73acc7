"""The page list (``dashboard.navigation``) is the one place the app, the browser tests and the
browser bench learn which pages exist: it matches the files in ``pages/`` and the headings they
show, and ``dashboard/app.py`` builds its ``st.navigation`` from it unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import navigation

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_file_is_listed_once_with_a_unique_url():
    files = [p.file for p in navigation.all_pages()]
    assert sorted(files) == sorted(f.name for f in (ROOT / "pages").glob("*.py"))
    paths = [p.url_path for p in navigation.all_pages()]
    assert len(set(paths)) == len(paths)
    assert [p.file for p in navigation.all_pages() if p.default] == ["home.py"]
    assert navigation.by_url_path("").file == "home.py"
    assert navigation.by_url_path("a1_forward").title == "Forward process"
    assert list(navigation.SECTIONS) == ["", "Part A · Diffusion", "Part B · Training & flow matching"]


def test_headings_are_the_pages_own_titles():
    """The heading a browser waits for is the first ``st.title("...")`` of the page file."""
    for p in navigation.all_pages():
        m = re.search(r'^st\.title\("([^"]*)"\)', p.path.read_text(), re.MULTILINE)
        assert m, p.file
        assert m.group(1) == p.heading, p.file


def test_app_builds_its_navigation_from_the_list(monkeypatch):
    """``st.navigation`` gets the sections in order, each page with its title, icon and url path
    (the default page's is ""), expanded."""
    seen = {}

    class Nav:
        def run(self):
            pass

    def fake_navigation(pages, **kwargs):
        seen["pages"], seen["kwargs"] = pages, kwargs
        return Nav()

    monkeypatch.setattr(st, "navigation", fake_navigation)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert seen["kwargs"] == {"expanded": True}
    # st.Page's url_path is "" for the default page, like navigation.Page's
    def shown(sections):
        return {name: [(p.title, p.icon, p.url_path) for p in pages] for name, pages in sections.items()}

    assert shown(seen["pages"]) == shown(navigation.SECTIONS)
