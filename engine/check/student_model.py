"""A student's own Part B model: ``build_unet()`` in their file plus their weights, sampled with
the course's sampler (Euler from noise at t = 0 to data at t = 1, CFG gamma 5 for a class model)
and scored with the lab's classifier (accuracy, Fréchet distance) next to the shipped model on
the same noise.

Flow matching convention (Part B): x0 is noise, x1 data, t runs 0 -> 1. ``build_unet()`` returns
an ``nn.Module`` whose ``forward(x, t)`` gives the velocity (t (B,) in [0, 1]); a class model's
forward also takes ``c`` (one-hot (B, 10), zeros = unconditional), in either order as long as
the parameter is named ``c`` (or ``cond``, ``class_``, ``y``). Weights: safetensors, or a ``.pt``
read with ``torch.load(weights_only=True)`` (a state dict, or one under "state_dict"/"model").

The student's module only ever runs in the sandbox (``sample_in_child``); this process reads back
the samples as arrays and scores them (``evaluate_model``).
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..course import EULER_STEPS, FLOW_GUIDANCE
from .contract import Limits

COND_NAMES = ("c", "cond", "class_", "y", "label", "labels")
MODEL_STEPS = EULER_STEPS // 6  # the page's default: 50 Euler steps, the course's 300 are minutes on a CPU
PER_DIGIT = 4
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


# ----------------------------------------------------------------------------- in the sandbox


def _velocity(net: torch.nn.Module):
    """(velocity model ``(x, t, cond)``, class conditioned?) from the forward's parameter names."""
    params = [
        p
        for p in inspect.signature(net.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    names = [p.name for p in params]
    cond_at = next((i for i, n in enumerate(names) if n in COND_NAMES), None)
    if cond_at is None:
        return (lambda x, t, cond=None: net(x, t)), False

    def model(x, t, cond):
        args = [x, None, None]
        args[cond_at] = cond
        args[3 - cond_at if cond_at in (1, 2) else 1] = t
        return net(*args[:3])

    return model, True


def load_weights(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load

        return load(path.read_bytes())
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path.name} holds a {type(state).__name__}, not a state dict")
    return state


def warm_up() -> None:
    """Run both weight loaders once on a tiny file: their lazy imports happen now, before the
    sandbox drops the privileges that can read the Python installation."""
    import io

    from safetensors.torch import load, save

    load(save({"w": torch.zeros(1)}))
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, buf)
    torch.load(io.BytesIO(buf.getvalue()), map_location="cpu", weights_only=True)


def sample_in_child(path, namespace, request, out_dir: Path, ctx, load_student, describe) -> int:
    """Build the student's net, load their weights, sample: writes out/model.json + .npz."""
    import engine.check.guard as guard
    from engine.guidance import CFGModel
    from engine.samplers import sample

    spec = request["model"]
    (out_dir / "model.start").write_text(str(time.time()))
    record, arrays = {"name": "model", "status": "ok", "cases": []}, {}
    try:
        guard.start_timer(ctx["limits"]["wall_s"])
        try:
            module = load_student(path, namespace)
            build = getattr(module, "build_unet", None)
            if not callable(build):
                raise ValueError("your file defines no build_unet() returning your nn.Module")
            net = build()
            if not isinstance(net, torch.nn.Module):
                raise ValueError(f"build_unet() returned a {type(net).__name__}, not an nn.Module")
            net.load_state_dict(load_weights(path.parent / spec["weights"]))
            net.float().eval()
            model, conditional = _velocity(net)
            noise = torch.from_numpy(ctx["arrays"]["noise"])
            labels = torch.from_numpy(ctx["arrays"]["labels"]).long()
            cond = torch.nn.functional.one_hot(labels, 10).float() if conditional else None
            if conditional:
                model = CFGModel(model, torch.zeros(1, 10), spec["guidance"])
            with torch.no_grad():
                traj = sample(model, noise, "euler", spec["steps"], cond=cond, record=False)
            arrays["samples"] = traj.final.detach().float().numpy()
            record["conditional"] = conditional
        finally:
            guard.stop_timer()
    except BaseException as e:  # noqa: BLE001 -- the student's exception is the result
        record |= {"status": "error", "error": describe(e, str(path), ctx["limits"])}
    np.savez(out_dir / "model.npz", **arrays)
    (out_dir / "model.json").write_text(json.dumps(record))
    return 0


# ----------------------------------------------------------------------------- in the checker


@dataclass
class ModelScore:
    name: str
    samples: np.ndarray  # (N, 28, 28) in [0, 1]
    labels: np.ndarray | None
    accuracy: float | None
    fd: float
    fd_floor: float
    seconds: float


@dataclass
class ModelReport:
    status: str  # "pass" (sampled and scored) or "error"
    message: str
    yours: ModelScore | None = None
    shipped: ModelScore | None = None
    notes: list = field(default_factory=list)


@lru_cache(maxsize=2)
def _classifier(root: str | None):
    from ..adapters import load_builtin

    net, _, _ = load_builtin("classifier", None if root is None else Path(root))
    return net.eval()


def score(
    name: str, images: torch.Tensor, labels: torch.Tensor | None, seconds: float, root: str | None, seed: int
) -> ModelScore:
    """Accuracy (class models: the classifier reads the asked digit) and Fréchet distance."""
    from ..classifier import classify
    from ..evaluate import fd_to_test

    clf = _classifier(root)
    images = images.float().clamp(0, 1)
    acc = None if labels is None else float((classify(clf, images) == labels).float().mean())
    fd = fd_to_test(clf, images, labels, seed)
    return ModelScore(
        name,
        images[:, 0].numpy(),
        None if labels is None else labels.numpy(),
        acc,
        fd["fd"],
        fd["fd_floor"],
        round(seconds, 1),
    )


@lru_cache(maxsize=8)
def shipped_score(conditional: bool, steps: int, per_digit: int, seed: int, root: str | None) -> ModelScore:
    """The shipped flow model (flow-class with CFG, or flow-time) on the same noise and steps."""
    from ..adapters import FlowModel, load_builtin
    from ..guidance import CFGModel
    from ..samplers import sample

    name = "flow-class" if conditional else "flow-time"
    net, cfg, _ = load_builtin(name, None if root is None else Path(root))
    flow = FlowModel(net.float().eval(), cfg)
    noise, labels = _inputs(per_digit, seed)
    model = CFGModel(flow, flow.null_cond(1), FLOW_GUIDANCE) if conditional else flow
    t0 = time.monotonic()
    traj = sample(
        model, noise, "euler", steps, cond=flow.encode(labels) if conditional else None, record=False
    )
    return score(name, traj.final, labels if conditional else None, time.monotonic() - t0, root, seed)


def _inputs(per_digit: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.arange(10).repeat_interleave(per_digit)
    return torch.randn(len(labels), 1, 28, 28, generator=torch.Generator().manual_seed(seed)), labels


def evaluate_model(
    source: str,
    weights: bytes,
    weights_name: str,
    lab_spec: dict | None = None,
    steps: int = MODEL_STEPS,
    per_digit: int = PER_DIGIT,
    seed: int = 0,
    limits: Limits = Limits(wall_s=600, cpu_s=1200),
    root: str | None = None,
    progress=None,
    scored: bool = True,
) -> ModelReport:
    """Sample the student's model in the sandbox and score it next to the shipped one (with
    ``scored=False`` only sample it: the report then says whether that worked)."""
    from .sandbox import run as run_sandbox

    suffix = Path(weights_name).suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        return ModelReport("error", f"weights must be {', '.join(WEIGHT_SUFFIXES)}; got {weights_name!r}")
    noise, labels = _inputs(per_digit, seed)
    request = {
        "mode": "model",
        "lab": lab_spec or {"kind": "tiny"},
        "cases": [],
        "rename": {},
        "model": {"steps": int(steps), "weights": "weights" + suffix, "guidance": FLOW_GUIDANCE},
    }
    t0 = time.monotonic()
    child = run_sandbox(
        source,
        request,
        {"noise": noise.numpy(), "labels": labels.numpy()},
        limits,
        ["model"],
        progress,
        files={"weights" + suffix: weights},
    )
    record = child.records.get("model") or {"status": "error", "error": child.import_error or {}}
    if record.get("status") != "ok" or "samples" not in child.arrays.get("model", {}):
        err = record.get("error") or {}
        lines = "; ".join(x.strip() for x in err.get("lines", [])[:-1])
        msg = str(err.get("message", "no samples came back")) + (f" ({lines})" if lines else "")
        return ModelReport("error", f"your model could not be sampled: {msg}", notes=child.notes)
    samples = torch.from_numpy(child.arrays["model"]["samples"])
    if samples.shape != noise.shape or not torch.isfinite(samples).all():
        return ModelReport(
            "error",
            f"your model's samples have shape {tuple(samples.shape)} or are not finite; "
            f"expected {tuple(noise.shape)}",
            notes=child.notes,
        )
    conditional = bool(record.get("conditional"))
    if not scored:
        return ModelReport("pass", f"sampled {len(samples)} images", notes=child.notes)
    if progress:
        progress(0.9, "scoring with the lab's classifier")
    yours = score("your model", samples, labels if conditional else None, time.monotonic() - t0, root, seed)
    shipped = shipped_score(conditional, int(steps), per_digit, seed, root)
    kind = f"class-conditioned (CFG γ = {FLOW_GUIDANCE:g})" if conditional else "time-conditioned"
    return ModelReport(
        "pass", f"your {kind} model, {len(samples)} samples, {steps} Euler steps", yours, shipped, child.notes
    )
