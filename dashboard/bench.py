"""The dashboard's benchmark: ``python -m dashboard.bench [--quick] [--out FILE]``.

Starts the app on loopback with the shipped models (or ``--models-dir``), drives headless
Chromium through Playwright, and measures what a teacher feels:

- cold start: ``streamlit run`` -> the Home page rendered in the browser (target <= 8 s);
- server memory with every built-in model loaded (each page visited once) and per extra browser
  session (targets <= 1.5 GB RSS, <= 30 MB per session);
- the Forward page's scrub: key press -> new x_t, in-browser scrubber vs the plain server-side
  Streamlit slider measured in the same run (target p95 <= 50 ms).

Results use the engine bench's format (``name, unit, ours, reference, ratio, target``; ratio > 1
means ours is better). Nothing here is a test: timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import devserver

PAGE_TIMEOUT = 300.0


def page_paths() -> list[str]:
    """URL paths of the pages dashboard/app.py declares ("" is the default page)."""
    tree = ast.parse((devserver.ROOT / "dashboard" / "app.py").read_text())
    paths = []
    for n in sorted(ast.walk(tree), key=lambda n: getattr(n, "lineno", 0)):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "page" and n.args
                and isinstance(n.args[0], ast.Constant) and str(n.args[0].value).endswith(".py")):
            default = any(k.arg == "default" and getattr(k.value, "value", False) for k in n.keywords)
            paths.append("" if default else Path(n.args[0].value).stem)
    return paths


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


def run(quick: bool = False, models_dir: Path | None = None, log=print) -> dict:
    from playwright.sync_api import sync_playwright

    chromium = devserver.chromium_path()
    if chromium is None:
        raise SystemExit("chromium not found: bash scripts/setup.sh --test installs Debian's chromium")
    presses, server_presses, extra_sessions = (20, 3, 2) if quick else (100, 10, 4)
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=devserver.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=devserver.VIEWPORT)
            page.set_default_timeout(60_000)
            # 1. cold start: the browser is already up; the clock runs from `streamlit run`
            t0 = time.perf_counter()
            with devserver.serve(models_dir, Path(tmp) / "server.log", runs_dir=Path(tmp) / "runs") as srv:
                requested = time.perf_counter() - t0
                cold = requested + _open(page, srv.url + "/")
                log(f"cold start: healthy {srv.healthy_after_s:.1f} s, Home rendered {cold:.1f} s")
                results.append(_result("dashboard cold start (streamlit run -> Home rendered)", "s", cold,
                                       target="<= 8 s"))
                first = _rss_mb(srv.proc.pid)

                # 2. memory: every page once in this session loads every built-in model (quick:
                # the pages the extra sessions open below, so their one-time loads come first)
                paths = ["a1_forward", "a3_sampling"] if quick else [p for p in page_paths() if p]
                for path in paths:
                    log(f"  {path}: ready in {_open(page, f'{srv.url}/{path}'):.1f} s")
                loaded = _rss_mb(srv.proc.pid)
                what = "Forward + Sampling visited" if quick else "every page visited (all models loaded)"
                results.append(_result(f"server RSS, {what}", "MB", loaded, target="<= 1500 MB"))
                results.append(_result("server RSS after the first page (Home)", "MB", first))
                others = []
                for _ in range(extra_sessions):
                    p = browser.new_page(viewport=devserver.VIEWPORT)
                    for path in ("", "a1_forward", "a3_sampling"):
                        _open(p, f"{srv.url}/{path}")
                    others.append(p)
                per_session = (_rss_mb(srv.proc.pid) - loaded) / extra_sessions
                results.append(_result(f"server RSS per extra browser session ({extra_sessions} opened)",
                                       "MB", per_session, target="<= 30 MB"))
                for p in others:
                    p.close()

                # 3. scrub latency on the Forward page: in-browser scrubber vs server slider
                _open(page, f"{srv.url}/a1_forward")
                records = devserver.scrub_records(page, presses)
                server_ms = devserver.server_slider_ms(page, server_presses)
                drawn = [r["drawn"] for r in records]
                frame = [r["frame"] for r in records]
                results.append(_result(
                    f"Forward scrub p95, key press -> x_t drawn ({presses} presses) vs server slider "
                    f"({server_presses})", "ms", _p(drawn, 95), _p(server_ms, 95), "p95 <= 50 ms",
                    lower_is_better=True))
                results.append(_result(
                    "Forward scrub p95, key press -> next animation frame vs server slider's new image", "ms",
                    _p(frame, 95), _p(server_ms, 95), "p95 <= 50 ms", lower_is_better=True))
                results.append(_result("Forward scrub p50, key press -> x_t drawn vs server slider", "ms",
                                       _p(drawn, 50), _p(server_ms, 50), "report", lower_is_better=True))
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
    ap = argparse.ArgumentParser(prog="python -m dashboard.bench", description=__doc__.split("\n")[0])
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
