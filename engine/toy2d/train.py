"""2D toy models (the 2D playground): a small MLP, its four objectives and a training loop that
runs in seconds on one CPU core.

The objectives use the MNIST models' conventions and code paths:

- ``ddpm``: eps-prediction, || eps_theta(x_t, t, c) - eps ||^2 with the cosine schedule
  (``engine.forward.eps_loss``). DDPM convention: x_0 is *data*, t counts down 999 -> 0.
- ``fm``: flow matching, || u_theta(x_t, t, c) - (x_1 - x_0) ||^2 on x_t = (1 - t) x_0 + t x_1
  (``engine.flow.flow_matching_loss``). Flow convention: x_0 is *noise*, x_1 data, t runs 0 -> 1.
- ``reflow``: rectified flow (Liu et al. 2023): sample (noise, sample) pairs with a trained flow
  model's ODE, then train again, from its weights, on those pairs instead of independent ones.
  The pairs' straight lines rarely cross, so the new flow's paths are nearly straight.
- ``ot-fm``: minibatch OT coupling (OT-CFM, Tong et al. 2023): inside each minibatch of
  ``ot_batch`` points, noise and data are paired by the exact optimal assignment for the squared
  distance (POT's ``ot.emd``). The pairs are made a pool at a time and each pool serves a few
  passes of training batches: solving a 128-point assignment for every batch (~3 ms on this CPU)
  would triple the training time.

A class condition is a one-hot vector (zeros = no class), dropped with probability p_uncond = 0.1
as in the course, so one model serves CFG (``engine.guidance.CFGModel``).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ..flow import flow_matching_loss
from ..forward import eps_loss
from ..samplers import sample
from ..schedule import NUM_TRAIN_TIMESTEPS, Schedule
from ..unet import one_hot

OBJECTIVES = ("ddpm", "fm", "reflow", "ot-fm")
OBJECTIVE_NAMES = {"ddpm": "DDPM (ε)", "fm": "flow matching", "reflow": "rectified flow (reflow)",
                   "ot-fm": "OT flow matching"}


@dataclass(frozen=True)
class ToyConfig:
    """Everything that defines a 2D training run (a clean cache key and a record of the run).
    Defaults: measured to reach the benchmark's quality on two moons in a few seconds."""

    objective: str = "fm"
    steps: int = 2000
    batch_size: int = 256
    lr: float = 5e-3
    hidden: int = 128
    depth: int = 4
    time_dim: int = 32
    num_classes: int = 0  # > 0: class-conditioned (CFG), with p_uncond dropout
    p_uncond: float = 0.1
    ot_batch: int = 128  # OT-FM: the minibatch the exact assignment is solved on (ot.emd is ~O(n^3))
    ot_pool: int = 4096  # OT-FM: pairs coupled at once, each pool serving ot_reuse passes of batches
    ot_reuse: int = 4
    reflow_pairs: int = 16384
    reflow_solver: str = "rk4"
    reflow_solver_steps: int = 16
    seed: int = 0

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose from {', '.join(OBJECTIVES)}")
        for name in ("steps", "batch_size", "hidden", "depth", "time_dim", "ot_batch", "ot_pool", "ot_reuse",
                     "reflow_pairs", "reflow_solver_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.p_uncond <= 1:
            raise ValueError(f"p_uncond must be in [0, 1], got {self.p_uncond}")

    @property
    def kind(self) -> str:
        return "ddpm" if self.objective == "ddpm" else "flow"


class ToyMLP(nn.Module):
    """u_theta(x, t[, c]) or eps_theta: [x, sin/cos(2 pi f t), one-hot c] -> MLP (SiLU) -> (B, 2).
    ``t`` is a float in [0, 1] (DDPM timesteps are divided by 1000 by ``ToyModel``)."""

    def __init__(self, hidden: int = 128, depth: int = 3, time_dim: int = 32, num_classes: int = 0,
                 generator: torch.Generator | None = None):
        super().__init__()
        half = time_dim // 2
        self.register_buffer("freqs", 2 * math.pi * torch.logspace(0, math.log10(64), half))
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Linear(2 + 2 * half + num_classes, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, 2))
        self.net = nn.Sequential(*layers)
        if generator is not None:  # torch's default init, U(+-1/sqrt(fan_in)), drawn from ``generator``
            with torch.no_grad():
                for layer in self.net:
                    if isinstance(layer, nn.Linear):
                        bound = 1 / math.sqrt(layer.in_features)
                        layer.weight.uniform_(-bound, bound, generator=generator)
                        layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        a = t.reshape(-1, 1).float() * self.freqs
        parts = [x, a.sin(), a.cos()]
        if self.num_classes:
            parts.append(c if c is not None else x.new_zeros(x.shape[0], self.num_classes))
        return self.net(torch.cat(parts, dim=1))


