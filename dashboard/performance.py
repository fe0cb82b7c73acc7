"""What this machine can do, for the Performance page and the sidebar: the benchmark reports in
``cache/bench/`` (``python -m engine bench`` and, from a checkout, ``python -m
tests.support.browser_bench``; read as JSON files, never imported) and the training speed each
shipped model's manifest recorded. No Streamlit here: plain data and Plotly figures.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import plotly.graph_objects as go

from dashboard import palette
from engine.adapters import MODEL_NAMES, read_manifest
from engine.data import CACHE_DIR

ROOT = Path(__file__).resolve().parent.parent
REPORTS = {
    "engine": "Engine: training and sampling (python -m engine bench)",
    "engine-quick": "Engine, quick run on this machine (from this page)",
    "dashboard": "Dashboard: start, memory, first views, scrubbing (python -m tests.support.browser_bench)",
    "time_to_quality": "Time to quality: the class recipe vs the course's, from scratch "
                       "(python -m engine bench --time-to-quality)",
}


def bench_dir() -> Path:
    return Path(os.environ.get("DIFFLAB_BENCH_DIR", CACHE_DIR / "bench"))


def load_report(name: str, folder: Path | None = None) -> dict | None:
    """A bench report (``{machine, results: [...]}``), or None when absent or unreadable."""
    path = (folder or bench_dir()) / f"{name}.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable, not UTF-8, not JSON
        return None
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        return None
    results = [r for r in map(_clean_result, report["results"]) if r is not None]
    return {**report, "machine": str(report.get("machine", "unknown machine")), "results": results}


def _number(v) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def _clean_result(r) -> dict | None:
    """A result as the pages need it, or None for an entry they could not show (hand-edited or
    from another version): name and ours required, reference and ratio numbers or None."""
    if not isinstance(r, dict) or not isinstance(r.get("name"), str) or _number(r.get("ours")) is None:
        return None
    return {"name": r["name"], "unit": str(r.get("unit", "")), "ours": _number(r["ours"]),
            "reference": _number(r.get("reference")), "ratio": _number(r.get("ratio")),
            "target": str(r.get("target", "")), "detail": str(r.get("detail", ""))}


def meets(result: dict) -> bool | None:
    """Whether a result meets its target: ``>= 3.0x`` (ratio), ``<= 8 s`` / ``<= 30 MB`` (value),
    ``p95 <= 50 ms`` (value); None for "report" or a target this cannot read."""
    target = str(result.get("target", ""))
    m = re.search(r"(>=|<=)\s*([0-9.]+)\s*(x|s|ms|MB)?", target)
    if not m:
        return None
    op, bound, unit = m.group(1), float(m.group(2)), m.group(3)
    value = result.get("ratio") if unit == "x" else result.get("ours")
    if value is None:
        return None
    return value >= bound if op == ">=" else value <= bound


def table_rows(report: dict) -> list[dict]:
    """One row per result, formatted for ``st.dataframe``."""
    rows = []
    for r in report["results"]:
        ok = meets(r)
        rows.append({
            "item": r["name"],
            "ours": _fmt(r["ours"]),
            "reference": _fmt(r["reference"]) if r["reference"] is not None else "",
            "unit": r["unit"],
            "ratio (> 1: ours better)": f"{r['ratio']:.2f}×" if r["ratio"] is not None else "",
            "target": r["target"],
            "met": {True: "yes", False: "no", None: ""}[ok],
            "detail": r.get("detail", ""),
        })
    return rows


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"


def ratio_figure(report: dict, title: str) -> go.Figure | None:
    """Horizontal bars: ours / reference for every speed item that has a reference (log axis;
    the FLOP/s fractions of peak are left to the table)."""
    items = [r for r in report["results"]
             if r["ratio"] is not None and r["ratio"] > 0 and r["unit"] != "FLOP/s"]
    if not items:
        return None
    names = [r["name"] if len(r["name"]) <= 60 else r["name"][:57] + "…" for r in items]
    # met / missed / no target: colour, hatching and the bar's own text say it (not colour alone)
    verdict = [{True: "meets target", False: "misses target"}.get(meets(r), "no target") for r in items]
    style = {"meets target": (palette.color(0), ""), "misses target": (palette.color(1), "x"),
             "no target": (palette.color(2), ".")}
    fig = go.Figure(go.Bar(x=[r["ratio"] for r in items], y=names, orientation="h",
                           marker_color=[style[v][0] for v in verdict],
                           marker_pattern_shape=[style[v][1] for v in verdict],
                           text=[f"{r['ratio']:.2f}× ({v})" for r, v in zip(items, verdict, strict=True)],
                           textposition="outside", cliponaxis=False))
    fig.add_vline(x=1, line_dash="dot", line_color="#7f7f7f")
    fig.update_layout(title=title, xaxis_title="ours / reference (log scale; > 1 is better)",
                      xaxis_type="log", height=120 + 45 * len(items), margin=dict(l=10, r=80, t=50, b=40),
                      yaxis=dict(autorange="reversed"))
    return fig


def training_speeds(root: Path | None = None) -> list[dict]:
    """Per shipped model, what its training run recorded: samples/s, wall time, machine."""
    rows = []
    for name in MODEL_NAMES:
        m = read_manifest(name, root)
        if not m:
            continue
        rows.append({
            "model": name,
            "samples/s": round(float(m.get("samples_per_s", 0)), 1),
            "training time (min)": round(float(m.get("train_time_s", 0)) / 60, 1),
            "precision": m.get("precision", ""),
            "machine": m.get("machine", ""),
        })
    return rows


def sidebar_line(engine_report: dict | None, dashboard_report: dict | None) -> str | None:
    """One line for the sidebar: the headline training and scrub numbers, where measured."""
    parts = []
    for r in (engine_report or {}).get("results", []):
        if r["name"].startswith("train step flow-class (") and r["ratio"]:
            parts.append(f"training {r['ours']:.0f} samples/s ({r['ratio']:.1f}× fp32)")
    for r in (dashboard_report or {}).get("results", []):
        if r["name"].startswith("Forward scrub p95, key press -> x_t drawn"):
            parts.append(f"scrub p95 {r['ours']:.1f} ms")
    return "Measured: " + ", ".join(parts) if parts else None


def run_quick_engine_bench(timeout: float = 900, _progress=None) -> tuple[bool, str]:
    """``python -m engine bench --quick`` into ``bench_dir()/engine-quick.json``; (ok, output).
    ``_progress(fraction, text)`` hears each benchmark as it starts (its ``[bench]`` lines)."""
    if not _BENCH_LOCK.acquire(blocking=False):  # two at once would only measure each other
        return False, "A benchmark started from another tab is still running; try again in a minute."
    lines: list[str] = []
    try:
        out = bench_dir() / "engine-quick.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "engine", "bench", "--quick", "--out", str(out)]
        with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as proc:
            timed_out = threading.Event()
            watchdog = threading.Timer(timeout, lambda: (timed_out.set(), proc.kill()))  # hangs too
            watchdog.start()
            try:
                for line in proc.stdout:
                    lines.append(line)
                    m = re.match(r"\[bench\] ([0-9.]+) (.*)", line.strip())
                    if m and _progress is not None:
                        _progress(float(m.group(1)), f"Benchmarking: {m.group(2)}")
                code = proc.wait()
            except BaseException:  # the page was left (Abandoned): stop the bench too
                proc.kill()
                raise
            finally:
                watchdog.cancel()
        if timed_out.is_set():
            raise subprocess.TimeoutExpired(cmd, timeout)
    except subprocess.TimeoutExpired:
        return False, f"The benchmark ran past {timeout:.0f} s and was stopped."
    except OSError as e:
        return False, f"Could not run the benchmark: {e.strerror or e}"
    finally:
        _BENCH_LOCK.release()
    text = "".join(line for line in lines if not line.startswith("[bench]")).strip()
    return code == 0, text[-3000:]


_BENCH_LOCK = threading.Lock()
