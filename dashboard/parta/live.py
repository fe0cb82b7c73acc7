"""Part A, computed: ``LiveBackend`` answers every Part A page from a diffusion model that runs here.

It wraps a Part A model (the built-in class-conditioned MNIST DDPM, or DeepFloyd IF stage I): a
callable ``(x_t, t, cond) -> eps`` (or [eps, v]) with ``.spec``, ``.schedule``, ``.encode(conds)``
and ``.null_cond(n)``, and declares ``PartABackend`` (``dashboard.parta.contract``). No Streamlit
here: ``dashboard.cache`` caches these calls, the pages render them.

Convention (DDPM): x_0 is the clean image, t counts down from 999 to 0. Images travel as float32
numpy in [0, 1]; they are mapped to the model's [-1, 1] right before the model and back right
after. Randomness comes from a ``torch.Generator`` seeded with the page's seed, never the global RNG.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.denoise import best_blur_sigma, gaussian_blur, iterative_denoise, one_step_denoise
from engine.forward import forward
from engine.samplers import sample
from engine.schedule import strided_timesteps
from engine.trajectory import Trajectory

from .contract import (
    Cond,
    DenoiseComparison,
    PartABackend,
    Progress,
    every_fifth,
    offset_progress,
    scores,
    step_progress,
)
from .live_edits import LiveEdits
from .live_model import seeded
from .views import steps_of


class LiveBackend(LiveEdits, PartABackend):
    """Part A's answers from a model that runs here. ``allowed`` is None for every control: a
    live model can do whatever the page offers. The edits (A1.7-A1.9) come from ``LiveEdits``."""

    def allowed(self, control: str) -> tuple | None:
        return None

    def notes(self, page: str) -> list[str]:
        return []

    # ------------------------------------------------------------------------- A1.5-A1.6, Part 0

    def sample(
        self,
        conds: Sequence[Cond],
        seed: int,
        stride: int,
        gamma: float,
        sampler: str = "ddpm",
        steps: int | None = None,
        progress: Progress | None = None,
    ) -> Trajectory:
        """From pure noise with CFG scale ``gamma``, one image per condition: the course's strided
        loop ("ddpm", ``stride``), or "ddim" / "dpmpp-2m" in ``steps`` steps. In [0, 1]."""
        gen = seeded(seed)
        noise = self._noise(len(conds), gen)
        cond = torch.cat([self.cond(c, 1) for c in conds])
        traj = sample(
            self.guided(gamma),
            noise,
            sampler,
            steps if sampler != "ddpm" else None,
            cond=cond,
            generator=gen,
            callback=step_progress(progress, "Sampling: step"),
            schedule=self.schedule,
            stride=stride if sampler == "ddpm" else None,
        )
        return traj.to_unit()

    def grid(
        self,
        conds: Sequence[Cond],
        strides: Sequence[int],
        seed: int,
        gamma: float,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Part 0's figure: (len(conds), len(strides), C, H, W) in [0, 1], each condition sampled
        at every stride from the same seed's noise (so only the step count differs)."""
        total, done, cols = sum(steps_of(k) for k in strides), 0, []
        for k in strides:
            n = steps_of(k)
            part = None if progress is None else offset_progress(progress, done, n, total)
            cols.append(self.sample(conds, seed, k, gamma, progress=part).final)
            done += n
        return np.stack(cols, axis=1)

    # ------------------------------------------------------------------------- A1.2-A1.4

    def denoise(
        self,
        x_0: np.ndarray,
        cond: Cond,
        t: int,
        seed: int,
        stride: int,
        kernel: int,
        sigma: float | None,
        progress: Progress | None = None,
    ) -> DenoiseComparison:
        """Blur (``sigma`` None: the best sigma, found with the answer), one-step x0_hat and the
        iterative loop from t down to 0 with ``stride``, from one x_t. ``x_0`` (C, H, W)."""
        clean = self._to_model(x_0)[None]
        gen = seeded(seed)
        x_t = forward(clean, t, self.schedule, noise=torch.randn(clean.shape, generator=gen))
        if sigma is None:  # the best case for blurring: pick sigma with the answer
            sigma, _ = best_blur_sigma(x_t, clean, data_range=1.0)
            kernel = min(2 * int(3 * sigma + 0.5) + 1, 2 * ((x_0.shape[-1] - 1) // 2) + 1)
        blurred = gaussian_blur(x_t, kernel, sigma)
        c = self.cond(cond, 1)
        one = one_step_denoise(self.model, x_t, t, self.schedule, c)
        ts = strided_timesteps(stride, start=t) if t > 0 else [0]
        loop = None
        if len(ts) >= 2:
            loop = iterative_denoise(
                self.model,
                x_t,
                ts,
                cond=c,
                generator=gen,
                schedule=self.schedule,
                callback=step_progress(progress, f"Iterative denoising from t = {t}: step"),
            )
        final = loop.final if loop is not None else x_t
        lo, hi = self.spec.value_range
        images = {
            name: self._unit(img.clamp(lo, hi))[0]
            for name, img in (("noisy", x_t), ("blur", blurred), ("one-step", one), ("iterative", final))
        }
        if loop is None:  # t = 0: nothing to denoise, the "loop" is the image itself
            loop = Trajectory((t,), images["noisy"][None, None], None, 0, (0.0, 1.0))
        else:
            loop = loop.to_unit()
        return DenoiseComparison(
            int(t),
            images["noisy"],
            images["blur"],
            images["one-step"],
            images["iterative"],
            loop.take(every_fifth(len(loop.times))),
            float(sigma),
            int(kernel),
            {name: scores(img, x_0) for name, img in images.items()},
        )

    def psnr_curve(
        self,
        x_0: np.ndarray,
        cond: Cond,
        seed: int,
        stride: int,
        ts: Sequence[int],
        progress: Progress | None = None,
    ) -> dict[str, list[float]]:
        """PSNR against t of the noisy image, best-sigma blur, one-step and iterative."""
        out: dict[str, list[float]] = {"noisy": [], "blur (best σ)": [], "one-step": [], "iterative": []}
        for k, t in enumerate(ts):
            if progress is not None:
                progress(k / len(ts), f"t = {t} ({k + 1} of {len(ts)})")
            res = self.denoise(x_0, cond, int(t), seed, stride, 3, None)
            for name, key in zip(out, ("noisy", "blur", "one-step", "iterative"), strict=True):
                out[name].append(res.metrics[key][0])
        return out
