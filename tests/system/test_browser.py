"""The dashboard in a real browser: a local ``streamlit run dashboard/app.py`` driven by headless
Debian Chromium through Playwright, at the projector's 1280x720.

- every page of the navigation runs to completion without an exception box or a traceback, and
  leaves a full-page screenshot in ``artifacts/screenshots/<page>.png``;
- presenter mode (sidebar toggle) keeps pages working and enlarges the scrubber;
- the Forward page's in-browser scrubber: key press -> x_t redrawn, p50/p95 printed and written to
  ``artifacts/scrub_latency.json`` next to the server-side t slider as the reference (timings are
  reported, never asserted);
- uploads through the browser: bad files give a clear message, a good PNG gives a picture.

Models: conftest's ``page_models`` (the shipped ``cache/models/<name>`` where trained, else a tiny
one trained here); ``DIFFLAB_MODELS_DIR`` points the server at the mix. Training runs
go to an empty temporary ``DIFFLAB_RUNS_DIR``. Chromium comes from Debian (``scripts/setup.sh
--test``); without it the module is skipped. Nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from dashboard import navigation
from tests.support import devserver
from tests.support.devserver import scrubber_frame, xt_image_src

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need python playwright")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SHOTS = ARTIFACTS / "screenshots"
VIEWPORT = devserver.VIEWPORT


# url path -> the page's heading (its st.title), every page in this copy in sidebar order; the
# default page's path is "" (test_navigation_lists_every_page checks the running app agrees)
PAGES = {p.url_path: p.heading for p in navigation.present_pages()}
PAGE_TIMEOUT = 300.0  # s: a first visit trains nothing but may sample a whole trajectory on a busy CPU
SCRUB_PRESSES = 60
SERVER_PRESSES = 8
TIMINGS: dict[str, float] = {}


if devserver.chromium_path() is None:
    pytest.skip(
        "chromium not found (bash scripts/setup.sh --test installs Debian's chromium)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(page_models, tmp_path_factory):
    """``streamlit run dashboard/app.py`` on a free loopback port; always stopped afterwards."""
    runs = tmp_path_factory.mktemp("browser-runs")
    try:
        with devserver.serve(page_models, ARTIFACTS / "browser_server.log", runs_dir=runs) as srv:
            yield srv.url
    except RuntimeError as e:  # did not start: say why, with the server's log
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def browser_page(server):
    """One browser tab (one Streamlit session) shared by the tests below, in file order."""
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=devserver.chromium_path(), args=devserver.CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.goto(server + "/")
            wait_idle(page)
            yield page
        finally:
            browser.close()
    if errors:
        print("\n[browser] JavaScript errors:\n  " + "\n  ".join(errors[:20]))


# ----------------------------------------------------------------------------- helpers

def wait_idle(page, timeout: float = PAGE_TIMEOUT, settle: float = 1.25) -> float:
    return devserver.wait_idle(page, timeout, settle)


def assert_page_ok(page, where: str) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"{where}: exception box(es): {exceptions.all_inner_texts()}"
    errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    assert not [e for e in errors if "Traceback" in e], f"{where}: traceback in st.error: {errors}"
    if errors:
        print(f"\n[browser] {where}: error box(es) shown: {errors}")


def go(page, base: str, path: str) -> float:
    """Open a page through its sidebar link (same session, like a user) and wait until its title
    is shown (its script has started) and it has finished. Returns the seconds that took."""
    link = devserver.nav_link(page, path)
    t0 = time.monotonic()
    if link.count():
        link.first.click()
        page.wait_for_url(re.compile(re.escape(f"{base}/{path}") + r"(\?.*)?$"))  # settings ride in ?...
    else:
        page.goto(f"{base}/{path}")
    title = page.locator('[data-testid="stMain"] h1').filter(has_text=PAGES[path])
    title.first.wait_for(timeout=PAGE_TIMEOUT * 1000)
    wait_idle(page)
    return time.monotonic() - t0


def screenshot(page, name: str) -> Path:
    return devserver.full_screenshot(page, SHOTS / f"{name}.png")


def percentile(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(xs, dtype=np.float64), q)), 2)


def png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- tests


def test_navigation_lists_every_page(browser_page, server):
    nav = browser_page.get_by_role("navigation", name="App pages")
    hrefs = nav.locator("a").evaluate_all("els => els.map(e => e.href)")  # resolved, as a new tab opens it
    assert sorted(hrefs) == sorted(f"{server}/{p}" for p in PAGES), hrefs
    assert browser_page.locator('[data-testid="stSidebar"]').get_by_text("Presenter mode").count() == 1


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "home" for p in PAGES])
def test_page_runs_clean(browser_page, server, path):
    name = path or "home"
    seconds = go(browser_page, server, path)
    TIMINGS[name] = round(seconds, 1)
    titles = browser_page.locator('[data-testid="stMain"] h1').all_inner_texts()
    assert any(PAGES[path] in t for t in titles), f"{name}: title {PAGES[path]!r} not in {titles}"
    assert_page_ok(browser_page, name)
    screenshot(browser_page, name)
    print(f"\n[browser] {name}: ready in {seconds:.1f} s")


def _presenter_toggle(page):
    boxes = page.locator('[data-testid="stSidebar"] [data-testid="stCheckbox"]')
    return boxes.filter(has_text="Presenter mode")


def _presenter(page, on: bool) -> None:
    devserver.open_sidebar(page)  # presenter mode starts it collapsed
    toggle = _presenter_toggle(page)
    box = toggle.locator("input[type=checkbox]")
    if box.is_checked() != on:
        toggle.locator("label").first.click()
        page.wait_for_timeout(300)
        wait_idle(page)
    assert box.is_checked() == on


_BODY_FONT_JS = """() => {
  const p = document.querySelector('[data-testid="stMain"] [data-testid="stMarkdown"] p');
  return p ? parseFloat(getComputedStyle(p).fontSize) : 0;
}"""


def _scrubber_css_width(page) -> float:
    _, frame = scrubber_frame(page)
    return frame.evaluate("() => document.getElementById('xt').getBoundingClientRect().width")


def test_presenter_mode(browser_page, server):
    page = browser_page
    go(page, server, "a1_forward")
    normal, font = _scrubber_css_width(page), page.evaluate(_BODY_FONT_JS)
    try:
        _presenter(page, True)
        assert_page_ok(page, "a1_forward (presenter)")
        deadline = time.monotonic() + 30  # the scrubber's iframe is rebuilt by the rerun
        while _scrubber_css_width(page) <= normal and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert _scrubber_css_width(page) > normal, "presenter mode should enlarge the scrubber"
        big_font = page.evaluate(_BODY_FONT_JS)
        print(f"\n[browser] body text {font:g}px, presenter mode {big_font:g}px")
        assert big_font > font, f"presenter mode kept body text at {font:g}px -> {big_font:g}px"
        screenshot(page, "a1_forward_presenter")
        go(page, server, "a3_sampling")  # the setting follows the class across pages
        assert _presenter_toggle(page).locator("input[type=checkbox]").is_checked()
        assert_page_ok(page, "a3_sampling (presenter)")
        screenshot(page, "a3_sampling_presenter")
    finally:
        _presenter(page, False)
    assert_page_ok(page, "a3_sampling (presenter off)")


_CANVAS_SUM_JS = """() => {
  const c = document.getElementById('xt');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) >>> 0; return h;
}"""


def test_forward_scrub_latency(browser_page, server):
    """Timings are reported, never asserted: the build must not depend on this machine's load."""
    page = browser_page
    go(page, server, "a1_forward")
    _, frame = scrubber_frame(page)
    start = int(frame.evaluate("() => +document.getElementById('t').value"))
    before = frame.evaluate(_CANVAS_SUM_JS)
    records = devserver.scrub_records(page, SCRUB_PRESSES)
    assert [r["t"] for r in records] == list(range(start + 1, start + SCRUB_PRESSES + 1))
    assert records[-1]["shown"] == str(start + SCRUB_PRESSES)
    assert frame.evaluate(_CANVAS_SUM_JS) != before, "x_t canvas did not change while scrubbing"
    assert_page_ok(page, "a1_forward (scrubbed)")  # no rerun, nothing broken
    drawn = [r["drawn"] for r in records]
    shown = [r["frame"] for r in records]

    # Reference: the server-side t slider (key press -> rerun -> the x_t <img> gets a new src).
    server_ms = devserver.server_slider_ms(
        page, SERVER_PRESSES, settle=lambda p: assert_page_ok(p, "a1_forward (server slider)")
    )

    result = {
        "machine": f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "scrubber": {
            "presses": len(records),
            "key_to_drawn_ms": {"p50": percentile(drawn, 50), "p95": percentile(drawn, 95)},
            "key_to_next_frame_ms": {"p50": percentile(shown, 50), "p95": percentile(shown, 95)},
        },
        "server_slider": {
            "presses": len(server_ms),
            "key_to_new_image_ms": {
                "p50": percentile(server_ms, 50),
                "p95": percentile(server_ms, 95),
                "max": round(max(server_ms), 2),
            },
        },
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "scrub_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    sc, sv = result["scrubber"], result["server_slider"]["key_to_new_image_ms"]
    print(
        f"\n[browser] scrubber, {len(records)} key presses: key->drawn p50 "
        f"{sc['key_to_drawn_ms']['p50']:.1f} ms p95 {sc['key_to_drawn_ms']['p95']:.1f} ms; "
        f"key->next frame p50 {sc['key_to_next_frame_ms']['p50']:.1f} ms "
        f"p95 {sc['key_to_next_frame_ms']['p95']:.1f} ms"
        f"\n[browser] server slider (reference), {len(server_ms)} presses: key->new image "
        f"p50 {sv['p50']:.0f} ms p95 {sv['p95']:.0f} ms max {sv['max']:.0f} ms"
    )


def _upload(page, name: str, data: bytes, mime: str = "image/png") -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )
    page.locator('[data-testid="stFileUploader"]').get_by_text(name).first.wait_for()
    page.wait_for_timeout(300)
    wait_idle(page)


