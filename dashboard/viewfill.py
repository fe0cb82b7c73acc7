"""The view cache's background fill: ``python -m dashboard.viewfill [--pages FILE ...]``.

Started by the app at start-up (``viewcache.start_fill``), niced, in its own process: it opens the
app, then every page in turn (Streamlit's AppTest, as a browser's first view would), so that each
page's default view lands in the view cache (``dashboard.viewcache``) and no visitor waits for
it. Entries made by other code are removed first. Holds ``.fill.lock`` in the folder (a second
fill, from a replica, exits at once) and writes ``fill.json``: state, seconds, per-page errors
and the stamps it filled for.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

from dashboard import navigation, viewcache
from engine.checkpoints import FolderBusy, atomic_write_text, exclusive_folder

APP = navigation.PAGES_DIR.parent / "dashboard" / "app.py"
PAGE_TIMEOUT = 600


def _report(folder, **state) -> None:
    atomic_write_text(folder / viewcache.FILL_STATE, json.dumps(state, indent=1))


def fill(pages: list[navigation.Page]) -> dict:
    """Open ``pages`` through the app once each; the report written to ``fill.json``."""
    from streamlit.testing.v1 import AppTest

    folder = viewcache.app_folder()
    viewcache.drop_other_code()
    t0, c0 = time.perf_counter(), time.process_time()
    _report(folder, state="running", started=time.time(), pid=os.getpid())
    at = AppTest.from_file(str(APP), default_timeout=PAGE_TIMEOUT).run()
    seconds, errors = {}, {}
    for page in pages:
        p0 = time.perf_counter()
        at.switch_page(f"../pages/{page.file}").run()
        seconds[page.file] = round(time.perf_counter() - p0, 2)
        if at.exception:
            errors[page.file] = str(at.exception[0].value)[:300]
    state = dict(state="done", seconds=round(time.perf_counter() - t0, 1),
                 cpu_seconds=round(time.process_time() - c0, 1), pages=seconds, errors=errors,
                 stored=viewcache.STATS["stored"], entries=len(list(folder.glob("*.safetensors"))),
                 stamps=viewcache.current_stamps(), finished=time.time())
    _report(folder, **state)
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.viewfill", description=__doc__.split("\n")[0])
    parser.add_argument("--pages", nargs="*", help="page files (default: every page)")
    args = parser.parse_args(argv)
    pages = [p for p in navigation.present_pages() if not args.pages or p.file in args.pages]
    logging.disable(logging.WARNING)  # AppTest's "no runtime" warnings, once per cached function
    os.nice(10)  # the server's visitors come first
    try:
        with exclusive_folder(viewcache.app_folder(), ".fill.lock"):
            state = fill(pages)
    except FolderBusy:
        print("another fill is running; leaving it to that one")
        return 0
    print(json.dumps({k: state[k] for k in ("seconds", "cpu_seconds", "stored", "entries", "errors")}))
    return 1 if state["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
