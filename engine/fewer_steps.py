"""Quality against cost for every sampler: the curves of the "Fewer steps" page and the choice
the benchmark times. ``python -m engine fewer-steps MODEL [--samples 200] --out FILE``.

For each sampler of the model and a grid of step counts, the same ``samples`` digits (same
seed, so the same starting noise for every sampler; the course's CFG scale) are scored by the
Fréchet distance to test digits of the same classes (``engine.evaluate.fd_to_test``) and, for
class models, the classifier's accuracy; wall time and NFE are recorded beside them. The course's
own setting (300 Euler steps; the strided DDPM loop, stride 30) is the reference point.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from .adapters import MNISTDDPM, FlowModel, load_builtin
from .classifier import class_probs
from .course import COURSE_SAMPLER, GUIDANCE, STRIDE, matches_course
from .device import cpu_amp, machine_description
from .evaluate import fd_to_test
from .samplers import DIFFUSION_SAMPLERS, FLOW_SAMPLERS
from .sampling import default_guidance, digit_labels, sample_ddpm, sample_flow

# step counts per sampler: NFE from a handful to the course's
GRIDS = {
    "euler": (5, 10, 20, 50, 100, 300), "midpoint": (3, 5, 10, 25, 50), "heun": (3, 5, 10, 25, 50),
    "rk4": (2, 3, 5, 13, 25), "ddpm": (5, 10, 20, 33, 66), "ddim": (5, 10, 20, 33, 50, 100),
    "dpmpp-2m": (3, 5, 7, 10, 15, 20, 33),
}
QUICK_GRIDS = {name: steps[:4] for name, steps in GRIDS.items()}
# a one-step model (reflow) is measured where it is meant to work, next to its teacher at the same
# NFE; the reference is the teacher's course setting
ONE_STEP_GRIDS = {"euler": (1, 2, 4, 8), "midpoint": (1, 2, 4)}
TEACHER_GRIDS = {"euler": (1, 2, 4, 8), "midpoint": (1, 2, 4)}


def teacher_of(cfg, manifest: dict) -> str | None:
    """The model a distilled one (reflow) learned from: its manifest's reflow teacher, else the
    folder of the weights it started from when it trained on pairs; None for the others."""
    reflow = manifest.get("reflow") if isinstance(manifest, dict) else None
    if isinstance(reflow, dict) and (reflow.get("pairs") or {}).get("teacher"):
        return reflow["pairs"]["teacher"]
    if getattr(cfg, "pairs", None) and getattr(cfg, "init_from", None):
        return Path(cfg.init_from).parent.name
    return None


def course_point(report: dict) -> dict:
    """The report's reference point: the course's setting (of the teacher, for a distilled model)."""
    c = report["course"]
    return next(p for p in report["points"] if (p["sampler"], p["steps"]) == (c["sampler"], c["steps"])
                and p.get("model") == c.get("model"))


def sample_with(name: str, sampler: str, steps: int, labels: torch.Tensor | None, count: int, seed: int,
                root=None, callback=None) -> tuple[torch.Tensor, int, float]:
    """(images (N, 1, 28, 28) in [0, 1], NFE, seconds) of model ``name`` with one sampler."""
    net, cfg, _ = load_builtin(name, root)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    if cfg.objective == "ddpm":
        model = MNISTDDPM(net, amp=cpu_amp())
        traj = sample_ddpm(model, labels, STRIDE, GUIDANCE["ddpm"], gen, callback, False,
                           sampler=sampler, steps=steps)
        images = torch.from_numpy(traj.to_unit().final)
    else:
        flow = FlowModel(net, cfg, cpu_amp())
        traj = sample_flow(flow, labels, count, steps, default_guidance(cfg), gen, callback, False,
                           sampler=sampler)
        images = traj.final.clamp(0, 1)
    return images, traj.nfe, time.perf_counter() - t0


def score(classifier, images: torch.Tensor, labels: torch.Tensor | None) -> dict:
    """Fréchet distance (and its floor) and, with labels, the accuracy; else mean confidence."""
    out = fd_to_test(classifier, images, labels)
    probs = class_probs(classifier, images)
    if labels is not None:
        out["accuracy"] = round(float((probs.argmax(1) == labels).float().mean()), 4)
    else:
        out["confidence"] = round(float(probs.max(1).values.mean()), 4)
    return out


def sweep(name: str, samples: int = 200, seed: int = 0, quick: bool = False, root=None,
          progress: Callable[[float, str], None] | None = None) -> dict:
    """Every sampler of model ``name`` over its step grid, and the course's setting. A distilled
    model (a manifest with a reflow teacher) is measured at 1-8 NFE next to its teacher at the
    same NFE (points carry "model"), against the teacher's course setting."""
    classifier, _, _ = load_builtin("classifier", root)
    _, cfg, manifest = load_builtin(name, root)
    kind = "ddpm" if cfg.objective == "ddpm" else "flow"
    labels = digit_labels(range(10), max(1, samples // 10)) if cfg.arch == "class" else None
    count = samples if labels is None else len(labels)
    teacher = teacher_of(cfg, manifest)
    if teacher is None:
        grids = QUICK_GRIDS if quick else GRIDS
        samplers = DIFFUSION_SAMPLERS if kind == "ddpm" else FLOW_SAMPLERS
        runs = [(None, s, n) for s in samplers for n in grids[s]]
        ref = (None, *COURSE_SAMPLER[kind])
    else:
        runs = [(name, s, n) for s, steps in ONE_STEP_GRIDS.items() for n in steps]
        runs += [(teacher, s, n) for s, steps in TEACHER_GRIDS.items() for n in steps]
        ref = (teacher, *COURSE_SAMPLER[kind])
    runs += [ref] if ref not in runs else []
    total, done, points = sum(n for _, _, n in runs), 0, []
    for model, sampler, steps in runs:
        def callback(s, done=done, sampler=sampler, model=model):
            if progress is not None:
                who = f"{model}: " if model else ""
                progress((done + s.i + 1) / total, f"{who}{sampler}, {s.n} steps: step {s.i + 1} of {s.n}")

        images, nfe, seconds = sample_with(model or name, sampler, steps, labels, count, seed, root, callback)
        points.append({**({"model": model} if model else {}), "sampler": sampler, "steps": steps, "nfe": nfe,
                       "seconds": round(seconds, 2), **score(classifier, images, labels)})
        done += steps
    guidance = default_guidance(cfg)
    course = {"sampler": ref[1], "steps": ref[2], **({"model": teacher} if teacher else {})}
    return {"model": name, "kind": kind, "samples": count, "seed": seed, "guidance": guidance,
            "course": course, **({"teacher": teacher} if teacher else {}),
            "machine": machine_description(torch.device("cpu")), "quick": quick,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "points": points}


def fastest_within(report: dict, fd_margin: float | None = None,
                   min_accuracy: float | None = None) -> dict | None:
    """The point with the fewest NFE (ties: the lower FD) that passes the course's rule
    (``engine.course.matches_course``: FD within ``FD_MARGIN`` of the course setting's, and the
    class models' accuracy at least ``MIN_ACCURACY``); None when none does. ``fd_margin`` (and
    ``min_accuracy``) replace the rule by a plain margin, for tests and what-ifs. Only the
    report's own model's points count (not a distilled model's teacher)."""
    course = course_point(report)
    own = [p for p in report["points"] if p.get("model") in (None, report.get("model"))]
    if fd_margin is None:
        ok = [p for p in own if matches_course(p["fd"], course["fd"], p.get("accuracy"), report["kind"])]
    else:
        ok = [p for p in own if p["fd"] <= course["fd"] * (1 + fd_margin)
              and (min_accuracy is None or p.get("accuracy", 1.0) >= min_accuracy)]
    return min(ok, key=lambda p: (p["nfe"], p["fd"])) if ok else None