def test_forward_upload(browser_page, server):
    page = browser_page
    go(page, server, "a1_forward")
    page.locator('[data-testid="stButtonGroup"] button').filter(has_text="Upload").click()
    page.locator('[data-testid="stFileUploader"]').wait_for(timeout=PAGE_TIMEOUT * 1000)
    wait_idle(page)
    assert page.locator('[data-testid="stFileUploader"]').count() == 1
    assert_page_ok(page, "a1_forward (upload chosen)")

    rng = np.random.default_rng(0)
    good = png_bytes(
        np.stack(
            [*np.meshgrid(np.linspace(0, 255, 96), np.linspace(255, 0, 80)), np.full((80, 96), 99.0)], -1
        ).astype(np.uint8)
    )
    noisy = png_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    bad = {
        "empty.png": b"",
        "notes.png": b"these are lecture notes, not a picture\n" * 20,
        "truncated.png": noisy[: len(noisy) // 2],
    }
    for name, data in bad.items():
        _upload(page, name, data)
        assert_page_ok(page, f"upload {name}")
        errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
        assert any("Could not use this file" in e for e in errors), f"{name}: no clear message, got {errors}"
        scrubbers = page.locator('[data-testid="stMain"] iframe[data-testid="stIFrame"]')
        assert scrubbers.count() == 0, f"{name}: page went on"
    screenshot(page, "a1_forward_upload_bad")

    _upload(page, "gradient.png", good)
    assert_page_ok(page, "upload gradient.png")
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    handle, frame = scrubber_frame(page)
    size = frame.evaluate("() => { const c = document.getElementById('xt'); return [c.width, c.height]; }")
    assert size == [64, 64], f"the upload should be shown at 64x64, got {size}"
    assert xt_image_src(page), "no x_t image for the uploaded picture"
    screenshot(page, "a1_forward_upload_good")

    # and the page keeps working: the server slider still recomputes x_t from the upload
    old = xt_image_src(page)
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="t").locator("input[type=range]").first
    slider.focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        """old => [...document.querySelectorAll('[data-testid="stColumn"]')].some(c =>
             c.innerText.includes('x_t at t =') && c.querySelector('img')
             && c.querySelector('img').getAttribute('src') !== old)""",
        arg=old,
        timeout=60_000,
    )
    wait_idle(page)
    assert_page_ok(page, "upload, then slider")


