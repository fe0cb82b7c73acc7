"""Issue 20, item 3: every page by keyboard alone, with focus always visible (WCAG 2.1.1, 2.4.7).

For every page, in headless Chromium at the projector's 1280x720, the light theme:

- **Focus visible.** From the top of the page, Tab through the first ``STOPS`` stops (the
  sidebar, checked once, on Home; then the page). At each stop the focused element's box (plus a
  margin for its ring) is photographed focused and again blurred: a stop "shows focus" when
  enough pixels change. At least 95 % of the stops must (iframes are entered and counted by the
  component tests in test_accessibility.py). Per-page counts go to ``artifacts/keyboard_report.json``.
- **The main control.** Tab on until the page's main control (``MAIN``) has focus: it must be
  reachable by Tab alone, in order, before ``MAX_TABS`` presses. Then operate it with the key a
  user would (arrows for a slider, radio or number, Enter for a link or button) and see it act:
  the control's value changes, a file downloads, or the page it links to opens; no exception.
  (Performance's button starts a minute-long benchmark: it is reached, not pressed.)
- **Names.** Chromium's accessibility tree (all frames, through CDP) has no image, chart, control
  or frame without a meaningful name: not empty, not a number, not a file name.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from dashboard import navigation
from tests.support import devserver

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need python playwright")
Image = pytest.importorskip("PIL.Image")

if devserver.chromium_path() is None:
    pytest.skip("chromium not found (bash scripts/setup.sh --test installs Debian's chromium)",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "artifacts" / "keyboard_report.json"
TIMEOUT_S = 300.0
STOPS = 40  # Tab stops checked for a visible focus: the top of the page's (the sidebar's on Home)
MAX_TABS = 120
CHANGED_PX = 20  # pixels that must change between focused and blurred (a 3 px ring changes hundreds)
PAGES = {p.url_path: p.heading for p in navigation.present_pages()}

# page -> (the main control's accessible name, the keys that operate it, what they do)
# "value": the control's value or state changes; "download": a file downloads; "opens <path>".
# A segmented control is one Tab stop (its selected option); arrows move along it, Enter picks.
MAIN = {
    "": ("Forward process", "Enter", "opens a1_forward"),
    "performance": ("Run the quick benchmark", "", "reached"),  # a minute of CPU: reached, not run
    "a0_text_to_image": ("PNG", "Enter", "download"),
    "a1_forward": ("t", "ArrowRight", "value"),
    "a2_denoising": ("MNIST test digit (index)", "ArrowUp", "value"),
    "a3_sampling": ("CFG scale γ", "ArrowLeft", "value"),
    "a4_image_to_image": ("Stride", "ArrowRight", "value"),
    "a5_illusions": ("Images", "ArrowUp", "value"),
    "b1_denoiser": ("Test digits", "ArrowLeft", "value"),
    "b2_flow": ("CFG scale γ", "ArrowLeft", "value"),
    "b3_training_lab": ("Epochs", "ArrowUp", "value"),
    "b4_playground": ("moons", "ArrowRight Enter", "value"),
    "ab_ddpm_vs_flow": ("Samples", "ArrowUp", "value"),
    "c1_fewer_steps": ("Steps", "ArrowRight", "value"),
    "c2_check_your_code": ("Upload a .py", "ArrowRight Enter", "value"),
}

# The focused element: its accessible name as a screen reader would start it, its state, its box.
FOCUSED_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const byId = id => (document.getElementById(id) || {}).textContent || '';
  const labelled = (e.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
    .map(byId).join(' ');
  const own = e.labels && e.labels.length ? e.labels[0].innerText : '';
  const named = /^(a|button|summary)$/.test(e.tagName.toLowerCase())
    || /^(button|link|radio|tab|option|switch|checkbox|menuitem)$/.test(e.getAttribute('role') || '');
  const text = named ? (e.innerText || '').split('\\n').map(s => s.trim()).filter(Boolean) : [];
  const name = e.getAttribute('aria-label') || labelled || own || text[text.length - 1] || e.title || '';
  const r = e.getBoundingClientRect();
  const owner = e.closest('[data-testid]');
  return {tag: e.tagName.toLowerCase(), name: name.trim(), testid: owner ? owner.dataset.testid : '',
          main: !!e.closest('[data-testid="stMain"]'),
          state: [e.value, e.getAttribute('aria-valuenow'), e.getAttribute('aria-checked'), e.checked]
            .join('|'),
          box: {x: r.x, y: r.y, w: r.width, h: r.height}};
}"""


NAMED_ROLES = {"img", "image", "button", "link", "slider", "checkbox", "radio", "combobox", "textbox",
               "spinbutton", "switch", "tab", "menuitem", "listbox", "searchbox", "figure", "Iframe"}


