"""The dashboard's benchmark in a real browser.

Run from the checkout's root: ``python -m tests.support.browser_bench [--quick] [--out FILE]``.

Starts the app on loopback with the shipped models (or ``--models-dir``), drives headless
Chromium through Playwright, and measures what a teacher feels:

- cold start: ``streamlit run`` -> the Home page rendered in the browser (target <= 8 s);
- server memory with every built-in model loaded (each page visited once) and per extra browser
  session (targets <= 1.5 GB RSS, <= 30 MB per session);
- the Forward page's scrub: key press -> new x_t, in-browser scrubber vs the plain server-side
  Streamlit slider measured in the same run (target p95 <= 50 ms);
- capacity: server CPU-seconds per page view (psutil: the server process and its children,
  around each navigation through the sidebar, as a student clicks), cold (the first visit of
  each page on a fresh server) and warm (the same pages from a second browser session, caches
  filled), and page views per core-minute (60 / mean CPU-s per view; target warm mean <= 0.2).

Results use the engine bench's format (``name, unit, ours, reference, ratio, target``; ratio > 1
means ours is better). Nothing here is a test: timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dashboard import navigation

from . import devserver

PAGE_TIMEOUT = 300.0


def _result(name, unit, ours, reference=None, target="report", lower_is_better=False) -> dict:
    ratio = None
    if reference is not None and ours:
        ratio = reference / ours if lower_is_better else ours / reference
    return {"name": name, "unit": unit, "ours": round(float(ours), 3),
            "reference": None if reference is None else round(float(reference), 3),
            "ratio": None if ratio is None else round(ratio, 3), "target": target}


def _p(xs, q) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q))


def _open(page, url: str) -> float:
    """Open ``url`` and wait until the page has finished; seconds from the request until it went
    quiet (the settle time that confirms the quiet is not counted)."""
    t0 = time.monotonic()
    page.goto(url)
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=PAGE_TIMEOUT * 1000)
    waited_from = time.monotonic()
    return waited_from - t0 + devserver.wait_idle(page, PAGE_TIMEOUT, settle=0.75)


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the server process and its finished children."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _visit(page, base: str, path: str, title: str) -> None:
    """Open a page through its sidebar link (one session, like a student) and wait until its
    title is shown and it has finished."""
    link = devserver.nav_link(page, path)
    if link.count():
        link.first.click()
        page.wait_for_url(re.compile(re.escape(f"{base}/{path}") + r"(\?.*)?$"))  # pages keep settings in ?..
    else:
        page.goto(f"{base}/{path}")
    devserver.wait_idle(page, PAGE_TIMEOUT, settle=0.75, title=title or None)


def page_view_costs(page, base: str, pid: int, pages: list[tuple[str, str]], log=print) -> dict[str, float]:
    """Server CPU-seconds for each page view, in order (the first page by ``goto``: a new
    browser session's first request; the rest through the sidebar)."""
    costs = {}
    for i, (path, title) in enumerate(pages):
        before = cpu_seconds(pid)
        if i == 0:
            page.goto(f"{base}/{path}")
            devserver.wait_idle(page, PAGE_TIMEOUT, settle=0.75, title=title or None)
        else:
            _visit(page, base, path, title)
        costs[path or "home"] = max(cpu_seconds(pid) - before, 0.01)  # psutil counts 10 ms ticks
        log(f"  {path or 'home'}: {costs[path or 'home']:.2f} CPU-s")
    return costs


def _cold_start(page, srv, requested: float, log) -> tuple[list[dict], float, float]:
    """``streamlit run`` -> Home rendered (the clock started at ``streamlit run``: ``requested``
    seconds ago). Results, Home's server CPU-seconds and the RSS after it."""
    pid = srv.proc.pid
    cpu0 = cpu_seconds(pid)
    cold = requested + _open(page, srv.url + "/")
    home_cpu = cpu_seconds(pid) - cpu0
    log(f"cold start: healthy {srv.healthy_after_s:.1f} s, Home rendered {cold:.1f} s")
    result = _result("dashboard cold start (streamlit run -> Home rendered)", "s", cold, target="<= 8 s")
    return [result], home_cpu, _rss_mb(pid)


def _wait_for_fill(srv, folder: Path, log, timeout: float = 900) -> list[dict]:
    """Wait for the start-up fill of the view cache (dashboard/viewfill.py, a niced child of the
    server) to finish, so that the cold views below are what a visitor gets once the server has
    been up a minute; its own cost is reported."""
    if os.environ.get("DIFFLAB_VIEW_CACHE") == "off":
        log("view cache off: cold views below compute their results")
        return []
    deadline = time.monotonic() + timeout
    state = {}
    while time.monotonic() < deadline:
        try:
            state = json.loads((folder / "fill.json").read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("state") == "done":
            break
        time.sleep(1)
    time.sleep(2)  # the child exits and is reaped: its CPU lands before the views are measured
    if state.get("state") != "done":
        log(f"view cache fill did not finish in {timeout:.0f} s: cold views below include computing")
        return []
    log(f"view cache filled at start-up: {state['seconds']} s, {state['cpu_seconds']} CPU-s, "
        f"{state['entries']} entries, errors {state['errors'] or 'none'}")
    return [_result("view cache fill at start-up (background, niced): wall time", "s", state["seconds"]),
            _result("view cache fill at start-up: CPU-s of the fill process", "CPU-s", state["cpu_seconds"])]


def _page_views(browser, page, srv, quick: bool, home_cpu: float, first_rss: float, log) -> list[dict]:
    """Memory and server CPU per page view. Every page once in this session loads every built-in
    model (quick: the pages the extra sessions open later, so their one-time loads come first);
    each view's server CPU is that page's cold cost. Then a second browser session opens the
    same pages with the caches filled: the warm cost."""
    pid = srv.proc.pid
    headings = {p.url_path: p.heading for p in navigation.present_pages()}
    paths = ["a1_forward", "a3_sampling"] if quick else [p for p in headings if p]
    visits = [("", headings.get("", ""))] + [(p, headings.get(p, "")) for p in paths]
    log("cold page views (fresh server, one session):")
    cold_cpu = {"home": home_cpu, **page_view_costs(page, srv.url, pid, visits[1:], log)}
    what = "Forward + Sampling visited" if quick else "every page visited (all models loaded)"
    cold_max = max(cold_cpu.values())
    results = [_result("server CPU, the costliest first view of a page in a fresh server", "CPU-s", cold_max,
                       target="<= 2 CPU-s"),
               _result(f"server RSS, {what}", "MB", _rss_mb(pid), target="<= 1500 MB"),
               _result("server RSS after the first page (Home)", "MB", first_rss)]

    log("warm page views (a second browser session):")
    second = browser.new_page(viewport=devserver.VIEWPORT)
    second.set_default_timeout(60_000)
    warm_cpu = page_view_costs(second, srv.url, pid, visits, log)
    second.close()
    for name in cold_cpu:
        results.append(_result(f"server CPU per page view, {name}: warm (cold for reference)",
                               "CPU-s", warm_cpu[name], cold_cpu[name], lower_is_better=True))
    cold_mean = float(np.mean(list(cold_cpu.values())))
    warm_mean = float(np.mean(list(warm_cpu.values())))
    name = f"server CPU per page view, mean of {len(warm_cpu)} pages: warm (vs cold)"
    results.append(_result(name, "CPU-s", warm_mean, cold_mean, "<= 0.2 s", lower_is_better=True))
    results.append(_result("page views per core-minute, warm (cold for reference)", "views",
                           60 / max(warm_mean, 1e-6), 60 / max(cold_mean, 1e-6)))
    return results


def _extra_sessions(browser, srv, n: int) -> list[dict]:
    """Server RSS per extra browser session, each opening Home, Forward and Sampling."""
    pid = srv.proc.pid
    base_rss = _rss_mb(pid)
    others = []
    for _ in range(n):
        p = browser.new_page(viewport=devserver.VIEWPORT)
        for path in ("", "a1_forward", "a3_sampling"):
            _open(p, f"{srv.url}/{path}")
        others.append(p)
    per_session = (_rss_mb(pid) - base_rss) / n
    for p in others:
        p.close()
    return [_result(f"server RSS per extra browser session ({n} opened)", "MB", per_session,
                    target="<= 30 MB")]


def _scrub_latency(page, srv, presses: int, server_presses: int) -> list[dict]:
    """The Forward page's scrub: the in-browser scrubber vs the server-side slider."""
    _open(page, f"{srv.url}/a1_forward")
    records = devserver.scrub_records(page, presses)
    server_ms = devserver.server_slider_ms(page, server_presses)
    drawn = [r["drawn"] for r in records]
    frame = [r["frame"] for r in records]
    return [
        _result(f"Forward scrub p95, key press -> x_t drawn ({presses} presses) vs server slider "
                f"({server_presses})", "ms", _p(drawn, 95), _p(server_ms, 95), "p95 <= 50 ms",
                lower_is_better=True),
        _result("Forward scrub p95, key press -> next animation frame vs server slider's new image", "ms",
                _p(frame, 95), _p(server_ms, 95), "p95 <= 50 ms", lower_is_better=True),
        _result("Forward scrub p50, key press -> x_t drawn vs server slider", "ms",
                _p(drawn, 50), _p(server_ms, 50), "report", lower_is_better=True),
    ]


def run(quick: bool = False, models_dir: Path | None = None, log=print) -> dict:
    """Every measurement above, on one fresh server and one browser: the report ``--out`` writes."""
    from playwright.sync_api import sync_playwright

    chromium = devserver.chromium_path()
    if chromium is None:
        raise SystemExit("chromium not found: bash scripts/setup.sh --test installs Debian's chromium")
    presses, server_presses, extra_sessions = (20, 3, 2) if quick else (100, 10, 4)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=devserver.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=devserver.VIEWPORT)
            page.set_default_timeout(60_000)
            t0 = time.perf_counter()  # the browser is already up; the clock runs from `streamlit run`
            # a fresh clone's empty view cache: the server fills it in the background at start-up
            os.environ["DIFFLAB_VIEW_CACHE_DIR"] = str(Path(tmp) / "views")
            os.environ.pop("DIFFLAB_VIEW_CACHE_FILL", None)
            with devserver.serve(models_dir, Path(tmp) / "server.log", runs_dir=Path(tmp) / "runs") as srv:
                results, home_cpu, first_rss = _cold_start(page, srv, time.perf_counter() - t0, log)
                results += _wait_for_fill(srv, Path(tmp) / "views", log)
                results += _page_views(browser, page, srv, quick, home_cpu, first_rss, log)
                results += _extra_sessions(browser, srv, extra_sessions)
                results += _scrub_latency(page, srv, presses, server_presses)
        finally:
            browser.close()
    load = os.getloadavg()[0]
    return {"machine": f"{os.cpu_count()} CPUs, load average {load:.1f} at the end", "quick": quick,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}


def format_table(report: dict) -> str:
    lines = [report["machine"], f"{'item':78s} {'ours':>10s} {'reference':>10s} {'ratio':>8s}  target"]
    for r in report["results"]:
        ref = f"{r['reference']:.4g}" if r["reference"] is not None else "-"
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] is not None else "-"
        lines.append(f"{r['name'][:78]:78s} {r['ours']:10.4g} {ref:>10s} {ratio:>8s}  {r['target']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.support.browser_bench",
                                 description=__doc__.split("\n")[0].rstrip("."))
    ap.add_argument("--quick", action="store_true", help="fewer pages, presses and sessions (about a minute)")
    ap.add_argument("--out", type=Path, help="write the JSON report here")
    ap.add_argument("--models-dir", type=Path, help="models folder (default: the shipped cache/models)")
    ap.add_argument("--note", default="", help="a line kept with the report, shown on the Performance page")
    args = ap.parse_args(argv)
    try:
        report = run(args.quick, args.models_dir, log=lambda m: print(m, file=sys.stderr))
    except Exception as e:  # the server did not start, a page timed out, ...: one line, no traceback
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.note:
        report["note"] = args.note
    print(format_table(report))
    if args.out:
        from engine.checkpoints import atomic_write_text

        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
