"""Issue 15 in a real browser (headless Debian Chromium at the projector's 1280x720), each step
with a screenshot in ``artifacts/screenshots/links_*.png``:

- a teacher's link: the "Link to this view" box holds the page's address with its settings;
  opened in a fresh browser (a new session) it shows the same pictures (Streamlit names media
  by a hash of their bytes, so equal ``src`` means equal pixels);
- the course's γ = 7 and a 4-view anagram with the new views;
- presenter keys: → / ← step the animation on screen, space plays it, Enter presses the page's
  main button (and a progress bar shows the wait);
- Part 0's grid from a precomputed pack (a tiny DeepFloyd-shaped model made here).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from tests.support import devserver

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need python playwright")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SHOTS = ARTIFACTS / "screenshots"
TIMEOUT_S = 300.0

if devserver.chromium_path() is None:
    pytest.skip("chromium not found (bash scripts/setup.sh --test installs Debian's chromium)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    """A packs folder holding "tiny": Part 0's grid (and the samples) from a tiny IF-shaped model."""
    from engine.deepfloyd import model as df
    from engine.precompute import precompute_pack
    from tests.support.tiny_if import build_tiny_if, write_embeds

    root = tmp_path_factory.mktemp("links-packs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", df.SlowOnCPUWarning)
        adapter = df.load_deepfloyd(build_tiny_if(root / "tiny-if", with_text_encoder=False), device="cpu",
                                    embeddings_dir=root / "emb")
    adapter.embeddings.import_file(write_embeds(root))
    figures = ["samples", "cfg", "part0"]
    precompute_pack(adapter, root / "packs" / "tiny", ["a high quality photo"], [0], figures, stride=100)
    return root / "packs"


@pytest.fixture(scope="module")
def server(page_models, packs, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("DIFFLAB_PACKS_DIR", str(packs))
    try:
        with devserver.serve(page_models, ARTIFACTS / "browser_links_server.log",
                             runs_dir=tmp_path_factory.mktemp("links-runs")) as srv:
            yield srv.url
    finally:
        mp.undo()


def tab(browser):
    """A fresh browser context: its own cookies, so its own Streamlit session."""
    page = browser.new_context(viewport=devserver.VIEWPORT).new_page()
    page.set_default_timeout(60_000)
    return page


def open_page(page, url: str) -> None:
    page.goto(url)
    devserver.wait_idle(page, TIMEOUT_S)
    assert page.locator('[data-testid="stException"]').count() == 0, url


def shot(page, name: str) -> None:
    devserver.full_screenshot(page, SHOTS / f"links_{name}.png")


def main_images(page) -> list[str]:
    return page.eval_on_selector_all('[data-testid="stMain"] [data-testid="stImage"] img',
                                     "els => els.map(e => e.getAttribute('src'))")


def test_a_link_opens_the_same_view_in_a_fresh_session(server, browser):
    teacher = tab(browser)
    open_page(teacher, f"{server}/a5_illusions?a5_views=3&a5_stride=100&a5_count=1")
    teacher.get_by_text("Link to this view").first.click()
    code = teacher.locator('[data-testid="stPopoverBody"] [data-testid="stCode"]').first
    code.wait_for()
    link = code.inner_text().strip()
    shot(teacher, "popover")
    assert link.startswith(f"{server}/a5_illusions?") and "a5_views=3" in link and "a5_stride=100" in link
    teacher.keyboard.press("Escape")
    before = main_images(teacher)
    student = tab(browser)
    open_page(student, link)
    shot(student, "student")
    assert before and main_images(student) == before


def test_course_gamma_and_four_view_anagram(server, browser):
    page = tab(browser)
    open_page(page, f"{server}/a5_illusions?a5_views=4&a5_stride=100&a5_count=1")
    page.get_by_text("Sampler settings").first.click()
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="CFG scale").first
    assert "7.00" in slider.inner_text()
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "turn 180°" in body and "turn 90° right" in body
    shot(page, "four_views")


def grip(page) -> int:
    return page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.sliders[0].active || 0")


def test_presenter_keys_step_play_and_run(server, browser):
    page = tab(browser)
    open_page(page, f"{server}/a5_illusions?presenter=true&a5_stride=100&a5_count=1")
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.mouse.click(640, 20)  # focus the page, not a widget
    for _ in range(3):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(300)
    assert grip(page) == 3
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(300)
    assert grip(page) == 2
    shot(page, "keys_step")
    page.keyboard.press(" ")
    deadline = time.monotonic() + 10
    while grip(page) <= 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert grip(page) > 2, "space did not play the animation"

    open_page(page, f"{server}/b2_flow?presenter=true&b2_steps=5")
    page.mouse.click(640, 20)
    page.keyboard.press("Enter")  # the page's main button: Sample
    page.get_by_text(", 5 steps, seed").first.wait_for(timeout=TIMEOUT_S * 1000)  # Enter ran Sample
    devserver.wait_idle(page, TIMEOUT_S)
    shot(page, "keys_enter")


def test_presenter_keys_are_off_outside_presenter_mode(server, browser):
    page = tab(browser)
    open_page(page, f"{server}/a5_illusions?a5_stride=100&a5_count=1")
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.mouse.click(640, 20)
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(300)
    assert grip(page) == 0


def test_part0_grid_from_a_pack(server, browser):
    page = tab(browser)
    open_page(page, f"{server}/a0_text_to_image?backend=Precomputed+pack")  # the only pack: tiny
    shot(page, "part0_pack")
    page.get_by_text("Part 0's figure").first.wait_for()
    assert page.get_by_text("Columns: 20 steps, 50 steps").count() > 0
    shot(page, "part0_pack")
