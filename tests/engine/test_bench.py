"""`python -m engine bench --quick` runs and writes the documented JSON (timings are never asserted)."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
        assert set(r) == {"name", "unit", "ours", "reference", "ratio", "target", "detail"}
        assert math.isfinite(r["ours"]) and r["ours"] > 0
        if r["reference"] is None:
            assert r["ratio"] is None
        else:
            assert math.isclose(r["ratio"], r["ours"] / r["reference"], rel_tol=1e-9)
    names = " ".join(r["name"] for r in report["results"])
    assert "train step flow-class" in names and "CFG flow sampling" in names and "DDPM" in names
    assert "ratio" in proc.stdout


def test_fewer_steps_item_times_the_fastest_qualifying_sampler(tmp_path):
    """The bench reads the model's curves, picks the fewest-NFE sampler within 10 % of the course's
    distance (and accurate enough), and times it against the course's fp32 two-pass loop."""
    from engine.bench.sampling import bench_fewer_steps
    from tests.support.tiny import train_tiny

    train_tiny("flow-class", tmp_path / "flow-class")
    assert bench_fewer_steps("flow-class", 4, 1, tmp_path) is None  # no curves: no item
    runs = (("euler", 300, 300, 2.0, 1.0), ("euler", 3, 3, 2.5, 1.0), ("rk4", 2, 8, 2.1, 1.0),
            ("midpoint", 2, 4, 2.0, 0.5))
    points = [{"sampler": s, "steps": n, "nfe": nfe, "seconds": 1.0, "fd": fd, "fd_floor": 1.0,
               "accuracy": acc} for s, n, nfe, fd, acc in runs]
    report = {"kind": "flow", "course": {"sampler": "euler", "steps": 300}, "points": points}
    (tmp_path / "flow-class" / "fewer_steps.json").write_text(json.dumps(report))
    r = bench_fewer_steps("flow-class", 4, 1, tmp_path)
    # midpoint is inaccurate, 3 Euler steps too far from the course's distance: RK4 wins
    assert "rk4 2 steps" in r.name and "8 NFE (course 300)" in r.detail
    assert r.unit == "digits/s" and r.ratio == r.ours / r.reference and r.target == ">= 30x"
