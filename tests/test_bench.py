"""`python -m engine bench --quick` runs and writes the documented JSON (timings are never asserted)."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_writes_valid_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "bench", "--quick", "--threads", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["results"]
    for r in report["results"]:
        assert set(r) == {"name", "unit", "ours", "reference", "ratio", "target"}
        assert math.isfinite(r["ours"]) and r["ours"] > 0
        if r["reference"] is None:
            assert r["ratio"] is None
        else:
            assert math.isclose(r["ratio"], r["ours"] / r["reference"], rel_tol=1e-9)
    names = " ".join(r["name"] for r in report["results"])
    assert "train step flow-class" in names and "CFG flow sampling" in names and "DDPM" in names
    assert "ratio" in proc.stdout