def _stroke(page, canvas, points) -> None:
    """Drag the mouse through ``points`` (fractions of the canvas) with the button held."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for a, b in zip(xy, xy[1:], strict=False):
        for k in range(1, 9):  # intermediate moves, as a hand makes them
            page.mouse.move(a[0] + (b[0] - a[0]) * k / 8, a[1] + (b[1] - a[1]) * k / 8)
    page.mouse.up()


def _image_srcs(page) -> list[str]:
    imgs = '[data-testid="stMain"] [data-testid="stImage"] img'
    return page.eval_on_selector_all(imgs, "els => els.map(e => e.src)")


def test_image_to_image_drawing_and_painted_mask(browser_page, server):
    """A person draws a digit on the canvas, the SDEdit row starts from it; then paints the
    region to inpaint over the picture and gets an inpainting of exactly that region."""
    page = browser_page
    go(page, server, "a4_image_to_image")
    page.locator('[data-testid="stButtonGroup"] button').filter(has_text="Drawing").click()
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=PAGE_TIMEOUT * 1000)
    wait_idle(page)
    assert page.get_by_text("Nothing drawn yet").count() == 1  # the default 7 until one draws
    before = _image_srcs(page)
    _stroke(page, canvas, [(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)])  # a 7
    page.get_by_text("Nothing drawn yet").wait_for(state="detached", timeout=PAGE_TIMEOUT * 1000)
    wait_idle(page)
    assert_page_ok(page, "a4 after drawing")
    assert _image_srcs(page) != before, "the SDEdit row did not change after drawing"
    screenshot(page, "a4_image_to_image_drawn")

    page.locator('[data-testid="stButtonGroup"] button').filter(has_text="Inpainting").click()
    wait_idle(page)
    page.locator('[data-testid="stButtonGroup"] button').filter(has_text="Paint it").click()
    page.get_by_text("Nothing painted yet").wait_for(timeout=PAGE_TIMEOUT * 1000)
    wait_idle(page)
    mask_canvas = page.locator("canvas.upper-canvas").last
    _stroke(page, mask_canvas, [(0.1, 0.75), (0.9, 0.75)])  # the bottom of the digit
    page.get_by_text("Nothing painted yet").wait_for(state="detached", timeout=PAGE_TIMEOUT * 1000)
    wait_idle(page)
    assert_page_ok(page, "a4 after painting a mask")
    assert page.get_by_text("stride", exact=False).count() >= 1  # the inpainting's caption
    screenshot(page, "a4_image_to_image_painted_mask")


def test_report_timings():
    """Prints the page load times collected above (always passes)."""
    if TIMINGS:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "page_timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
        print("\n[browser] seconds until each page was ready: " + json.dumps(TIMINGS))


def test_dashboard_bench_quick_writes_the_report(page_models, tmp_path):
    """``python -m tests.support.browser_bench --quick`` (its own server and browser) writes the
    documented JSON. Timings are never asserted."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "dashboard.json"
    cmd = [sys.executable, "-m", "tests.support.browser_bench", "--quick", "--out", str(out)]
    cmd += ["--models-dir", str(page_models)]
    # its own process group: on a timeout the bench, its server and its browser all go
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    names = [r["name"] for r in report["results"]]
    for part in ("cold start", "server RSS", "per extra browser session", "Forward scrub p95"):
        assert any(part in n for n in names), f"{part!r} missing from {names}"
    for r in report["results"]:
        assert set(r) == {"name", "unit", "ours", "reference", "ratio", "target"}
        assert np.isfinite(r["ours"]) and (r["reference"] is None) == (r["ratio"] is None)
    print("\n" + stdout)
