"""The density a 2D flow model learned, exactly: ``engine.likelihood`` with the exact divergence
(two vector-Jacobian products a step in 2D), evaluated on a grid for a heatmap, or at points for
their mean log-density. DDPM models have no such ODE density here (flow objectives only)."""

from __future__ import annotations

import math

import torch

from ..likelihood import likelihood_grid, log_likelihood
from .data import BOX

DENSITY_STEPS = 32  # RK4 steps on likelihood_grid


def _velocity(model, label: int | None):
    if model.kind != "flow":
        raise ValueError("a density needs a flow model (objective fm, reflow or ot-fm), not ddpm")

    def u(x, t):
        cond = None
        if model.num_classes:
            cond = model.null_cond(len(x)) if label is None else model.encode([label] * len(x))
        return model.net(x, t, cond)

    return u


def log_density(model, points: torch.Tensor, label: int | None = None, steps: int = DENSITY_STEPS,
                chunk: int = 4096) -> torch.Tensor:
    """log p(x) (nats) of each point (N, 2) under the flow (a class model: of class ``label``,
    or its unconditional density when None)."""
    u = _velocity(model, label)
    grid = likelihood_grid(steps)
    parts = [log_likelihood(u, p.float(), grid, probes=None).logp for p in points.split(chunk)]
    return torch.cat(parts)


def density_grid(model, size: int = 64, box: float = BOX, label: int | None = None,
                 steps: int = DENSITY_STEPS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x (size,), y (size,), density (size, size) indexed [y, x]) at the centres of a size x size
    grid of cells over [-box, box]^2; density * cell area sums to the mass inside the box."""
    edges = torch.linspace(-box, box, size + 1)
    centres = (edges[1:] + edges[:-1]) / 2
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    density = log_density(model, points, label, steps).exp().reshape(size, size)
    return centres, centres.clone(), density


def mass(density: torch.Tensor, box: float = BOX) -> float:
    """The probability the grid holds: sum of density times cell area."""
    size = density.shape[-1]
    return float(density.sum()) * (2 * box / size) ** 2


def uniform_log_density(box: float = BOX) -> float:
    """log p of the uniform density on the box, the baseline a model should beat on its data."""
    return -math.log((2 * box) ** 2)
