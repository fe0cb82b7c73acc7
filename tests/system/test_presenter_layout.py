"""Presenter mode on a projector (#25), in headless Chromium: the picture first.

- every topic page at 1280x720 in presenter mode: the first picture (image, canvas, chart or
  component; ``tests.support.first_screen``) starts in the top half of the screen (<= 360 px) and
  its bottom edge is on the first screen; the same page at 1024x768 and 1920x1080 has no
  sideways scroll; a screenshot of each first screen is kept in ``artifacts/presenter/``;
- the sidebar starts collapsed in presenter mode, and its ">" button (by keyboard) opens it;
- after a control changes (the Sampling page's γ, by keyboard), the picture is where it was;
- the Training lab counts once a run exists: its loss curve or live samples then lead.

Outside presenter mode the reading order (explanation first) is tested under AppTest in
tests/pages/test_presenter_order.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import devserver
from tests.support.first_screen import TOPIC_PAGES, measure

pytestmark = pytest.mark.browser
pytest.importorskip("playwright.sync_api", reason="the browser tests need python playwright")

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "presenter"
TIMEOUT_S = 600.0
TOP_HALF = devserver.VIEWPORT["height"] // 2  # 360 px
OTHER_SIZES = ({"width": 1024, "height": 768}, {"width": 1920, "height": 1080})
RESULTS: list[dict] = []

if devserver.chromium_path() is None:
    pytest.skip(
        "chromium not found (bash scripts/setup.sh --test installs Debian's chromium)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(page_models, tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with devserver.serve(
            page_models, SHOTS / "server.log", runs_dir=tmp_path_factory.mktemp("presenter-runs")
        ) as srv:
            yield srv.url
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture
def tab(browser):
    context = browser.new_context(viewport=devserver.VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        yield page
    finally:
        context.close()


def check_first_screen(tab, server: str, path: str) -> list[str]:
    """Measure ``path`` at 1280x720 (screenshot kept), then at the other sizes; the problems."""
    row = measure(tab, server, path, timeout=TIMEOUT_S)
    tab.screenshot(path=str(SHOTS / f"{path}_1280x720.png"))
    pic = row["picture"]
    problems = []
    if row["exception"]:
        problems.append("an exception box")
    if pic is None:
        problems.append("no picture on the page")
    else:
        if pic["top"] > TOP_HALF:
            problems.append(f"the first picture starts at {pic['top']:.0f} px (> {TOP_HALF})")
        if pic["bottom"] > devserver.VIEWPORT["height"] + 0.5:
            problems.append(f"the first picture ends at {pic['bottom']:.0f} px, below the first screen")
    if row["sidebar_open"]:
        problems.append("the sidebar is open")
    sizes = {}
    for size in OTHER_SIZES:
        tab.set_viewport_size(size)
        tab.wait_for_timeout(600)
        sizes[f"{size['width']}x{size['height']}"] = tab.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth,"
            " document.querySelector('[data-testid=\"stMain\"]').scrollWidth,"
            " document.querySelector('[data-testid=\"stMain\"]').clientWidth]"
        )
        tab.screenshot(path=str(SHOTS / f"{path}_{size['width']}x{size['height']}.png"))
    tab.set_viewport_size(devserver.VIEWPORT)
    for name, (doc_w, win_w, main_w, main_client) in sizes.items():
        if doc_w > win_w + 1 or main_w > main_client + 1:
            problems.append(f"sideways scroll at {name}: page {doc_w}/{win_w}, main {main_w}/{main_client}")
    RESULTS.append({"page": path, "picture": pic, "other_sizes": sizes})
    (SHOTS / "first_screen.json").write_text(json.dumps(RESULTS, indent=1))
    return problems


@pytest.mark.parametrize("path", [p for p in TOPIC_PAGES if p != "b3_training_lab"])
def test_picture_first(server, tab, path):
    problems = check_first_screen(tab, server, path)
    assert not problems, f"{path}: {problems}"


def test_sidebar_way_back(server, tab):
    """Collapsed in presenter mode, with Streamlit's own ">" button to open it: by keyboard."""
    measure(tab, server, "a1_forward", timeout=TIMEOUT_S)
    button = tab.get_by_test_id("stExpandSidebarButton")
    if not button.count():
        button = tab.locator('[data-testid="stSidebarCollapsedControl"] button')
    assert button.first.is_visible(), "no visible control opens the collapsed sidebar"
    button.first.focus()
    tab.keyboard.press("Enter")
    tab.wait_for_function(devserver.SIDEBAR_OPEN_JS, timeout=10_000)
    assert tab.get_by_role("navigation", name="App pages").is_visible()
    seed = tab.locator('[data-testid="stSidebar"]').get_by_label("Seed", exact=True)
    seed.fill("3")
    seed.press("Enter")  # a rerun with presenter mode still on: the opened sidebar stays open
    devserver.wait_idle(tab, TIMEOUT_S)
    assert tab.evaluate(devserver.SIDEBAR_OPEN_JS), "a rerun collapsed the sidebar the teacher opened"


def picture_top(tab) -> float:
    return tab.evaluate(
        "() => { const i = document.querySelector('.st-key-lead_figure img');"
        " return i ? i.getBoundingClientRect().top : null; }"
    )


def test_picture_stays_after_a_change(server, tab):
    """γ moved by keyboard on the Sampling page: new samples, in the same place, no scrolling."""
    measure(tab, server, "a3_sampling", timeout=TIMEOUT_S)
    before_top = picture_top(tab)
    before_src = tab.locator(".st-key-lead_figure img").first.get_attribute("src")
    tab.get_by_role("slider", name="CFG scale γ").focus()
    tab.keyboard.press("ArrowLeft")
    devserver.wait_idle(tab, TIMEOUT_S)
    tab.wait_for_function(
        "src => { const i = document.querySelector('.st-key-lead_figure img');"
        " return i && i.complete && i.getAttribute('src') !== src; }",
        arg=before_src,
        timeout=60_000,
    )
    scrolled = tab.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTop")
    assert scrolled == 0
    assert picture_top(tab) == pytest.approx(before_top, abs=2)


def test_training_lab_once_a_run_exists(server, tab):
    """Exempt until a run exists; then the run's loss curve or live samples lead."""
    tab.goto(f"{server}/b3_training_lab?presenter=true")
    devserver.wait_idle(tab, TIMEOUT_S, title="Training lab")
    curve = tab.locator(".st-key-lead_figure [data-testid='stPlotlyChart']")
    assert curve.count() == 0  # no run yet: nothing claims the lead
    tab.get_by_label("Model", exact=True).click()
    tab.get_by_role("option", name="denoiser: single-step denoiser").first.click()
    devserver.wait_idle(tab, TIMEOUT_S)
    for label, value in (("Epochs", "1"), ("Training images (0 = all 60 000)", "256")):
        box = tab.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Tab")
    tab.get_by_role("button", name="Start training").press("Enter")  # a short denoiser run
    curve.first.wait_for(timeout=300_000)
    devserver.wait_idle(tab, TIMEOUT_S)
    problems = check_first_screen(tab, server, "b3_training_lab")
    assert not problems, f"b3_training_lab: {problems}"
