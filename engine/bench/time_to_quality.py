"""Time to quality (#21): how soon a fresh run gives good digits (flow-class) or clean ones (the
denoiser), and ``bench_time_to_quality``: both recipes of both, measured in one run.

A run is trained in segments of ``eval_every`` steps (``train(..., resume=True, max_steps=k)``:
resumption is exact, so the segments change nothing) and scored between them from its
checkpoint: ``per_label`` digits of each class with CFG (the course's gamma), drawn from fixed
noise by a fast solver, then the lab's classifier's accuracy and Fréchet distance
(``evaluate.fd_to_test``). The shipped model is scored by the same solver and noise, so the
two distances compare. The time is the run's own training time (the checkpoint's
``elapsed_s``), scoring excluded. Quality is reached at the first score with accuracy >=
``min_accuracy``, every digit >= ``min_digit`` and FD <= (1 + ``fd_margin``) x the shipped one
(``flow_scorer``). The denoiser's bar is test PSNR at its sigma (``denoiser_scorer``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..adapters import FlowModel, load_builtin
from ..checkpoints import atomic_write_text, load_state_dict_checked, load_tensors
from ..classifier import classify
from ..config import TrainConfig, build_model
from ..course import FLOW_GUIDANCE
from ..device import cpu_amp
from ..evaluate import fd_to_test, per_class_accuracy
from ..flow import crowded_grid
from ..sampling import digit_labels, sample_flow
from ..train import train

_BOOKKEEPING = ("step", "train_s", "score_s", "reached")
Scorer = Callable[[torch.nn.Module, TrainConfig], dict]  # a dict with "reached"
SOLVER = "midpoint"  # 8 steps on a grid crowded near the data: the course's 300 Euler steps' quality
SOLVER_STEPS = 8


def draw(net: torch.nn.Module, cfg: TrainConfig, per_label: int,
         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images in [0, 1], labels): ``per_label`` CFG samples per class from fixed noise with the
    harness's solver; also what the Training lab draws of a run as it learns."""
    flow = FlowModel(net.eval(), cfg, cpu_amp())
    labels = digit_labels(range(10), per_label)
    gen = torch.Generator().manual_seed(seed)
    traj = sample_flow(flow, labels, len(labels), guidance=FLOW_GUIDANCE, generator=gen, record=False,
                       sampler=SOLVER, ts=crowded_grid(SOLVER_STEPS))
    return traj.final.clamp(0, 1), labels


def score_net(net: torch.nn.Module, cfg: TrainConfig, classifier, per_label: int = 20, seed: int = 0) -> dict:
    """Accuracy (overall, worst digit) and FD of ``per_label`` CFG samples per class."""
    images, labels = draw(net, cfg, per_label, seed)
    acc = per_class_accuracy(classify(classifier, images), labels)
    fd = fd_to_test(classifier, images, labels, seed)
    digits = [acc[str(c)] for c in range(10)]
    return {"accuracy": round(acc["overall"], 4), "worst_digit": round(min(digits), 4),
            "fd": fd["fd"], "fd_floor": fd["fd_floor"]}


def net_from_checkpoint(path: Path, cfg: TrainConfig) -> torch.nn.Module:
    """The weights a run would ship from its checkpoint now: the EMA's when it keeps one."""
    tensors, _ = load_tensors(path)
    prefix = "ema.module." if cfg.ema_decay > 0 else "model."
    net = build_model(cfg)
    load_state_dict_checked(net, {k[len(prefix):]: v.float() for k, v in tensors.items()
                                  if k.startswith(prefix)}, path)
    return net


def flow_scorer(classifier, shipped_fd: float, fd_margin: float = 0.25, min_accuracy: float = 0.97,
                min_digit: float = 0.90, per_label: int = 20) -> Scorer:
    """Scores a class-conditioned flow; "reached": the bar above."""

    def score(net, cfg) -> dict:
        s = score_net(net, cfg, classifier, per_label)
        s["reached"] = (s["accuracy"] >= min_accuracy and s["worst_digit"] >= min_digit
                        and s["fd"] <= (1 + fd_margin) * shipped_fd)
        return s

    return score


def denoiser_scorer(target_db: float = 20.0, count: int = 1000) -> Scorer:
    """Scores a denoiser: PSNR of D(x + sigma eps) against x on ``count`` test digits at its sigma;
    "reached": at least ``target_db``."""
    from ..data import load_mnist
    from ..forward import add_noise_sigma
    from ..metrics import psnr

    clean = load_mnist("test").images[:count]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))

    @torch.inference_mode()
    def score(net, cfg) -> dict:
        noisy = add_noise_sigma(clean, cfg.sigma, noise=noise)
        den = torch.cat([net.eval()(b) for b in noisy.split(250)])
        db = round(float(psnr(den, clean)), 2)
        return {"psnr": db, "reached": db >= target_db}

    return score


