"""What the playground samples from its trained models: every objective's run from one noise
draw with the field at each kept state (the animation), quality against the number of steps,
and class-guided samples (CFG). Each function takes the seed: the same inputs give the same
numbers, so the page can keep the results (``Trained.memo``).

Flow matching (Part B): x_0 is noise, x_1 data, t runs 0 -> 1. DDPM (Part A): x_0 is data, t
counts down 990 -> 0.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from engine.course import FLOW_GUIDANCE
from engine.toy2d.data import BOX
from engine.toy2d.sample import Quality, Reference, held_out, mmd, sample, straightness, velocity_field
from engine.toy2d.train import torch_threads

from .training import Trained, label

SAMPLING = {"ddpm": ("ddpm", 33), "fm": ("euler", 50), "reflow": ("euler", 50), "ot-fm": ("euler", 50)}
HUES = 12  # particles are coloured by the direction of their starting noise: where each region goes
FEW_STEPS = (1, 2, 4, 8, 16, 32)
GAMMAS = (0.0, 1.0, 2.0, FLOW_GUIDANCE)  # the last is the course's flow gamma

Progress = Callable[[float, str], None]


@dataclass(frozen=True, eq=False)
class Run:
    """One objective sampled for the page: states (K, N, 2) (every state of the run), the
    velocity field on the arrow grid at each state (K, G, G, 2), and its numbers."""

    objective: str
    sampler: str
    steps: int
    nfe: int
    times: tuple
    states: np.ndarray
    field: np.ndarray
    straightness: float
    quality: Quality


def arrow_grid(g: int) -> torch.Tensor:
    """(g*g, 2) points of a regular grid inside the box, row-major from the top left."""
    c = torch.linspace(-BOX, BOX, g + 2)[1:-1]
    yy, xx = torch.meshgrid(c.flip(0), c, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


def simulate(trained: Trained, n: int, seed: int, steps: dict[str, int] | None = None, grid: int = 17,
             max_frames: int = 101, _progress: Progress | None = None) -> dict[str, Run]:
    """Every trained objective sampled from one N(0, I) draw of ``n`` points (its default
    sampler, ``steps`` overriding the step counts), with the field at each kept state."""
    steps = steps or {}
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    pts = arrow_grid(grid)
    out = {}
    with torch_threads(1):
        ref = Reference(trained.data, n, seed)
        for k, (obj, result) in enumerate(trained.results.items()):
            if _progress is not None:
                _progress(k / len(trained.results), f"Sampling {label(obj)}…")
            sampler, default = SAMPLING[obj]
            traj = sample(result.model, noise, sampler, steps.get(obj, default),
                          generator=torch.Generator().manual_seed(seed + 1))
            kept = traj.subsample(max_frames)
            field = velocity_field(result.model, pts, kept.times).numpy()
            field = field.reshape(len(kept.times), grid, grid, 2)
            out[obj] = Run(obj, sampler, len(traj.times) - 1, traj.nfe, tuple(kept.times),
                           kept.x.numpy().astype(np.float32), field.astype(np.float32), straightness(traj.x),
                           ref.quality(traj.final.float()))
    return out


def hue_index(noise: np.ndarray) -> np.ndarray:
    """(N,) colour bins from the angle of each particle's starting point."""
    angle = np.arctan2(noise[:, 1], noise[:, 0])
    return ((angle + math.pi) / (2 * math.pi) * HUES).astype(np.int64).clip(0, HUES - 1).astype(np.uint8)


def hue_palette() -> list[str]:
    """The ``HUES`` colours of ``hue_index``'s bins, as "#rrggbb"."""
    rgb = [colorsys.hsv_to_rgb(k / HUES, 0.85, 0.85) for k in range(HUES)]
    return ["#" + "".join(f"{int(255 * c):02x}" for c in col) for col in rgb]


