"""2D playground benchmarks (``engine.toy2d``): seconds of training until flow matching on two
moons reaches twice the data's own MMD floor, and how much straighter reflow makes the paths."""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from .common import BenchResult


def bench_toy2d_moons(steps: int, every: int = 250) -> BenchResult:
    """The 2D playground's target: flow matching on two moons with the default MLP (one thread),
    seconds of training until its samples (2000, 50 Euler steps) are within 2x of the MMD two
    independent draws of the data reach. Sampling to check is not counted."""
    from ..toy2d.data import dataset
    from ..toy2d.sample import Reference, mmd, sample
    from ..toy2d.train import ToyConfig, train

    data, cfg = dataset("moons"), replace(ToyConfig(), steps=steps)
    ref = Reference(data, 2000, 0)
    noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    state = {"paused": 0.0, "hit": None, "curve": []}

    def check(model, step: int) -> None:
        t0 = time.perf_counter()
        m = mmd(sample(model, noise, "euler", 50, record=False).final, ref.points, yy=ref.yy)
        state["curve"].append((step, m))
        state["paused"] += time.perf_counter() - t0
        if state["hit"] is None and m <= 2 * ref.mmd_floor:
            state["hit"] = (step, time.perf_counter() - start - state["paused"])

    start = time.perf_counter()
    result = train(cfg, data, lambda s: s.step % every == 0 and check(s.model, s.step), threads=1)
    total = result.seconds - state["paused"]
    final = state["curve"][-1][1] if state["curve"] else float("nan")
    hit = state["hit"]
    detail = (f"MMD {final:.4f} after {steps} steps ({total:.1f} s of training); floor {ref.mmd_floor:.4f} "
              f"(two draws of 2000 points); " + (f"2x the floor reached at step {hit[0]}" if hit else
                                                  "2x the floor not reached"))
    return BenchResult("2D flow matching, two moons (MLP 128x4, batch 256, 1 thread): seconds to MMD <= 2x "
                       "the data's floor", "s", hit[1] if hit else total, None, None, "<= 10 s", detail)


def bench_toy2d_straightness() -> list[BenchResult]:
    """8 Gaussians: straightness (mean path length / chord, 100 Euler steps, 2000 particles) of
    flow matching, OT flow matching and reflow; and how many Euler steps flow matching needs to
    match the MMD of one reflow step."""
    from ..toy2d.data import dataset
    from ..toy2d.sample import Reference, mmd, sample, straightness
    from ..toy2d.train import ToyConfig, train

    data = dataset("8gaussians")
    fm = train(ToyConfig(objective="fm"), data, threads=1)
    models = {"fm": fm, "ot-fm": train(ToyConfig(objective="ot-fm"), data, threads=1),
              "reflow": train(ToyConfig(objective="reflow"), data, base=fm.model, threads=1)}
    noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    ref = Reference(data, 2000, 0)
    s = {k: straightness(sample(r.model, noise, "euler", 100).x) for k, r in models.items()}
    one = mmd(sample(models["reflow"].model, noise, "euler", 1, record=False).final, ref.points, yy=ref.yy)
    fm_curve = [(n, mmd(sample(fm.model, noise, "euler", n, record=False).final, ref.points, yy=ref.yy))
                for n in (1, 2, 4, 8, 16, 32, 64, 128)]
    need = next((n for n, m in fm_curve if m <= one), None)
    secs = ", ".join(f"{k} {r.seconds:.1f} s" for k, r in models.items())
    return [
        BenchResult("2D straightness on 8 Gaussians: reflow (path length / chord, 100 Euler steps)", "ratio",
                    s["reflow"], None, None, "reflow <= 1.05 (FM >= 1.2)",
                    f"FM {s['fm']:.3f}, OT-FM {s['ot-fm']:.3f}, reflow {s['reflow']:.3f}; trained in {secs}"),
        BenchResult("2D 8 Gaussians: Euler steps FM needs to match 1 reflow step (MMD)", "steps",
                    float(need or 256), None, None, ">= 8",
                    f"reflow 1 step MMD {one:.4f} (floor {ref.mmd_floor:.4f}); FM by steps: "
                    + ", ".join(f"{n}: {m:.4f}" for n, m in fm_curve)
                    + ("" if need else "; FM never matched it up to 128 steps")),
    ]
