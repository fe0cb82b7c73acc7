"""Sampling 2D models through the sampler contract, and the numbers that compare them.

Flow matching: x_0 ~ N(0, I) is noise, x_1 data, t runs 0 -> 1, the model predicts u and
``engine.samplers.sample`` integrates it. DDPM: x_0 is *data*, t counts down 990 -> 0, the model
predicts eps; the course's strided loop (``engine.denoise``) and DDIM (``engine.diffusers_samplers``)
want images, so points travel as (N, 2, 1, 1). Every sampler starts from the noise it is given,
so runs from one N(0, I) draw compare side by side. Quality: MMD and sliced Wasserstein distance
to held-out points, each beside the floor two independent draws of the data reach; straightness:
mean path length over mean chord.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..course import COURSE_DDPM_STEPS
from ..samplers import FLOW_SAMPLERS
from ..samplers import sample as sample_with
from ..trajectory import StepCallback, Trajectory
from .data import BOX

DDPM_SAMPLERS = ("ddpm", "ddim")
FLOW_STEPS = 50  # the playground's default: 2D flows need far fewer steps than digits


def sample(model, noise: torch.Tensor, sampler: str | None = None, steps: int | None = None,
           labels=None, guidance: float | None = None, generator: torch.Generator | None = None,
           callback: StepCallback | None = None, record: bool = True) -> Trajectory:
    """Sample a 2D model (``engine.toy2d.train.ToyModel``) from ``noise`` (N, 2) ~ N(0, I).

    Flow models: an ODE solver of ``engine.samplers`` ("euler", "midpoint", "heun", "rk4"; ``steps``, default
    50). DDPM: "ddpm" is the course's strided loop (``engine.denoise.iterative_denoise``, ``steps``
    evenly spaced from 990: 33 gives the course's stride 30), "ddim" is DDIM with eta = 0
    (``engine.diffusers_samplers``, no thresholding: that is for pixels). ``labels`` (an int or (N,))
    condition a class model; with ``guidance`` gamma they go through ``CFGModel``. Returns the
    ``Trajectory`` with states ``x`` (K, N, 2); ``x[0]`` is ``noise``."""
    from ..guidance import CFGModel

    n = noise.shape[0]
    if noise.ndim != 2 or noise.shape[1] != 2:
        raise ValueError(f"noise must be (N, 2) points, got shape {tuple(noise.shape)}")
    cond, net = None, model
    if labels is not None:
        lab = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        cond = model.encode(lab.expand(n) if lab.numel() == 1 else lab)
        if guidance is not None:
            net = CFGModel(model, model.null_cond(1), guidance)
    elif guidance is not None:
        raise ValueError("classifier-free guidance needs a class label")
    common = {"cond": cond, "generator": generator, "callback": callback, "record": record}
    if model.kind == "flow":
        sampler = sampler or "euler"
        if sampler not in FLOW_SAMPLERS:
            raise ValueError(f"a flow model samples with {', '.join(FLOW_SAMPLERS)}, not {sampler!r}")
        traj = sample_with(net, noise.float(), sampler, steps or FLOW_STEPS, **common)
    else:
        sampler = sampler or "ddpm"
        if sampler not in DDPM_SAMPLERS:
            raise ValueError(f"a DDPM samples with {', '.join(DDPM_SAMPLERS)}, not {sampler!r}")
        x = noise.float().reshape(n, 2, 1, 1)
        # the course's 33 steps, evenly spaced; no thresholding in DDIM: that is for pixels
        traj = sample_with(net, x, sampler, steps or COURSE_DDPM_STEPS, **common, schedule=model.schedule,
                           threshold=False)
    k = traj.x.shape[0]
    x_hat = None if traj.x_hat is None else traj.x_hat.reshape(k, n, 2)
    return replace(traj, x=traj.x.reshape(k, n, 2), x_hat=x_hat, value_range=(-BOX, BOX))


@torch.inference_mode()
def velocity_field(model, points: torch.Tensor, times, labels=None,
                   guidance: float | None = None) -> torch.Tensor:
    """The field that moves particles at each state time of a trajectory, in data units per whole
    trip (progress 0 -> 1): (K, P, 2) at ``points`` (P, 2). Flow: u_theta(x, t). DDPM: the
    deterministic (DDIM) step from ``times[k]`` to ``times[k + 1]`` divided by its share of the
    trip, 1 / (K - 1) (the last state repeats the one before)."""
    from ..denoise import predict_x0
    from ..guidance import CFGModel

    p = points.shape[0]
    cond, net = None, model
    if labels is not None:
        cond = model.encode(torch.as_tensor(labels, dtype=torch.long).reshape(-1).expand(p))
        if guidance is not None:
            net = CFGModel(model, model.null_cond(1), guidance)
    times = list(times)
    out = []
    for k, t in enumerate(times):
        if model.kind == "flow":
            out.append(net(points, torch.full((p,), float(t)), cond).float())
            continue
        if k == len(times) - 1:
            out.append(out[-1] if out else torch.zeros_like(points))
            continue
        t, t_next = int(t), int(times[k + 1])
        eps = net(points, torch.full((p,), t, dtype=torch.long), cond).float()
        x0 = predict_x0(points, eps, t, model.schedule)
        ab = float(model.schedule.alphas_cumprod[t_next]) if t_next >= 0 else 1.0
        nxt = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps
        out.append((nxt - points) * (len(times) - 1))
    return torch.stack(out)


# ----------------------------------------------------------------------------- numbers


BANDWIDTHS = (0.1, 0.2, 0.5, 1.0, 2.0)  # the box is [-4, 4]^2: fine detail to the whole shape


def kernel_means(x: torch.Tensor, y: torch.Tensor, bandwidths=BANDWIDTHS) -> np.ndarray:
    """mean_ij exp(-|x_i - y_j|^2 / (2 h^2)) for each bandwidth h (float32; torch's sums are
    pairwise, ~1e-6 relative error, far below what separates two models).
    Exponents are clamped at -80 (e^-80 ~ 2e-35 changes no mean): below, float32 results turn
    denormal, and exp on them ran 6x slower (53 vs 8 ms for 2000 x 2000 points)."""
    d = torch.cdist(x.float(), y.float()).pow_(2)
    return np.array([float(d.mul(-0.5 / (h * h)).clamp_(min=-80.0).exp_().sum()) / d.numel()
                     for h in bandwidths])


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidths=BANDWIDTHS, yy: np.ndarray | None = None) -> float:
    """Maximum mean discrepancy with a sum of Gaussian kernels (the biased V-statistic, so two
    draws of one distribution give a small positive floor, not a noisy zero): sqrt(MMD^2).
    ``yy``: ``kernel_means(y, y)`` when already known."""
    yy = kernel_means(y, y, bandwidths) if yy is None else yy
    total = kernel_means(x, x, bandwidths) + yy - 2 * kernel_means(x, y, bandwidths)
    return math.sqrt(max(float(total.sum()), 0.0))


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, projections: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance: the mean over random directions of the 1D W1 between the
    projections (sorted quantiles; the sets may differ in size). Directions are fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(projections, 2, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=1, keepdim=True)
    px, py = (x.double() @ d.T).sort(dim=0).values, (y.double() @ d.T).sort(dim=0).values
    q = torch.linspace(0, 1, max(px.shape[0], py.shape[0]), dtype=torch.float64)
    qx = torch.quantile(px, q, dim=0) if px.shape[0] != q.shape[0] else px
    qy = torch.quantile(py, q, dim=0) if py.shape[0] != q.shape[0] else py
    return float((qx - qy).abs().mean())


def straightness(states) -> float:
    """Mean path length over mean straight-line distance between the endpoints, for states
    (K, N, 2): 1 for straight paths, larger the more they bend or wander."""
    s = torch.as_tensor(np.asarray(states), dtype=torch.float64)
    length = (s[1:] - s[:-1]).norm(dim=-1).sum(dim=0)
    chord = (s[-1] - s[0]).norm(dim=-1)
    return float(length.mean() / chord.mean().clamp(min=1e-12))


def nearest_distance(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """For each point of ``x``, the distance to its nearest neighbour in ``ref`` (copies: ~0)."""
    return torch.cdist(x.double(), ref.double()).min(dim=1).values


@dataclass(frozen=True)
class Quality:
    mmd: float
    mmd_floor: float  # between two independent draws of the data: the best a model can show
    swd: float
    swd_floor: float


class Reference:
    """Held-out points of a data set (of one class, if given), with what MMD needs of them and
    the floors computed once: ``reference.quality(samples)`` for many sample sets is cheap."""

    def __init__(self, data, n: int, seed: int = 0, label: int | None = None):
        self.points = held_out(data, n, seed, label)
        self.yy = kernel_means(self.points, self.points)
        other = held_out(data, n, seed + 1, label)
        self.mmd_floor = mmd(other, self.points, yy=self.yy)
        self.swd_floor = sliced_wasserstein(other, self.points)

    def quality(self, samples: torch.Tensor) -> Quality:
        return Quality(mmd(samples, self.points, yy=self.yy), self.mmd_floor,
                       sliced_wasserstein(samples, self.points), self.swd_floor)


def quality(samples: torch.Tensor, data, seed: int = 0, labels=None) -> Quality:
    """MMD and sliced Wasserstein of ``samples`` to fresh held-out points of ``data`` (of class
    ``labels`` if given), each with the floor two independent draws of the data give."""
    return Reference(data, samples.shape[0], seed, labels).quality(samples)


def held_out(data, n: int, seed: int, label: int | None = None) -> torch.Tensor:
    """``n`` points of ``data`` drawn with a generator seeded apart from training's (of class
    ``label`` only, if given)."""
    g = torch.Generator().manual_seed(10_007 + 7919 * seed)
    if label is None:
        return data.sample(n, g)[0]
    got, total = [], 0
    for _ in range(200):
        x, y = data.sample(max(n, 256) * max(2, data.num_classes), g)
        keep = x[y == int(label)]
        got.append(keep)
        total += keep.shape[0]
        if total >= n:
            break
    out = torch.cat(got)
    if out.shape[0] < n:
        raise ValueError(f"class {label} is too rare in this data set to draw {n} points")
    return out[:n]