def measure(cfg: TrainConfig, out: Path, eval_every: int, score: Scorer,
            *, stop_when_reached: bool = False, max_train_s: float = float("inf"),
            log: Callable[[str], None] = print) -> dict:
    """Train ``cfg`` into ``out`` in segments, scoring after each (``score(net, cfg)``, a dict
    with "reached"); the scores and when (training seconds and steps) the bar was first met."""
    out.mkdir(parents=True, exist_ok=True)
    scores_path = out / "time_to_quality.json"
    scores = json.loads(scores_path.read_text())["scores"] if scores_path.exists() else []
    done = scores[-1]["step"] if scores else 0
    reached = next((s for s in scores if s["reached"]), None)
    while True:
        manifest = train(cfg, out, resume=True, max_steps=done + eval_every, checkpoint_every_s=1e9)
        meta = load_tensors(out / "checkpoint.safetensors")[1]
        done = meta["global_step"]
        t0 = time.perf_counter()
        s = score(net_from_checkpoint(out / "checkpoint.safetensors", cfg), cfg)
        s |= {"step": done, "train_s": round(meta["elapsed_s"], 1),
              "score_s": round(time.perf_counter() - t0, 1)}
        scores.append(s)
        reached = reached or (s if s["reached"] else None)
        record = {"config": cfg.__dict__, "scores": scores}
        atomic_write_text(scores_path, json.dumps(record, indent=1, default=list))
        shown = ", ".join(f"{k} {v}" for k, v in s.items() if k not in _BOOKKEEPING)
        log(f"{cfg.name}: step {done} train {s['train_s']:.0f} s {shown}" + (" REACHED" * s["reached"]))
        over = s["train_s"] > max_train_s
        if manifest.get("status") == "finished" or (reached and stop_when_reached) or over:
            break
    return {"name": cfg.name, "scores": scores, "reached_at_s": reached and reached["train_s"],
            "reached_at_step": reached and reached["step"]}


def shipped_score(per_label: int = 20, root: Path | None = None) -> dict:
    """The shipped flow-class, scored as the runs are."""
    net, cfg, _ = load_builtin("flow-class", root)
    classifier, _, _ = load_builtin("classifier", root)
    return score_net(net, cfg, classifier, per_label)


def bench_time_to_quality(folder: Path, budget_s: float = 600, log: Callable[[str], None] = print) -> list:
    """Both recipes of flow-class and of the denoiser, each from random initialisation into
    ``folder``, until its bar or ``budget_s`` of training: one ``BenchResult`` per model, the
    class recipe's seconds against the course's (a lower bound when the course's run did not get
    there within the budget)."""
    from dataclasses import replace

    from ..config import PRESETS, with_recipe
    from .common import BenchResult

    classifier, _, _ = load_builtin("classifier")
    shipped = shipped_score()
    scorers = {"flow-class": (flow_scorer(classifier, shipped["fd"]), 75, 150),
               "denoiser": (denoiser_scorer(), 50, 40)}
    results = []
    for name, (scorer, every_class, every_course) in scorers.items():
        runs = {}
        for recipe, every in (("class", every_class), ("course", every_course)):
            cfg = replace(with_recipe(PRESETS[name], recipe), snapshot_epochs=())
            runs[recipe] = measure(cfg, folder / f"{name}-{recipe}", every, scorer, stop_when_reached=True,
                                   max_train_s=budget_s, log=log)
        ours, ref = runs["class"]["reached_at_s"], runs["course"]["reached_at_s"]
        last = runs["course"]["scores"][-1]
        bar = ("accuracy >= 97 % (every digit >= 90 %), FD <= 1.25 x shipped" if name == "flow-class"
               else "test PSNR >= 20 dB at sigma 0.5")
        course = (f"course: reached at step {runs['course']['reached_at_step']}" if ref else
                  f"course: not reached in {last['train_s']:.0f} s of training (step {last['step']}), "
                  "so its time is a lower bound")
        mine = (f"class: reached at step {runs['class']['reached_at_step']}" if ours else
                f"class: NOT reached in {runs['class']['scores'][-1]['train_s']:.0f} s")
        detail = f"bar: {bar}; {mine}; {course}"
        ref = ref or last["train_s"]
        ours = ours or runs["class"]["scores"][-1]["train_s"]
        results.append(BenchResult(f"time to quality, {name}: class recipe vs the course's", "s training",
                                   ours, ref, ref / ours,
                                   "<= 600 s (stretch 300)" if name == "flow-class" else "<= 180 s", detail))
    return results
