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
from engine.editing import inpaint, rectangle_mask, sdedit
from engine.forward import forward
from engine.guidance import CFGModel
from engine.illusions import AnagramModel, HybridModel, fft_magnitude
from engine.samplers import sample
from engine.schedule import strided_timesteps
from engine.trajectory import Trajectory, to_unit

from .contract import (
    Cond,
    DenoiseComparison,
    HybridResult,
    PartABackend,
    Progress,
    Region,
    every_fifth,
    offset_progress,
    scores,
    step_progress,
)
from .views import steps_of


class LiveBackend(PartABackend):
    """Part A's answers from a model that runs here. ``allowed`` is None for every control: a
    live model can do whatever the page offers."""

    def __init__(self, model):
        self.model, self.spec, self.schedule = model, model.spec, model.schedule

    def allowed(self, control: str) -> tuple | None:
        return None

    def notes(self, page: str) -> list[str]:
        return []

    # ------------------------------------------------------------------------- helpers

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
        gen = _gen(seed)
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
        gen = _gen(seed)
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

    # ------------------------------------------------------------------------- A1.7

    def sdedit(
        self,
        x_0: np.ndarray,
        cond: Cond,
        seed: int,
        stride: int,
        gamma: float,
        i_starts: Sequence[int],
        progress: Progress | None = None,
    ) -> tuple[np.ndarray, list[int]]:
        """One SDEdit per i_start (that fits the grid): (n, C, H, W) in [0, 1] and the t each
        started at. ``cond`` steers the edit (a 3 edited with class 8 becomes an 8)."""
        x = self._to_model(x_0)[None]
        ts = strided_timesteps(stride)
        starts = [i for i in i_starts if i < len(ts) - 1]
        total, done, outs = sum(len(ts) - 1 - i for i in starts), 0, []
        for i in starts:
            cb = step_progress(progress, f"SDEdit from i_start = {i}: step", done, total)
            outs.append(
                sdedit(self.guided(gamma), x, i, ts, self.schedule, self.cond(cond, 1), _gen(seed), cb).final
            )
            done += len(ts) - 1 - i
        return np.stack([self._unit(o)[0] for o in outs]), [ts[i] for i in starts]

    def inpaint(
        self,
        x_0: np.ndarray,
        region: Region,
        cond: Cond,
        seed: int,
        stride: int,
        gamma: float,
        progress: Progress | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """RePaint inside ``region``: a rectangle (top, left, bottom, right) or a painted mask
        (H, W) of 0/1. Returns (result, mask), each (C, H, W)."""
        x = self._to_model(x_0)[None]
        h, w = x.shape[-2:]
        if isinstance(region, np.ndarray):
            if region.shape != (h, w):
                raise ValueError(f"mask is {region.shape}, the image {h}x{w}")
            mask = torch.from_numpy(region.astype(np.float32))[None, None]
        else:
            mask = rectangle_mask(h, w, *region)
        traj = inpaint(
            self.guided(gamma),
            x,
            mask,
            strided_timesteps(stride),
            self.schedule,
            self.cond(cond, 1),
            _gen(seed),
            step_progress(progress, "Inpainting: step"),
        )
        return self._unit(traj.final)[0], mask[0].numpy()

    # ------------------------------------------------------------------------- A1.8-A1.9

    def anagram(
        self,
        conds: Sequence[Cond],
        views: Sequence[str],
        count: int,
        seed: int,
        stride: int,
        gamma: float,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """(count, C, H, W) images that read as ``conds[i]`` under ``views[i]`` (2-4 views)."""
        gen = _gen(seed)
        m = AnagramModel(self.guided(gamma), [self.cond(c, 1) for c in conds], list(views))
        return self._unit(
            self._loop(m, self._noise(count, gen), stride, gen, progress, "Visual anagram: step").final
        )

    def hybrid(
        self,
        far: Cond,
        near: Cond,
        kernel: int,
        sigma: float,
        count: int,
        seed: int,
        stride: int,
        gamma: float,
        progress: Progress | None = None,
    ) -> HybridResult:
        """eps = lowpass(eps_far) + highpass(eps_near); the FFT views show the two bands of the
        noise estimate at the loop's middle step."""
        gen = _gen(seed)
        guided = self.guided(gamma)
        c_far, c_near = self.cond(far, 1), self.cond(near, 1)
        m = HybridModel(guided, c_far, c_near, kernel, sigma)
        traj = self._loop(m, self._noise(count, gen), stride, gen, progress, "Hybrid image: step")
        mid = len(traj.times) // 2
        x_mid, tt = traj.x[mid][:1], torch.full((1,), int(traj.times[mid]), dtype=torch.long)
        c = self.spec.channels
        low, high = m.bands(guided(x_mid, tt, c_far)[:, :c], guided(x_mid, tt, c_near)[:, :c])
        return HybridResult(
            self._unit(traj.final),
            fft_magnitude(low[0]).numpy(),
            fft_magnitude(high[0]).numpy(),
            fft_magnitude(traj.final[0]).numpy(),
            int(traj.times[mid]),
        )


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))
