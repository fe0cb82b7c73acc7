"""The Performance page and its helpers (dashboard/performance.py): reading bench reports,
judging targets, the tables and figures, and the page itself under AppTest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import performance as perf

ROOT = Path(__file__).resolve().parents[2]

REPORT = {
    "machine": "CPU test, 2 threads",
    "when": "2026-11-26T10:00:00Z",
    "quick": False,
    "results": [
        {"name": "train step flow-class (D=64, batch 64)", "unit": "samples/s", "ours": 170.0,
         "reference": 84.0, "ratio": 170 / 84, "target": ">= 3.0x"},
        {"name": "train step: FLOP/s vs bf16 matmul", "unit": "FLOP/s", "ours": 2e10, "reference": 2e11,
         "ratio": 0.1, "target": "report"},
        {"name": "CFG flow sampling", "unit": "digit-steps/s", "ours": 900.0, "reference": 200.0,
         "ratio": 4.5, "target": ">= 4x"},
        {"name": "dashboard cold start", "unit": "s", "ours": 6.5, "reference": None, "ratio": None,
         "target": "<= 8 s"},
        {"name": "Forward scrub p95, key press -> x_t drawn (100 presses) vs server slider (10)",
         "unit": "ms", "ours": 1.5, "reference": 335.0, "ratio": 223.3, "target": "p95 <= 50 ms"},
        {"name": "server RSS after Home", "unit": "MB", "ours": 635.0, "reference": None, "ratio": None,
         "target": "report"},
    ],
}


@pytest.mark.parametrize(
    "index,expected", [(0, False), (1, None), (2, True), (3, True), (4, True), (5, None)]
)
def test_meets_reads_ratio_and_value_targets(index, expected):
    assert perf.meets(REPORT["results"][index]) is expected


def test_load_report_tolerates_missing_and_broken_files(tmp_path):
    assert perf.load_report("engine", tmp_path) is None
    (tmp_path / "engine.json").write_text("{not json")
    assert perf.load_report("engine", tmp_path) is None
    (tmp_path / "engine.json").write_text(json.dumps({"results": "nope"}))
    assert perf.load_report("engine", tmp_path) is None
    (tmp_path / "engine.json").write_bytes(b"\xff\xfe not utf-8")
    assert perf.load_report("engine", tmp_path) is None
    (tmp_path / "engine.json").write_text(json.dumps(REPORT))
    assert perf.load_report("engine", tmp_path)["machine"] == "CPU test, 2 threads"
    # hand-edited or foreign entries are dropped, the rest still shows
    broken = {"results": ["text", {"name": 3, "ours": 1}, {"name": "no ours"}, {"name": "nan", "ours": "x"},
                          {"name": "ok", "ours": 2, "ratio": "fast", "reference": None}]}
    (tmp_path / "engine.json").write_text(json.dumps(broken))
    report = perf.load_report("engine", tmp_path)
    assert report["results"] == [{"name": "ok", "unit": "", "ours": 2.0, "reference": None, "ratio": None,
                                  "target": "", "detail": ""}]
    assert perf.table_rows(report) and perf.ratio_figure(report, "t") is None
    assert perf.sidebar_line(report, report) is None


def test_table_rows_and_ratio_figure():
    rows = perf.table_rows(REPORT)
    assert [r["met"] for r in rows] == ["no", "", "yes", "yes", "yes", ""]
    assert rows[0]["ratio (> 1: ours better)"] == "2.02×" and rows[3]["reference"] == ""
    fig = perf.ratio_figure(REPORT, "t")
    assert list(fig.data[0].x) == pytest.approx([170 / 84, 4.5, 223.3])
    assert fig.layout.xaxis.type == "log"
    assert perf.ratio_figure({"results": [REPORT["results"][3]]}, "t") is None


def test_sidebar_line():
    line = perf.sidebar_line(REPORT, REPORT)
    assert line == "Measured: training 170 samples/s (2.0× fp32), scrub p95 1.5 ms"
    assert perf.sidebar_line(None, None) is None


def test_training_speeds_from_manifests(tmp_path):
    (tmp_path / "flow-class").mkdir()
    manifest = {"samples_per_s": 73.71, "train_time_s": 8136.6, "precision": "bfloat16", "machine": "CPU x"}
    (tmp_path / "flow-class" / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "denoiser").mkdir()
    (tmp_path / "denoiser" / "manifest.json").write_text("broken")
    assert perf.training_speeds(tmp_path) == [
        {"model": "flow-class", "samples/s": 73.7, "training time (min)": 135.6, "precision": "bfloat16",
         "machine": "CPU x"}
    ]


def test_performance_page(tmp_path, monkeypatch):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "engine.json").write_text(json.dumps(REPORT))
    (bench / "dashboard.json").write_text('{"results": [null, {"name": "x"}]}')  # nothing to show, no crash
    monkeypatch.setenv("DIFFLAB_BENCH_DIR", str(bench))
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(tmp_path / "no-models"))
    at = AppTest.from_file(str(ROOT / "pages" / "performance.py"), default_timeout=60).run()
    assert not at.exception
    assert [s.value for s in at.subheader][0].startswith("Engine: training and sampling")
    assert len(at.dataframe) == 1 and "2026-11-26T10:00:00Z" in at.caption[0].value
    assert any("train_all.sh" in i.value for i in at.info)
    assert at.button[0].label == "Run the quick benchmark"


def test_quick_bench_reports_each_benchmark_as_it_starts(tmp_path, monkeypatch):
    """The Performance page's button: the bench's ``[bench] fraction name`` lines become the
    progress bar, the rest is the output; a bench that hangs is stopped at the timeout."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho '[bench] 0.000 training steps (1 of 2)'\necho table\n"
                    "echo '[bench] 0.500 sampling (2 of 2)'\necho done\n")
    fake.chmod(0o755)
    monkeypatch.setattr(perf.sys, "executable", str(fake))
    monkeypatch.setenv("DIFFLAB_BENCH_DIR", str(tmp_path / "bench"))
    heard = []
    ok, out = perf.run_quick_engine_bench(_progress=lambda f, text: heard.append((f, text)))
    assert ok and out == "table\ndone"
    assert heard == [(0.0, "Benchmarking: training steps (1 of 2)"), (0.5, "Benchmarking: sampling (2 of 2)")]
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    ok, out = perf.run_quick_engine_bench(timeout=0.5)
    assert not ok and "ran past" in out