def nfe_sweep(trained: Trained, n: int, seed: int, counts: Sequence[int] = FEW_STEPS,
              _progress: Progress | None = None) -> dict:
    """Quality against NFE from one noise draw: Euler steps for the flows, DDIM (eta = 0) for the
    DDPM. Returns {"floor": MMD floor, objective: [(nfe, mmd), ...]}, and 1- and 2-step samples
    of each flow under ``"few"``."""
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    out: dict = {"few": {}}
    with torch_threads(1):
        ref = Reference(trained.data, n, seed)
        out["floor"] = ref.mmd_floor
        for k, (obj, result) in enumerate(trained.results.items()):
            if _progress is not None:
                _progress(k / len(trained.results), f"{label(obj)}: quality against steps…")
            sampler = "ddim" if obj == "ddpm" else "euler"
            rows = []
            for c in counts:
                traj = sample(result.model, noise, sampler, c, record=False)
                m = mmd(traj.final.float(), ref.points, yy=ref.yy)
                rows.append((traj.nfe, m))
                if obj != "ddpm" and c in (1, 2):
                    out["few"][(obj, c)] = (traj.final.float().numpy(), m)
            out[obj] = rows
    return out


def needed_nfe(rows: Sequence[tuple[int, float]], floor: float, factor: float = 2.0) -> int | None:
    """The fewest NFE whose MMD is within ``factor`` x the data's floor, or None."""
    return next((nfe for nfe, m in rows if m <= factor * floor), None)


def held_out_class(data, label_: int, n: int, seed: int) -> np.ndarray:
    """``n`` fresh points of class ``label_`` (the reference under the CFG densities)."""
    return held_out(data, n, seed, label_).numpy()


def cfg_samples(trained: Trained, label_: int, n: int, seed: int, gammas: Sequence[float] = GAMMAS,
                _progress: Progress | None = None) -> list[np.ndarray]:
    """Samples of class ``label_`` from the class-conditioned flow-matching model, one set per
    gamma, all from the same noise (50 Euler steps)."""
    model = trained.cfg.model
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    out = []
    with torch_threads(1):
        for k, g in enumerate(gammas):
            if _progress is not None:
                _progress(k / len(gammas), f"CFG γ = {g:g}…")
            out.append(sample(model, noise, "euler", 50, label_, g, record=False).final.float().numpy())
    return out


@dataclass(frozen=True, eq=False)
class Density:
    """A flow's exact learned density on the playground's box (``engine.toy2d.density``): the grid
    (x, y, density[y, x]), the mass it holds, and the mean log-density (nats) of held-out data
    points and of uniform points on the box, next to the uniform density's own."""

    objective: str
    x: np.ndarray
    y: np.ndarray
    density: np.ndarray
    mass: float
    held_out: float
    uniform: float
    baseline: float
    points: np.ndarray  # the held-out data points (for the data's histogram)


def learned_density(trained: Trained, objective: str, seed: int, size: int = 48, n: int = 1000,
                    _progress: Progress | None = None) -> Density:
    """The density flow ``objective`` learned: exact divergence, RK4 back from each point to the
    noise. Held-out points and uniform points are drawn from ``seed``."""
    from engine.toy2d.density import density_grid, log_density, mass, uniform_log_density

    model = trained.results[objective].model
    held = held_out(trained.data, n, seed)
    uniform = (torch.rand(n, 2, generator=torch.Generator().manual_seed(seed + 1)) * 2 - 1) * BOX
    with torch_threads(1):
        if _progress is not None:
            _progress(0.0, f"{label(objective)}: the density on a {size}×{size} grid…")
        x, y, dens = density_grid(model, size)
        if _progress is not None:
            _progress(0.8, "Held-out and uniform points…")
        lp_held, lp_uniform = log_density(model, held).mean(), log_density(model, uniform).mean()
    return Density(objective, x.numpy(), y.numpy(), dens.numpy(), mass(dens), float(lp_held),
                   float(lp_uniform), uniform_log_density(), held.numpy())