@dataclass(eq=False)
class ToyModel:
    """A trained 2D net behind the sampler contract: ``model(x_t, t, cond) -> prediction`` for
    points (B, 2) or (B, 2, 1, 1) (the course's DDPM loop and DDIM want images). ``kind``:
    "flow" (t a float in [0, 1], predicts u) or "ddpm" (t integer timesteps, predicts eps)."""

    net: ToyMLP
    kind: str
    config: ToyConfig
    schedule: Schedule | None = None

    @property
    def num_classes(self) -> int:
        return self.net.num_classes

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        b = x_t.shape[0]
        time_in = t.float() / NUM_TRAIN_TIMESTEPS if self.kind == "ddpm" else t.float()
        return self.net(x_t.reshape(b, 2).float(), time_in.expand(b), cond).reshape(x_t.shape)

    def encode(self, labels) -> torch.Tensor:
        if not self.num_classes:
            raise ValueError("this model was trained without classes: retrain it with class labels for CFG")
        return one_hot(torch.as_tensor(labels, dtype=torch.long).reshape(-1), self.num_classes)

    def null_cond(self, n: int = 1) -> torch.Tensor:
        return torch.zeros(n, self.num_classes)


def build(cfg: ToyConfig, generator: torch.Generator | None = None) -> ToyModel:
    """A fresh model for ``cfg``, its weights drawn from ``generator`` (default: seeded by cfg.seed)."""
    generator = generator or torch.Generator().manual_seed(cfg.seed)
    net = ToyMLP(cfg.hidden, cfg.depth, cfg.time_dim, cfg.num_classes, generator)
    return ToyModel(net, cfg.kind, cfg, Schedule.cosine() if cfg.kind == "ddpm" else None)


_THREADS = {"lock": threading.Lock(), "users": 0, "base": torch.get_num_threads()}


@contextmanager
def torch_threads(n: int | None):
    """Run a block with ``n`` intra-op threads. A 128-wide MLP on a batch of 256 gains nothing
    from threads, and on a busy 2-core machine two threads made a training step 30x slower
    (measured 45 ms vs 1.5 ms); ``None`` leaves the setting alone.

    The setting is partly process-wide (torch's default for new threads) and a server runs many
    sessions in threads: the last block to end restores the count the process had when this
    module loaded, so overlapping blocks cannot leave it at ``n`` for good."""
    if n is None:
        yield
        return
    with _THREADS["lock"]:
        _THREADS["users"] += 1
        torch.set_num_threads(n)
    try:
        yield
    finally:
        with _THREADS["lock"]:
            _THREADS["users"] -= 1
            if _THREADS["users"] == 0:
                torch.set_num_threads(_THREADS["base"])


# ----------------------------------------------------------------------------- couplings


