"""Where a page's first picture lands in presenter mode (#25): shared by the browser test
(tests/system/test_presenter_layout.py) and a command for measuring while editing a page:

    python -m tests.support.first_screen [PATH ...] [--size 1280x720] [--out DIR] [--plain]

PATH is a page's url path (``a3_sampling``); none means every topic page. Each page is opened in
its own browser session at ``?presenter=true`` (``--plain``: without it), and the top and bottom
edge (px) of its first picture (image, canvas, chart or component frame in the main column) are
printed; a screenshot of the first screen goes to DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tests.support import devserver

# the pages a teacher demonstrates: every page but Home, Performance and Check your code
TOPIC_PAGES = (
    "a0_text_to_image", "a1_forward", "a2_denoising", "a3_sampling", "a4_image_to_image", "a5_illusions",
    "b1_denoiser", "b2_flow", "b3_training_lab", "b4_playground", "ab_ddpm_vs_flow", "c1_fewer_steps",
)
EXTRA_QUERY = {"b4_playground": "&b4_steps=250"}  # short training when Train is pressed

# The first picture: the visible image, canvas, Plotly chart or component iframe nearest the top
# of the main column (the left one on a tie), measured with the page scrolled to the top. Tiny
# things (icons, the presenter-keys frame of height 0) are not pictures.
FIRST_PICTURE_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const scroller = main;
  scroller.scrollTop = 0; window.scrollTo(0, 0);
  const sel = 'img, canvas, iframe, [data-testid="stPlotlyChart"]';
  let best = null;
  for (const el of main.querySelectorAll(sel)) {
    const chart = el.closest('[data-testid="stPlotlyChart"]');
    if (chart && chart !== el) continue;
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (r.width < 40 || r.height < 40 || style.visibility === 'hidden' || style.display === 'none') continue;
    if (!best || r.top < best.top - 0.5 || (Math.abs(r.top - best.top) <= 0.5 && r.left < best.left))
      best = {tag: el.tagName.toLowerCase(), top: r.top, bottom: r.bottom, left: r.left, right: r.right,
              label: el.getAttribute('alt') || el.getAttribute('title') || ''};
  }
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const side = sidebar && sidebar.getBoundingClientRect();
  return {picture: best, sidebar_open: !!side && side.width > 50 && side.right > 50,
          scroll_width: document.documentElement.scrollWidth, width: window.innerWidth,
          main_scroll_width: main.scrollWidth, main_width: main.clientWidth};
}"""


def measure(page, base: str, path: str, presenter: bool = True, timeout: float = 600) -> dict:
    """Open ``path`` in ``page`` (presenter mode unless told), wait until idle, and measure."""
    from dashboard import navigation

    query = ("?presenter=true" if presenter else "?presenter=false") + EXTRA_QUERY.get(path, "")
    page.goto(f"{base}/{path}{query}")
    heading = navigation.by_url_path(path).heading
    page.locator('[data-testid="stMain"] h1').filter(has_text=heading).first.wait_for(timeout=timeout * 1000)
    devserver.wait_idle(page, timeout)
    page.wait_for_function(  # every image decoded: an <img> has its size only then
        "() => [...document.querySelectorAll('[data-testid=\"stMain\"] img')].every(i => i.complete)",
        timeout=30_000,
    )
    page.wait_for_timeout(500)
    out = page.evaluate(FIRST_PICTURE_JS)
    out["page"] = path
    out["exception"] = page.locator('[data-testid="stException"]').count() > 0
    return out


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", default=list(TOPIC_PAGES))
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--out", default="/tmp/first_screen")
    ap.add_argument("--plain", action="store_true", help="outside presenter mode")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with devserver.serve(None, out / "server.log") as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=devserver.chromium_path(), args=devserver.CHROMIUM_ARGS)
        for path in args.paths:
            t0 = time.monotonic()
            tab = browser.new_context(viewport={"width": w, "height": h}).new_page()
            tab.set_default_timeout(120_000)
            row = measure(tab, srv.url, path, presenter=not args.plain)
            tab.screenshot(path=str(out / f"{path}_{w}x{h}{'_plain' if args.plain else ''}.png"))
            tab.context.close()
            pic = row["picture"] or {}
            nan = float("nan")
            print(f"{path:20s} top {pic.get('top', nan):7.1f} bottom {pic.get('bottom', nan):7.1f}"
                  f" {pic.get('tag', '-'):7s} sidebar_open {row['sidebar_open']}"
                  f" scroll_w {row['scroll_width']} ({time.monotonic() - t0:.0f} s)"
                  f" {pic.get('label', '')[:60]!r}", flush=True)
            rows.append(row)
        browser.close()
    (out / f"first_screen_{w}x{h}.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