def unnamed(page) -> list[dict]:
    """Nodes of Chromium's accessibility tree (every frame) with a role that needs a name and no
    meaningful one: empty, a file name, or (for an image, button or link) a bare number. An
    icon inside a named button or link is part of that control's name, not a thing of its own."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    by_id = {n["nodeId"]: n for n in nodes}

    def value(n, key):
        return str((n.get(key) or {}).get("value", "")).strip()

    def in_named_control(n) -> bool:
        for _ in range(4):
            n = by_id.get(n.get("parentId"))
            if n is None:
                return False
            if value(n, "role") in ("button", "link", "menuitem", "tab") and value(n, "name"):
                return True
        return False

    bad = []
    for n in nodes:
        role, name = value(n, "role"), value(n, "name")
        if n.get("ignored") or role not in NAMED_ROLES or in_named_control(n):
            continue
        number = re.fullmatch(r"[\d\s.,:%+-]*", name) and role in ("img", "image", "button", "link")
        if not name or number or re.fullmatch(r"\S+\.(png|jpe?g|gif|svg|py)", name):
            bad.append({"role": role, "name": name})
    return bad


def shot(page, box: dict) -> np.ndarray:
    pad = 8
    clip = {"x": max(box["x"] - pad, 0), "y": max(box["y"] - pad, 0),
            "width": box["w"] + 2 * pad, "height": box["h"] + 2 * pad}
    png = page.screenshot(clip=clip, animations="disabled", caret="hide")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def focus_shows(page, box: dict) -> int:
    """Pixels that change when the focused element loses focus (and it gets it back)."""
    focused = shot(page, box)
    page.evaluate("() => { window.__kb = document.activeElement; window.__kb.blur(); }")
    page.wait_for_timeout(60)
    blurred = shot(page, box)
    page.evaluate("() => window.__kb.focus({focusVisible: true})")
    if focused.shape != blurred.shape:
        return 0
    return int((np.abs(focused - blurred).sum(-1) > 60).sum())


@pytest.fixture(scope="module")
def server(page_models, tmp_path_factory):
    try:
        with devserver.serve(page_models, ROOT / "artifacts" / "keyboard_server.log",
                             runs_dir=tmp_path_factory.mktemp("kb-runs")) as srv:
            yield srv.url
    except RuntimeError as e:
        pytest.fail(str(e))


REPORTS: dict[str, dict] = {}


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "home" for p in PAGES])
def test_page_by_keyboard(server, browser, path):
    name, keys, effect = MAIN[path]
    context = browser.new_context(viewport=devserver.VIEWPORT, color_scheme="light", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{server}/{path}" + ("?b4_steps=250" if path == "b4_playground" else ""))
        page.locator('[data-testid="stMain"] h1').filter(has_text=PAGES[path]).first.wait_for(
            timeout=TIMEOUT_S * 1000)
        devserver.wait_idle(page, TIMEOUT_S)
        page.evaluate("() => { document.activeElement && document.activeElement.blur(); }")
        stops, found = [], None
        for k in range(MAX_TABS):
            page.keyboard.press("Tab")
            got = page.evaluate(FOCUSED_JS)
            if got is None:
                continue
            sidebar_seen = path != "" and not got["main"]  # the sidebar is the same on every page: once
            if k < STOPS and got["tag"] != "iframe" and got["box"]["w"] > 0 and not sidebar_seen:
                stops.append({"name": got["name"][:60], "testid": got["testid"],
                              "changed_px": focus_shows(page, got["box"])})
            if got["name"] == name and got["main"]:  # the page's control, not a sidebar link
                found = got
                break
        shown = [s for s in stops if s["changed_px"] >= CHANGED_PX]
        REPORTS[path or "home"] = {"stops": len(stops), "focus_visible": len(shown), "main": name,
                                   "tabs_to_main": k + 1 if found else None,
                                   "hidden": [s for s in stops if s["changed_px"] < CHANGED_PX]}
        REPORTS[path or "home"]["unnamed"] = nameless = unnamed(page)
        assert found is not None, f"{name!r} not reached in {MAX_TABS} Tab presses"
        assert not nameless, f"controls or images without a meaningful name: {nameless}"
        assert len(shown) >= 0.95 * len(stops), REPORTS[path or "home"]["hidden"]

        if effect == "download":
            with page.expect_download(timeout=30_000) as dl:
                page.keyboard.press(keys)
            assert dl.value.suggested_filename
        elif effect != "reached":
            for key in keys.split():
                page.keyboard.press(key)
            if effect.startswith("opens "):
                target = effect.split()[1]
                page.locator('[data-testid="stMain"] h1').filter(has_text=PAGES[target]).first.wait_for(
                    timeout=TIMEOUT_S * 1000)
            else:
                page.wait_for_timeout(300)
                after = page.evaluate(FOCUSED_JS)
                changed = after is not None and (after["state"] != found["state"] or after["name"] != name)
                if "Enter" in keys:  # another option picked, not only focused
                    changed = changed and "|true|" in after["state"]
                assert changed, f"{keys} on {name!r} changed nothing: {found['state']} -> {after}"
        # the rerun it starts is not awaited (what it computes is the page tests' business)
        page.wait_for_timeout(500)
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        context.close()


def test_write_report():
    """Per page: Tab stops checked, stops with a visible focus, presses to reach the main control."""
    if not REPORTS:
        pytest.skip("no page ran")
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(REPORTS, indent=1, ensure_ascii=False))
    total = sum(r["stops"] for r in REPORTS.values())
    shown = sum(r["focus_visible"] for r in REPORTS.values())
    print(f"\n[keyboard] focus visible on {shown} of {total} Tab stops ({100 * shown / total:.1f} %)")
    for page, r in REPORTS.items():
        print(f"  {page:20s} {r['focus_visible']}/{r['stops']}  main {r['main']!r}, {r['tabs_to_main']} Tabs")
