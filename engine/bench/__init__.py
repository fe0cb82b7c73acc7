"""Benchmarks as ratios measured in one run: ``python -m engine bench [--quick] [--out bench.json]``;
``--time-to-quality`` trains both recipes of flow-class and the denoiser from scratch instead
(``time_to_quality.bench_time_to_quality``, about half an hour on 2 cores).

Machines here are shared and noisy, so every item times our fast path and a plain reference
back to back in the same process and reports ``ratio = ours / reference`` (> 1: ours is better).
Each result is ``{name, unit, ours, reference, ratio, target}``; the JSON file holds a list of
them plus the machine description. Benchmarks are not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict

import torch

from ..course import EULER_STEPS, STRIDE
from ..device import cpu_supports_bf16, machine_description
from .common import BenchResult
from .sampling import bench_ddpm_cfg, bench_fewer_steps, bench_flow_cfg
from .toy2d import bench_toy2d_moons, bench_toy2d_straightness
from .training import bench_training


def run(quick: bool = False, progress: Callable[[float, str], None] | None = None) -> dict:
    """Every benchmark; ``progress(fraction, name)`` hears which one starts."""
    repeats = 2 if quick else 5
    total = 5 if quick else 8
    results: list[BenchResult] = []

    def step(k: int, name: str) -> None:
        if progress is not None:
            progress(k / total, f"{name} ({k + 1} of {total})")

    step(0, "training steps: flow-class")
    results += bench_training("flow-class", 64, repeats, with_flops=True)
    step(1, "training steps: denoiser")
    results += bench_training("denoiser", 64 if quick else 256, repeats, with_flops=False)
    step(2, "sampling: flow matching with CFG")
    results.append(bench_flow_cfg(40, 5 if quick else EULER_STEPS, 1 if quick else 2))
    step(3, "sampling: DDPM with CFG")
    results.append(bench_ddpm_cfg(40, 330 if quick else STRIDE, 1 if quick else 2))
    step(4, "2D playground: flow matching on two moons")
    results.append(bench_toy2d_moons(500 if quick else 2000))
    if not quick:  # the course's loops in fp32 take minutes: the full bench only
        for k, m in enumerate(("flow-class", "ddpm-class")):
            step(5 + k, f"fewer steps: {m}")
            r = bench_fewer_steps(m, 40, 2)
            results += [r] if r is not None else []
        step(7, "2D playground: straightness")
        results += bench_toy2d_straightness()
    return _report(results, quick)


def _report(results: list[BenchResult], quick: bool, **extra) -> dict:
    """A report as ``--out`` writes it: the machine, when, and the results."""
    return {
        "machine": machine_description(torch.device("cpu")),
        "torch": torch.__version__,
        "bf16": cpu_supports_bf16(),
        "quick": quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
        "results": [asdict(r) for r in results],
    }


def run_time_to_quality(folder, budget_s: float = 600, log: Callable[[str], None] = print) -> dict:
    """The time-to-quality report: runs go into ``folder`` (resumable: run again to go on)."""
    from pathlib import Path

    from .time_to_quality import bench_time_to_quality

    results = bench_time_to_quality(Path(folder), budget_s, log)
    return _report(results, False, threads=torch.get_num_threads(), budget_s=budget_s)


def format_table(report: dict) -> str:
    lines = [
        f"{report['machine']}, torch {report['torch']}, bf16 {report['bf16']}",
        f"{'item':70s} {'ours':>12s} {'reference':>12s} {'ratio':>7s}  target",
    ]
    for r in report["results"]:
        ref = f"{r['reference']:.4g}" if r["reference"] is not None else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        lines.append(f"{r['name'][:70]:70s} {r['ours']:12.4g} {ref:>12s} {ratio:>7s}  {r['target']}")
        if r.get("detail"):
            lines.append(f"{'':4s}{r['detail']}")
    return "\n".join(lines)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2)
