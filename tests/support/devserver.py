"""Run the dashboard on loopback and drive it with headless Chromium: shared by the browser tests
and the browser benchmark (``python -m tests.support.browser_bench``).

Test tooling, kept out of the product packages (the wheel carries no browser code). Playwright is
imported by the callers, so this module loads without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/support/ -> .
VIEWPORT = {"width": 1280, "height": 720}  # a classroom projector
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # the server is on loopback; ignore any http_proxy in the environment
]


def chromium_path() -> str | None:
    """Debian's chromium (``scripts/setup.sh --test`` installs it), or ``$DIFFLAB_CHROMIUM``."""
    for cand in (os.environ.get("DIFFLAB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and Path(cand).exists():
            return cand
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str, timeout: float = 5) -> bool:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with direct.open(url + "/_stcore/health", timeout=timeout) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except OSError:
        return False


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log_path: Path
    healthy_after_s: float  # from Popen to the first "ok" on /_stcore/health


@contextmanager
def serve(
    models_dir: Path | None,
    log_path: Path,
    runs_dir: Path | None = None,
    timeout: float = 120,
    extra_args: tuple[str, ...] = (),
    plain: bool = False,
) -> Iterator[Server]:
    """``streamlit run dashboard/app.py`` on a free 127.0.0.1 port, healthy before it yields;
    always stopped afterwards (terminate, then kill). ``models_dir``/``runs_dir`` become
    ``DIFFLAB_MODELS_DIR``/``DIFFLAB_RUNS_DIR``; None keeps the repo's ``cache/``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DIFFLAB_MODELS_DIR", None)
    env.pop("DIFFLAB_RUNS_DIR", None)
    if models_dir is not None:
        env["DIFFLAB_MODELS_DIR"] = str(models_dir)
    if runs_dir is not None:
        env["DIFFLAB_RUNS_DIR"] = str(runs_dir)
    # plain: the `streamlit` command itself, as most users and Docker recipes run it (it puts only
    # dashboard/ on sys.path, unlike `python -m streamlit`, which adds the working directory)
    plain_cmd = [str(Path(sys.executable).with_name("streamlit"))]
    # otherwise what scripts/app.sh runs: the same, with the pages' modules imported at start-up
    launcher = [*plain_cmd, "run", "dashboard/app.py"] if plain else [sys.executable, "-m", "dashboard.serve"]
    cmd = [*launcher, "--server.address", "127.0.0.1"]
    cmd += ["--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    cmd += list(extra_args)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not healthy(url):
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit not healthy after {timeout:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.1)
        yield Server(proc, url, log_path, time.perf_counter() - t0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


SIDEBAR_OPEN_JS = """() => { const s = document.querySelector('[data-testid="stSidebar"]');
  const r = s && s.getBoundingClientRect(); return !!r && r.width > 50 && r.right > 50; }"""


def open_sidebar(page) -> None:
    """Open the sidebar the way a user does, with its ">>" button, if presenter mode collapsed it."""
    if page.evaluate(SIDEBAR_OPEN_JS):
        return
    button = page.get_by_test_id("stExpandSidebarButton")
    if button.count():
        button.first.click()
        page.wait_for_function(SIDEBAR_OPEN_JS, timeout=10_000)
        page.wait_for_timeout(300)  # the slide-in transition


def nav_link(page, path: str):
    """The sidebar's link to the page served at ``path`` ("" for the default page), found the way
    a screen reader finds it: the link named after the page inside the "App pages" navigation
    landmark (``dashboard/app.py``: ``sidebar_nav``). A Playwright locator. The sidebar is opened
    first if presenter mode collapsed it."""
    from dashboard import navigation

    open_sidebar(page)
    title = navigation.by_url_path(path).title
    return page.get_by_role("navigation", name="App pages").get_by_role("link", name=title, exact=True)


STATE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return {
    script: app && app.getAttribute('data-test-script-state'),
    conn: app && app.getAttribute('data-test-connection-state'),
    busy: document.querySelectorAll(
      '[data-testid="stSpinner"], [data-testid="stSkeleton"], [data-testid="stStatusWidgetRunningIcon"]'
    ).length,
  };
}"""


def full_screenshot(page, path: Path, settle_ms: int = 600) -> Path:
    """A screenshot of the whole page. Streamlit scrolls inside its main container, so the window
    is made as tall as the content (and the sidebar; the width stays the projector's 1280, so
    the layout is unchanged), then restored."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate(
        """() => Math.max(
             document.querySelector('[data-testid="stMainBlockContainer"]')?.scrollHeight || 0,
             document.querySelector('[data-testid="stSidebarContent"]')?.scrollHeight || 0)"""
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], int(height) + 120)})
    try:
        page.wait_for_timeout(settle_ms)  # charts re-layout to the new window size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)
    return path


def wait_idle(page, timeout: float = 300.0, settle: float = 1.25, title: str | None = None) -> float:
    """Wait until the script has finished (``notRunning``, connected, no spinner, skeleton or
    running man) and stays so for ``settle`` seconds: a rerun can start just after a quiet moment.
    With ``title``, the page's h1 must also contain it. Returns the seconds until the quiet moment
    began."""
    t0 = time.monotonic()
    quiet_since = None
    state = None
    while True:
        state = page.evaluate(STATE_JS)
        now = time.monotonic()
        ok = state["script"] == "notRunning" and state["conn"] == "CONNECTED" and not state["busy"]
        if ok and title is not None:
            ok = page.locator('[data-testid="stMain"] h1').filter(has_text=title).count() > 0
        if ok:
            quiet_since = quiet_since or now
            if now - quiet_since >= settle:
                return quiet_since - t0
        else:
            quiet_since = None
        if now - t0 > timeout:
            raise AssertionError(f"page still busy after {timeout:.0f} s: {state} at {page.url}")
        time.sleep(0.1)


# ----------------------------------------------------------------------------- the Forward scrubber

INSTRUMENT_JS = """() => {
  // key press -> x_t drawn (the component's input handler has run: putImageData done) and
  // -> the next animation frame (the update can be on screen). Listeners registered after the
  // component's, so 'input' here runs after its draw().
  const s = document.getElementById('t');
  window.__lat = []; let key = null;
  s.addEventListener('keydown', () => { key = performance.now(); }, {capture: true});
  s.addEventListener('input', () => {
    if (key === null) return;
    const k = key; key = null; const drawn = performance.now();
    requestAnimationFrame(() => {
      const frame = performance.now();
      window.__lat.push({drawn: drawn - k, frame: frame - k, t: +s.value,
                         shown: document.getElementById('tv').textContent});
    });
  });
  return +s.value;
}"""

_SERVER_IMG_CHANGED_JS = """old => {
  for (const col of document.querySelectorAll('[data-testid="stColumn"]')) {
    if (!col.innerText.includes('x_t at t =')) continue;
    const img = col.querySelector('img');
    if (img && img.getAttribute('src') !== old) return performance.now();
  }
  return false;
}"""


def scrubber_frame(page):
    """The Forward page's scrubber: (iframe handle, frame) holding ``input#t`` and ``canvas#xt``."""
    for handle in page.locator('iframe[data-testid="stIFrame"]').element_handles():
        frame = handle.content_frame()
        if (
            frame is not None
            and frame.locator("input#t[type=range]").count()
            and frame.locator("canvas#xt").count()
        ):
            return handle, frame
    raise AssertionError("no scrubber iframe (input#t + canvas#xt) on the Forward page")


def xt_image_src(page) -> str | None:
    """src of the server-rendered x_t image (the column captioned "x_t at t = ...")."""
    return page.evaluate(
        """() => {
          for (const col of document.querySelectorAll('[data-testid="stColumn"]')) {
            if (!col.innerText.includes('x_t at t =')) continue;
            const img = col.querySelector('img');
            if (img) return img.getAttribute('src');
          }
          return null;
        }"""
    )


def scrub_records(page, presses: int) -> list[dict]:
    """Press ArrowRight ``presses`` times on the in-browser scrubber (the Forward page must be
    open); one record per press: ``drawn``/``frame`` ms after the key, ``t``, ``shown``."""
    handle, frame = scrubber_frame(page)
    handle.scroll_into_view_if_needed()  # off-screen frames get throttled animation frames
    frame.evaluate(INSTRUMENT_JS)
    frame.locator("input#t").focus()
    for i in range(presses):
        page.keyboard.press("ArrowRight")
        frame.wait_for_function(f"() => window.__lat.length >= {i + 1}", timeout=10_000)
    return frame.evaluate("() => window.__lat")


def server_slider_ms(page, presses: int, settle=None) -> list[float]:
    """The reference: the Forward page's server-side t slider (key press -> script rerun -> the
    x_t ``<img>`` gets a new src). ms per press; ``settle(page)`` runs after each."""
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="t").locator("input[type=range]").first
    slider.scroll_into_view_if_needed()
    page.evaluate(
        "() => { window.__srvKey = null; document.addEventListener('keydown', "
        "() => { window.__srvKey = performance.now(); }, {capture: true}); }"
    )
    out = []
    for _ in range(presses):
        old = xt_image_src(page)
        if not old:
            raise AssertionError("no server-side x_t image on the Forward page")
        value = int(slider.get_attribute("value"))
        slider.focus()
        page.keyboard.press("ArrowRight")
        changed = page.wait_for_function(_SERVER_IMG_CHANGED_JS, arg=old, timeout=60_000)
        out.append(changed.json_value() - page.evaluate("() => window.__srvKey"))
        wait_idle(page, settle=0.5)
        if settle is not None:
            settle(page)
        if int(slider.get_attribute("value")) != value + 1:
            raise AssertionError("the server slider did not move by one step")
    return out
