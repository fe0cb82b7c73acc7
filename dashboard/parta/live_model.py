"""The model under ``LiveBackend``: a Part A model (the built-in MNIST DDPM, or DeepFloyd IF
stage I) with the helpers every live answer uses. Images travel as float32 numpy in [0, 1] and
are mapped to the model's range right before it; randomness comes from a seeded generator."""

from __future__ import annotations

import numpy as np
import torch

from engine.denoise import iterative_denoise
from engine.guidance import CFGModel
from engine.schedule import strided_timesteps
from engine.trajectory import Trajectory, to_unit

from .contract import Cond, step_progress


class LiveModel:
    """The model a live backend runs: conditions, guidance, noise, the course's loop, and the
    mapping between the pages' [0, 1] images and the model's range."""

    def __init__(self, model):
        self.model, self.spec, self.schedule = model, model.spec, model.schedule

    def _to_model(self, x: np.ndarray) -> torch.Tensor:
        lo, hi = self.spec.value_range
        return torch.as_tensor(np.asarray(x, dtype=np.float32)) * (hi - lo) + lo

    def _unit(self, x: torch.Tensor) -> np.ndarray:
        return to_unit(x, self.spec.value_range)

    def cond(self, label: Cond, n: int) -> torch.Tensor:
        """The condition for ``n`` images: one-hot class, stored prompt embedding, or null."""
        if label is None or label == "" or (not isinstance(label, str) and int(label) < 0):
            return self.model.null_cond(n)
        if isinstance(label, str):
            return self.model.encode([label] * n)
        return self.model.encode(torch.full((n,), int(label), dtype=torch.long))

    def guided(self, gamma: float) -> CFGModel:
        """The model with classifier-free guidance of scale ``gamma`` (one batched call)."""
        return CFGModel(self.model, self.model.null_cond(1), float(gamma))

    def _noise(self, n: int, gen: torch.Generator) -> torch.Tensor:
        size = self.spec.image_size
        return torch.randn(n, self.spec.channels, size, size, generator=gen)

    def _loop(self, model, x: torch.Tensor, stride: int, gen, progress, label: str, cond=None) -> Trajectory:
        """The course's strided loop from pure noise ``x`` at 990 down to 0."""
        return iterative_denoise(
            model,
            x,
            strided_timesteps(stride),
            cond=cond,
            generator=gen,
            callback=step_progress(progress, label),
            schedule=self.schedule,
        )


def seeded(seed: int) -> torch.Generator:
    """A fresh generator seeded with the page's seed (never the global RNG)."""
    return torch.Generator().manual_seed(int(seed))