def ot_pairing(x_0: torch.Tensor, x_1: torch.Tensor) -> torch.Tensor:
    """The permutation ``perm`` that pairs noise x_0[i] with data x_1[perm[i]] at the least total
    squared distance: the exact OT plan between two uniform batches of equal size (POT's network
    simplex, ``ot.emd``), which for this problem is a permutation matrix / n."""
    import ot

    if x_0.shape != x_1.shape:
        raise ValueError(f"OT pairs batches of one size, got {tuple(x_0.shape)} and {tuple(x_1.shape)}")
    a = x_0.detach().double().cpu().numpy()
    b = x_1.detach().double().cpu().numpy()
    n = a.shape[0]
    plan = ot.emd(ot.unif(n), ot.unif(n), ot.dist(a, b))
    return torch.from_numpy(plan.argmax(axis=1))


def ot_pairing_blocks(x_0: torch.Tensor, x_1: torch.Tensor, block: int) -> torch.Tensor:
    """``ot_pairing`` on consecutive sub-batches of ``block`` points (the minibatch of OT-CFM)."""
    perm = torch.arange(x_0.shape[0])
    for s in range(0, x_0.shape[0], block):
        e = min(s + block, x_0.shape[0])
        perm[s:e] = s + ot_pairing(x_0[s:e], x_1[s:e])
    return perm


def transport_cost(x_0: torch.Tensor, x_1: torch.Tensor) -> float:
    """Mean squared distance of the pairs (x_0[i], x_1[i])."""
    return float(((x_1 - x_0) ** 2).sum(dim=1).mean())


class Pairs(NamedTuple):
    """Coupled training pairs: noise z (N, 2), the data point it is paired with (N, 2), labels or
    None. Reflow: the first flow's sample from z; OT-FM: the OT-assigned data point. A class
    model's reflow also keeps ``x_1_null``, the first flow's *unconditional* sample from z: the
    pair its null branch learns, or the null branch would see z paired with every class's sample
    (crossing lines again)."""

    z: torch.Tensor
    x_1: torch.Tensor
    labels: torch.Tensor | None
    x_1_null: torch.Tensor | None = None


def reflow_pairs(base: ToyModel, data, cfg: ToyConfig, generator: torch.Generator,
                 callback: Callable[[int, int], None] | None = None) -> Pairs:
    """(noise, sample) pairs from the flow ``base``: its ODE (``cfg.reflow_solver``) from N(0, I).
    A class model samples each pair from a class drawn as often as in ``data`` (no guidance), and
    from its null class too (``Pairs.x_1_null``)."""
    n = cfg.reflow_pairs
    z = torch.randn(n, 2, generator=generator)
    labels = data.sample(n, generator)[1] if base.num_classes else None
    out, null = [], []
    chunk = 4096

    def solve(x, cond):
        traj = sample(base, x, cfg.reflow_solver, cfg.reflow_solver_steps, cond=cond, record=False)
        return traj.final.float()

    for s in range(0, n, chunk):
        if labels is None:
            out.append(solve(z[s:s + chunk], None))
        else:
            out.append(solve(z[s:s + chunk], base.encode(labels[s:s + chunk])))
            null.append(solve(z[s:s + chunk], base.null_cond(min(chunk, n - s))))
        if callback is not None:
            callback(min(s + chunk, n), n)
    return Pairs(z, torch.cat(out), labels, torch.cat(null) if null else None)


def ot_pool(data, cfg: ToyConfig, generator: torch.Generator) -> Pairs:
    """``cfg.ot_pool`` fresh noise and data points, paired by ``ot_pairing`` within each minibatch
    of ``cfg.ot_batch`` (labels travel with their data point)."""
    x_1, labels = data.sample(cfg.ot_pool, generator)
    z = torch.randn(cfg.ot_pool, 2, generator=generator)
    perm = ot_pairing_blocks(z, x_1, cfg.ot_batch)
    return Pairs(z, x_1[perm], None if labels is None else labels[perm])


# ----------------------------------------------------------------------------- training


class TrainStep(NamedTuple):
    """What the training loop hands its callback after each step (progress bars, live curves)."""

    step: int  # 1-based
    total: int
    loss: float
    stage: str  # "train", or "pairs" while reflow samples its pairs (loss is nan then)
    model: ToyModel | None = None  # the model being trained (live checks; None while sampling pairs)


