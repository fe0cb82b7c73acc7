"""Benchmarks as ratios measured in one run: ``python -m engine bench [--quick] [--out bench.json]``.

Machines here are shared and noisy, so every item times our fast path and a plain reference
back to back in the same process and reports ``ratio = ours / reference`` (> 1: ours is better).
Each result is ``{name, unit, ours, reference, ratio, target}``; the JSON file holds a list of
them plus the machine description. Benchmarks are not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch.nn import functional as F

from .config import PRESETS, build_model
from .denoise import iterative_denoise
from .device import cpu_amp, cpu_supports_bf16, machine_description
from .flow import euler_sample
from .guidance import CFGModel
from .adapters import MNISTDDPM, FlowModel
from .schedule import strided_timesteps
from .unet import one_hot


@dataclass
class BenchResult:
    name: str
    unit: str
    ours: float
    reference: float | None
    ratio: float | None
    target: str
    detail: str = ""  # what else a reader needs beside the ratio (NFE, accuracy, distance)


def _rate(fn: Callable[[], None], items: int, repeats: int, warmup: int = 2) -> float:
    """Items per second of ``fn``, best of ``repeats`` (the least disturbed by other load)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return items / best


def train_step_fn(name: str, batch: int, fast: bool) -> tuple[Callable[[], None], torch.nn.Module, tuple]:
    """One optimizer step of preset ``name``: fast = bf16 autocast + channels_last (as training
    runs), reference = eager fp32 with default settings."""
    cfg = PRESETS[name]
    gen = torch.Generator().manual_seed(0)
    model = build_model(cfg)
    amp = cpu_amp() if fast else None
    x = torch.rand(batch, 1, 28, 28, generator=gen)
    if fast and amp is not None:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    t = torch.rand(batch, generator=gen)
    c = one_hot(torch.randint(0, 10, (batch,), generator=gen))
    inputs = (x,) if cfg.arch == "unconditional" else (x, t) if cfg.arch == "time" else (x, t, c)

    def step():
        with torch.autocast("cpu", dtype=amp or torch.float32, enabled=amp is not None):
            loss = F.mse_loss(model(*inputs).float(), x.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, model, inputs


def step_flops(name: str, batch: int) -> float:
    """Model FLOPs of one training step (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    step, _, _ = train_step_fn(name, batch, fast=False)
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def matmul_flops_per_s(dtype: torch.dtype, n: int = 1024, repeats: int = 3) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    return _rate(lambda: a @ b, 2 * n**3, repeats)


def bench_training(name: str, batch: int, repeats: int, with_flops: bool) -> list[BenchResult]:
    fast, _, _ = train_step_fn(name, batch, fast=True)
    ref, _, _ = train_step_fn(name, batch, fast=False)
    ours = _rate(fast, batch, repeats)
    reference = _rate(ref, batch, repeats)
    out = [
        BenchResult(
            f"train step {name} (D={PRESETS[name].num_hiddens}, batch {batch})",
            "samples/s",
            ours,
            reference,
            ours / reference,
            ">= 3.0x",
        )
    ]
    if with_flops:
        flops = step_flops(name, batch) / batch * ours
        for dtype in (torch.bfloat16, torch.float32):
            peak = matmul_flops_per_s(dtype)
            out.append(
                BenchResult(
                    f"train step {name}: model FLOP/s vs {str(dtype)[6:]} matmul",
                    "FLOP/s",
                    flops,
                    peak,
                    flops / peak,
                    "report",
                )
            )
    return out


def bench_flow_cfg(count: int, steps: int, repeats: int) -> BenchResult:
    """CFG Euler sampling: batched cond+uncond with bf16 vs fp32 with two separate passes."""
    cfg = PRESETS["flow-class"]
    net = build_model(cfg).eval()
    labels = torch.arange(count) % 10
    cond, null = one_hot(labels), torch.zeros(count, 10)
    noise = torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    fast_model = CFGModel(FlowModel(net, cfg, cpu_amp()), null, 5.0)

    def ours():
        euler_sample(fast_model, noise, steps, cond, record=False)

    ref_model = FlowModel(net, cfg, None)

    @torch.inference_mode()
    def reference():
        x = noise.clone()
        for i in range(steps):
            t = torch.full((count,), i / steps)
            u_c, u_u = ref_model(x, t, cond), ref_model(x, t, null)
            x = x + (u_u + 5.0 * (u_c - u_u)) / steps

    euler_sample(fast_model, noise, 3, cond, record=False)  # warm up (oneDNN primitives) on 3 steps,
    ref_model(noise, torch.zeros(count), cond)  # not on a whole loop
    a, b = _rate(ours, count * steps, repeats, 0), _rate(reference, count * steps, repeats, 0)
    return BenchResult(
        f"CFG flow sampling, {count} digits x {steps} Euler steps", "digit-steps/s", a, b, a / b, ">= 4x"
    )


def bench_ddpm_cfg(count: int, stride: int, repeats: int) -> BenchResult:
    cfg = PRESETS["ddpm-class"]
    net = build_model(cfg).eval()
    labels = torch.arange(count) % 10
    ts = strided_timesteps(stride)
    noise = torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    fast = MNISTDDPM(net, amp=cpu_amp())
    slow = MNISTDDPM(net, amp=None)
    cond = fast.encode(labels)

    def ours():
        model = CFGModel(fast, fast.null_cond(1), 7.0)
        iterative_denoise(
            model, noise, 0, ts, fast.schedule, cond, torch.Generator().manual_seed(0), record=False
        )

    def two_pass(x, t, c):
        e_c, e_u = slow(x, t, c), slow(x, t, slow.null_cond(x.shape[0]))
        return e_u + 7.0 * (e_c - e_u)

    def reference():
        iterative_denoise(
            two_pass, noise, 0, ts, slow.schedule, cond, torch.Generator().manual_seed(0), record=False
        )

    n = count * (len(ts) - 1)
    t0 = torch.full((count,), int(ts[0]))
    CFGModel(fast, fast.null_cond(1), 7.0)(noise, t0, cond)  # warm up on one step
    two_pass(noise, t0, cond)
    a, b = _rate(ours, n, repeats, 0), _rate(reference, n, repeats, 0)
    return BenchResult(
        f"strided DDPM sampling with CFG, {count} digits, stride {stride}",
        "digit-steps/s",
        a,
        b,
        a / b,
        ">= 4x",
    )


def bench_fewer_steps(name: str, count: int, repeats: int, root=None) -> BenchResult | None:
    """The fastest sampler of ``name`` whose samples stay within 10 % of the course setting's
    Fréchet distance and keep >= 97 % (flow) / >= 95 % (DDPM) accuracy, read from the model's
    shipped curves (``fewer_steps.json``), against the course's setting in fp32 with two CFG
    passes; ``count`` digits. None when the curves are missing or no sampler qualifies."""
    import json

    from .fewer_steps import COURSE, GUIDANCE, fastest_within
    from .adapters import MODELS_DIR, load_builtin
    from .sampling import sample_ddpm, sample_flow

    try:
        report = json.loads(((root or MODELS_DIR) / name / "fewer_steps.json").read_text())
    except (OSError, ValueError):
        return None
    kind = report["kind"]
    best = fastest_within(report, 0.10, 0.97 if kind == "flow" else 0.95)
    if best is None:
        return None
    net, cfg, _ = load_builtin(name, root)
    labels = torch.arange(count) % 10
    cond = one_hot(labels)
    noise = torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    g = GUIDANCE[kind]
    if kind == "flow":
        fast = FlowModel(net, cfg, cpu_amp())
        ours = lambda: sample_flow(
            fast,
            labels,
            count,
            best["steps"],
            g,
            torch.Generator(),
            record=False,  # noqa: E731
            sampler=best["sampler"],
        )
        slow = FlowModel(net, cfg, None)
        course_steps = COURSE["flow"][1]

        @torch.inference_mode()
        def reference():
            x = noise.clone()
            for i in range(course_steps):
                t = torch.full((count,), i / course_steps)
                u_c, u_u = slow(x, t, cond), slow(x, t, torch.zeros_like(cond))
                x = x + (u_u + g * (u_c - u_u)) / course_steps
    else:
        fast, slow = MNISTDDPM(net, amp=cpu_amp()), MNISTDDPM(net, amp=None)
        ours = lambda: sample_ddpm(
            fast,
            labels,
            30,
            g,
            torch.Generator(),
            record=False,
            sampler=best["sampler"],  # noqa: E731
            steps=best["steps"],
        )

        def two_pass(x, t, c):
            e_c, e_u = slow(x, t, c), slow(x, t, slow.null_cond(x.shape[0]))
            return e_u + g * (e_c - e_u)

        def reference():
            iterative_denoise(
                two_pass,
                noise,
                0,
                strided_timesteps(30),
                slow.schedule,
                cond,
                torch.Generator().manual_seed(0),
                record=False,
            )

    a, b = _rate(ours, count, repeats, 1), _rate(reference, count, repeats, 0)
    course = next(p for p in report["points"] if (p["sampler"], p["steps"]) == COURSE[kind])
    detail = (
        f"{best['sampler']} {best['steps']} steps = {best['nfe']} NFE (course {course['nfe']}); accuracy "
        f"{best.get('accuracy', float('nan')):.3f}; Fréchet distance {best['fd']:.2f} vs the course's "
        f"{course['fd']:.2f} (floor {best['fd_floor']:.2f})"
    )
    return BenchResult(
        f"fewer steps, {name}: {count} digits, {best['sampler']} {best['steps']} steps vs the "
        f"course's {course['sampler']} {course['steps']} (fp32, two CFG passes)",
        "digits/s",
        a,
        b,
        a / b,
        ">= 30x" if kind == "flow" else ">= 8x",
        detail,
    )


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
    results.append(bench_flow_cfg(40, 5 if quick else 300, 1 if quick else 2))
    step(3, "sampling: DDPM with CFG")
    results.append(bench_ddpm_cfg(40, 330 if quick else 30, 1 if quick else 2))
    step(4, "2D playground: flow matching on two moons")
    results.append(bench_toy2d_moons(500 if quick else 2000))
    if not quick:  # the course's loops in fp32 take minutes: the full bench only
        for k, m in enumerate(("flow-class", "ddpm-class")):
            step(5 + k, f"fewer steps: {m}")
            r = bench_fewer_steps(m, 40, 2)
            results += [r] if r is not None else []
        step(7, "2D playground: straightness")
        results += bench_toy2d_straightness()
    return {
        "machine": machine_description(torch.device("cpu")),
        "torch": torch.__version__,
        "bf16": cpu_supports_bf16(),
        "quick": quick,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": [asdict(r) for r in results],
    }


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


def bench_toy2d_moons(steps: int, every: int = 250) -> BenchResult:
    """The 2D playground's target: flow matching on two moons with the default MLP (one thread),
    seconds of training until its samples (2000, 50 Euler steps) are within 2x of the MMD two
    independent draws of the data reach. Sampling to check is not counted."""
    from .toy2d.data import dataset
    from .toy2d.sample import Reference, mmd, sample
    from .toy2d.train import ToyConfig, train

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
    from .toy2d.data import dataset
    from .toy2d.sample import Reference, mmd, sample, straightness
    from .toy2d.train import ToyConfig, train

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
