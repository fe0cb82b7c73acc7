"""Sampling benchmarks on the digit models: classifier-free guidance batched (cond and uncond in one
pass, bf16) against two fp32 passes, for the course's Euler flow loop and strided DDPM loop; and the
fewest-steps sampler that still matches the course (``engine.fewer_steps``) against the course's
own loop."""

from __future__ import annotations

import torch

from ..adapters import MNISTDDPM, FlowModel
from ..config import PRESETS, build_model
from ..course import COURSE_SAMPLER, DDPM_GUIDANCE, FLOW_GUIDANCE, GUIDANCE, STRIDE
from ..denoise import iterative_denoise
from ..device import cpu_amp
from ..flow import euler_sample, time_grid
from ..guidance import CFGModel
from ..schedule import strided_timesteps
from ..unet import one_hot
from .common import BenchResult, rate


def bench_flow_cfg(count: int, steps: int, repeats: int) -> BenchResult:
    """CFG Euler sampling: batched cond+uncond with bf16 vs fp32 with two separate passes."""
    cfg = PRESETS["flow-class"]
    net = build_model(cfg).eval()
    labels = torch.arange(count) % 10
    cond, null = one_hot(labels), torch.zeros(count, 10)
    noise = torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    fast_model = CFGModel(FlowModel(net, cfg, cpu_amp()), null, FLOW_GUIDANCE)

    def ours():
        euler_sample(fast_model, noise, time_grid(steps), cond=cond, record=False)

    ref_model = FlowModel(net, cfg, None)

    @torch.inference_mode()
    def reference():
        x = noise.clone()
        for i in range(steps):
            t = torch.full((count,), i / steps)
            u_c, u_u = ref_model(x, t, cond), ref_model(x, t, null)
            x = x + (u_u + FLOW_GUIDANCE * (u_c - u_u)) / steps

    # warm up (oneDNN primitives) on 3 steps, not on a whole loop
    euler_sample(fast_model, noise, time_grid(3), cond=cond, record=False)
    ref_model(noise, torch.zeros(count), cond)
    a, b = rate(ours, count * steps, repeats, 0), rate(reference, count * steps, repeats, 0)
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
        model = CFGModel(fast, fast.null_cond(1), DDPM_GUIDANCE)
        gen = torch.Generator().manual_seed(0)
        iterative_denoise(model, noise, ts, cond=cond, generator=gen, record=False, schedule=fast.schedule)

    def two_pass(x, t, c):
        e_c, e_u = slow(x, t, c), slow(x, t, slow.null_cond(x.shape[0]))
        return e_u + DDPM_GUIDANCE * (e_c - e_u)

    def reference():
        iterative_denoise(two_pass, noise, ts, cond=cond, generator=torch.Generator().manual_seed(0),
                          record=False, schedule=slow.schedule)

    n = count * (len(ts) - 1)
    t0 = torch.full((count,), int(ts[0]))
    CFGModel(fast, fast.null_cond(1), DDPM_GUIDANCE)(noise, t0, cond)  # warm up on one step
    two_pass(noise, t0, cond)
    a, b = rate(ours, n, repeats, 0), rate(reference, n, repeats, 0)
    return BenchResult(
        f"strided DDPM sampling with CFG, {count} digits, stride {stride}",
        "digit-steps/s",
        a,
        b,
        a / b,
        ">= 4x",
    )


def bench_fewer_steps(name: str, count: int, repeats: int, root=None) -> BenchResult | None:
    """The fastest sampler of ``name`` that matches the course (``engine.fewer_steps.fastest_within``:
    the course's rule of ``engine.course.matches_course``), read from the model's shipped curves
    (``fewer_steps.json``), against the course's setting in fp32 with two CFG passes; ``count``
    digits. None when the curves are missing or no sampler qualifies."""
    import json

    from ..adapters import MODELS_DIR, load_builtin
    from ..fewer_steps import fastest_within

    try:
        report = json.loads(((root or MODELS_DIR) / name / "fewer_steps.json").read_text())
    except (OSError, ValueError):
        return None
    kind = report["kind"]
    best = fastest_within(report)
    if best is None:
        return None
    net, cfg, _ = load_builtin(name, root)
    labels = torch.arange(count) % 10
    noise = torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    pair = _flow_pair if kind == "flow" else _ddpm_pair
    ours, reference = pair(net, cfg, best, labels, noise)
    a, b = rate(ours, count, repeats, 1), rate(reference, count, repeats, 0)
    course = next(p for p in report["points"] if (p["sampler"], p["steps"]) == COURSE_SAMPLER[kind])
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


def _flow_pair(net, cfg, best: dict, labels: torch.Tensor, noise: torch.Tensor):
    """(ours, reference) for a flow model: ``best``'s sampler through the adapter (batched CFG,
    bf16 where the CPU has it), and the course's Euler loop in fp32 with two CFG passes."""
    from ..sampling import sample_flow

    count, cond, g = len(labels), one_hot(labels), GUIDANCE["flow"]
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
    course_steps = COURSE_SAMPLER["flow"][1]

    @torch.inference_mode()
    def reference():
        x = noise.clone()
        for i in range(course_steps):
            t = torch.full((count,), i / course_steps)
            u_c, u_u = slow(x, t, cond), slow(x, t, torch.zeros_like(cond))
            x = x + (u_u + g * (u_c - u_u)) / course_steps

    return ours, reference


def _ddpm_pair(net, cfg, best: dict, labels: torch.Tensor, noise: torch.Tensor):
    """(ours, reference) for a DDPM: ``best``'s sampler through the adapter (batched CFG, bf16
    where the CPU has it), and the course's strided loop in fp32 with two CFG passes."""
    from ..sampling import sample_ddpm

    cond, g = one_hot(labels), GUIDANCE["ddpm"]
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
        iterative_denoise(two_pass, noise, strided_timesteps(STRIDE), cond=cond,
                          generator=torch.Generator().manual_seed(0), record=False, schedule=slow.schedule)

    return ours, reference
