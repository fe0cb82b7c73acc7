"""The sidebar's page links in a real browser (issue 20, item 6): ``dashboard/app.py`` hides
``st.navigation``'s own menu, whose markup fails axe's ``list`` and ``listitem`` on every page,
and draws the pages as ``st.page_link``s under section headings instead (``sidebar_nav``).

What a student must not lose with the swap, checked in headless Chromium at 1280x720:

- one navigation landmark, "App pages", holding every page in ``dashboard/navigation.py``'s
  order under ``<h2>`` section headings, each link's href the page's own address (a new tab
  opens that page; the default page is ``/``) and no list markup for axe to fault;
- the current page is marked twice: ``aria-current="page"`` for a screen reader, bold on a
  tinted background for the eye, and nothing else is;
- Tab walks through the links in that order from the top of the page; Enter on one opens its
  page in the same session (no reload), with the URL ``/<page>``; Back goes back and the mark
  follows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import navigation
from tests.support import devserver

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need python playwright")
axe_base = pytest.importorskip("axe_playwright_python.base", reason="pip install axe-playwright-python")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
TIMEOUT_S = 300.0
PAGES = navigation.present_pages()

if devserver.chromium_path() is None:
    pytest.skip(
        "chromium not found (bash scripts/setup.sh --test installs Debian's chromium)",
        allow_module_level=True,
    )

# In the landmark, in document order: its headings and links, and how each link looks.
_NAV_JS = """nav => [...nav.querySelectorAll('h2, a')].map(e => {
  const label = e.tagName === 'A' ? e.querySelector('p') : e;
  return {tag: e.tagName.toLowerCase(), text: label.textContent.trim(), href: e.href || '',
          current: e.getAttribute('aria-current'), weight: +getComputedStyle(label).fontWeight,
          bg: getComputedStyle(e).backgroundColor};
})"""

_FOCUSED_JS = """() => { const e = document.activeElement;
  const link = !!(e && e.tagName === 'A' && e.closest('[role="navigation"]'));
  return {link, text: link ? e.querySelector('p').textContent.trim() : '',
          visible: link && e.matches(':focus-visible')};
}"""

_CURRENT_JS = """t => [...document.querySelectorAll('[role="navigation"] a[aria-current="page"]')]
  .map(a => a.querySelector('p').textContent.trim()).join('|') === t"""


@pytest.fixture(scope="module")
def server(page_models, tmp_path_factory):
    try:
        with devserver.serve(
            page_models, ARTIFACTS / "browser_nav_server.log", runs_dir=tmp_path_factory.mktemp("nav-runs")
        ) as srv:
            yield srv.url
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=devserver.chromium_path(), args=devserver.CHROMIUM_ARGS)
        try:
            tab = browser.new_context(viewport=devserver.VIEWPORT).new_page()
            tab.set_default_timeout(60_000)
            tab.goto(server + "/")
            devserver.wait_idle(tab, TIMEOUT_S, title=navigation.by_url_path("").heading)
            yield tab
        finally:
            browser.close()


def nav(page):
    return page.get_by_role("navigation", name="App pages")


def items(page) -> list[dict]:
    return nav(page).evaluate(_NAV_JS)


def shown(page, path: str) -> None:
    """Wait until the page at ``path`` has run and the sidebar marks it."""
    devserver.wait_idle(page, TIMEOUT_S, title=navigation.by_url_path(path).heading)
    page.wait_for_function(_CURRENT_JS, arg=navigation.by_url_path(path).title, timeout=10_000)


def assert_marked(page, path: str) -> None:
    """Only the link to ``path`` is the current page: aria-current, bold, tinted."""
    title = navigation.by_url_path(path).title
    page.mouse.move(1200, 700)  # off the sidebar: a hovered link is tinted too
    links = [i for i in items(page) if i["tag"] == "a"]
    assert [i["text"] for i in links if i["current"] == "page"] == [title]
    here = next(i for i in links if i["text"] == title)
    others = [i for i in links if i["text"] != title]
    assert here["weight"] >= 600 and all(i["weight"] < 600 for i in others), links
    assert here["bg"] not in ("rgba(0, 0, 0, 0)", "transparent"), here
    tinted = [(i["text"], i["bg"]) for i in others if i["bg"] not in ("rgba(0, 0, 0, 0)", "transparent")]
    assert not tinted, tinted


def test_one_landmark_with_every_page_under_its_heading(page, server):
    assert page.get_by_role("navigation").count() == 1
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0  # Streamlit's own menu is hidden
    want = []
    for name, entries in navigation.SECTIONS.items():
        want += [("h2", name, "")] if name else []
        want += [("a", p.title, f"{server}/{p.url_path}") for p in entries if p in PAGES]
    assert [(i["tag"], i["text"], i["href"]) for i in items(page)] == want
    assert_marked(page, "")
    page.evaluate(axe_base.AXE_FILE_PATH.read_text(encoding="utf-8"))
    result = page.evaluate("() => axe.run(document, {runOnly: {type: 'rule', values: ['list', 'listitem']}})")
    assert result["violations"] == [], result["violations"]
    assert len(result["passes"]) + len(result["inapplicable"]) == 2


def test_keyboard_opens_a_page_in_the_same_session(page, server):
    """Tab from the top of the page reaches every link in order; Enter opens one without a
    reload (a mark left on ``window`` survives); Back returns and the current-page mark follows."""
    page.evaluate("() => { window.__sameDocument = true; }")  # the page is fresh: Tab starts at the top
    reached = []
    for _ in range(len(PAGES) + 10):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED_JS)
        if focused["link"]:
            assert focused["visible"], focused
            reached.append(focused["text"])
        elif reached:
            break
    assert reached == [p.title for p in PAGES]
    target = navigation.by_url_path("c2_check_your_code")
    devserver.nav_link(page, target.url_path).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/{target.url_path}")
    shown(page, target.url_path)
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
    assert_marked(page, target.url_path)
    hrefs = [i["href"] for i in items(page) if i["tag"] == "a"]  # off Home: an href "" would be here
    assert hrefs == [f"{server}/{p.url_path}" for p in PAGES]

    devserver.nav_link(page, "b3_training_lab").click()
    page.wait_for_url(f"{server}/b3_training_lab")
    shown(page, "b3_training_lab")
    assert_marked(page, "b3_training_lab")
    page.go_back()
    page.wait_for_url(f"{server}/{target.url_path}")
    shown(page, target.url_path)
    assert_marked(page, target.url_path)
    assert page.evaluate("() => window.__sameDocument === true")