@dataclass(frozen=True, eq=False)
class TrainResult:
    model: ToyModel
    losses: np.ndarray  # (steps,) the loss of every step
    seconds: float  # wall time, pair sampling included
    base: ToyModel | None = None  # reflow: the flow it was distilled from


def _keep(model: ToyModel, labels, cfg: ToyConfig, gen: torch.Generator) -> torch.Tensor | None:
    """Which classes stay (the rest become all-zero one-hots: CFG's null branch), each dropped
    with probability p_uncond; None for a model without classes."""
    if not model.num_classes or labels is None:
        return None
    return torch.rand(labels.shape[0], generator=gen) >= cfg.p_uncond


def batch_loss(model: ToyModel, cfg: ToyConfig, data, gen: torch.Generator, pairs: Pairs | None = None):
    """The loss of one batch of ``cfg.objective``; every random draw comes from ``gen``."""
    b = cfg.batch_size
    if pairs is not None:  # reflow, OT-FM: coupled pairs
        idx = torch.randint(0, pairs.z.shape[0], (b,), generator=gen)
        noise, x_1 = pairs.z[idx], pairs.x_1[idx]
        labels = None if pairs.labels is None else pairs.labels[idx]
    else:
        x_1, labels = data.sample(b, gen)
        noise = torch.randn(b, 2, generator=gen)
    keep = _keep(model, labels, cfg, gen)
    c = None if keep is None else one_hot(labels, model.num_classes) * keep.float()[:, None]
    if keep is not None and pairs is not None and pairs.x_1_null is not None:
        x_1 = torch.where(keep[:, None], x_1, pairs.x_1_null[idx])
    if cfg.objective == "ddpm":  # x_0 = data here (DDPM convention), noise = eps
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (b,), generator=gen)
        return eps_loss(model, x_1, t, noise, model.schedule, c)
    t = torch.rand(b, generator=gen)
    return flow_matching_loss(model, x_1, noise, t, c)


def train(cfg: ToyConfig, data, callback: Callable[[TrainStep], None] | None = None,
          base: ToyModel | None = None, threads: int | None = 1) -> TrainResult:
    """Train ``cfg.objective`` on ``data`` (anything with ``sample(n, generator) -> (x (n, 2),
    labels (n,) or None)``): Adam with a cosine decay of the learning rate, fp32. Reflow needs the
    flow ``base`` it straightens (trained here first when None). Reproducible from ``cfg.seed``."""
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    with torch_threads(threads):
        pairs = None
        if cfg.objective == "reflow":
            if base is None:
                base = train(replace(cfg, objective="fm"), data, callback, threads=None).model
            if base.kind != "flow":
                raise ValueError("reflow straightens a flow model; got a DDPM")
            report = None if callback is None else (lambda i, n: callback(TrainStep(i, n, math.nan, "pairs")))
            pairs = reflow_pairs(base, data, cfg, gen, report)
            model = ToyModel(copy.deepcopy(base.net), "flow", cfg)
        else:
            model = build(cfg, gen)
        model.net.train()
        opt = torch.optim.Adam(model.net.parameters(), lr=cfg.lr)
        losses = np.empty(cfg.steps, dtype=np.float32)
        pool_steps = max(1, cfg.ot_pool * cfg.ot_reuse // cfg.batch_size)
        for step in range(cfg.steps):
            if cfg.objective == "ot-fm" and step % pool_steps == 0:
                pairs = ot_pool(data, cfg, gen)
            # 1. learning rate: cosine decay to 5 % of cfg.lr
            for group in opt.param_groups:
                group["lr"] = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
            # 2. one batch: loss, gradient, update
            loss = batch_loss(model, cfg, data, gen, pairs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[step] = loss.item()
            if callback is not None:
                callback(TrainStep(step + 1, cfg.steps, float(losses[step]), "train", model))
        model.net.eval()
    return TrainResult(model, losses, time.perf_counter() - t0, base if cfg.objective == "reflow" else None)
