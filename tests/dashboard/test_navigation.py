"""The page list (``dashboard.navigation``) is the one place the app, the browser tests and the
browser bench learn which pages exist: it matches the files in ``pages/`` and the headings they
show, and ``dashboard/app.py`` builds its ``st.navigation`` (hidden: routing only) and its own
sidebar of page links from it unchanged (the links' markup in a browser:
``tests/system/test_browser_nav.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import navigation, web

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
    (the default page's is ""), and draws no menu of its own (the sidebar's page links do)."""
    seen = {}

    class Nav:
        url_path = ""

        def run(self):
            pass

    def fake_navigation(pages, **kwargs):
        seen["pages"], seen["kwargs"] = pages, kwargs
        return Nav()

    monkeypatch.setattr(st, "navigation", fake_navigation)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert seen["kwargs"] == {"position": "hidden"}
    # st.Page's url_path is "" for the default page, like navigation.Page's
    def shown(sections):
        return {name: [(p.title, p.icon, p.url_path) for p in pages] for name, pages in sections.items()}

    assert shown(seen["pages"]) == shown(navigation.SECTIONS)


def sidebar_nav(at) -> list[tuple]:
    """The sidebar's navigation as AppTest sees it, in order: ("h", section) for a heading,
    ("link", url path, label, icon) for a page link, ("script", body) for the script."""
    out = []
    for el in at.sidebar:
        if el.type == "markdown" and el.proto.body.startswith("### "):  # the sidebar's own title
            break
        if el.type == "markdown":
            out.append(("h", el.proto.body))
        elif el.type == "page_link":
            out.append(("link", el.proto.page, el.proto.label, el.proto.icon))
        elif el.type == "html":
            out.append(("script", el.proto.body))
    return out


def test_sidebar_links_every_page_under_its_section_heading():
    """One ``st.page_link`` per page in ``SECTIONS`` order, each named section under an ``<h2>``
    (the first section has no name), then the script that marks the current page: it is told
    the page shown, on every page."""
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    want = []
    for name, pages in navigation.SECTIONS.items():
        want += [("h", f"## {name}")] if name else []
        want += [("link", p.url_path, p.title, p.icon) for p in pages]
    got = sidebar_nav(at)
    assert got[:-1] == want
    assert got[-1][0] == "script" and "current = \"\"," in got[-1][1]
    assert not re.search(r"__[A-Z]+__", got[-1][1])  # every placeholder filled
    at.switch_page("../pages/c2_check_your_code.py").run()
    assert not at.exception, [e.value for e in at.exception]
    got = sidebar_nav(at)
    assert got[:-1] == want and "current = \"c2_check_your_code\"," in got[-1][1]


def test_nav_script_survives_the_sanitizer():
    """``st.html`` runs its body through DOMPurify, which drops a ``<script>`` or ``<style>``
    whose text holds "<" before a letter, "/" or "!" (it looks like markup); then the links
    would lose their landmark and ``aria-current`` without an error anywhere."""
    for name in ("nav.js", "nav.css"):
        assert not re.search(r"<[/\w!]", web.read(name)), name
