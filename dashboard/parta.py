"""Part A, computed: what each Part A page shows, from a diffusion model that runs here.

``LiveBackend`` wraps a Part A model (the built-in class-conditioned MNIST DDPM, or DeepFloyd IF
stage I): a callable ``(x_t, t, cond) -> eps`` (or [eps, v]) with ``.spec``, ``.schedule``,
``.encode(conds)`` and ``.null_cond(n)``. A precomputed pack answers the same calls from its
arrays (``dashboard.pack.PackBackend``), so a page has one body whatever the backend. No
Streamlit here: ``dashboard.cache`` caches these calls, the pages render them.

Convention (DDPM): x_0 is the clean image, t counts down from 999 to 0. Images travel as
float32 numpy in [0, 1]; they are mapped to the model's [-1, 1] right before the model and back
right after. A condition is a class (int), a prompt (str), or None / -1 / "" for the null one.
Randomness comes from a ``torch.Generator`` seeded with the page's seed, never the global RNG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from engine.denoise import best_blur_sigma, gaussian_blur, iterative_denoise, one_step_denoise
from engine.editing import SDEDIT_I_STARTS, inpaint, rectangle_mask, sdedit
from engine.forward import forward
from engine.guidance import CFGModel
from engine.illusions import (
    VIEWS,
    AnagramModel,
    HybridModel,
    fft_magnitude,
    get_view,
    transition_frames,
    viewing_distance,
)
from engine.metrics import psnr, ssim
from engine.packs import PART0_PROMPTS, PART0_STRIDES
from engine.schedule import strided_timesteps
from engine.diffusers_samplers import scheduler_sample
from engine.trajectory import Step, Trajectory, to_unit

Cond = int | str | None
# The anagram page's starting point for 2, 3 and 4 views: per view (class, prompt, view).
ANAGRAM_DEFAULTS = {
    2: (
        (6, "an oil painting of people around a campfire", None),
        (9, "an oil painting of an old man", "flip"),
    ),
    3: (
        (6, "an oil painting of people around a campfire", None),
        (9, "an oil painting of an old man", "rot180"),
        (1, "an oil painting of a snowy mountain village", "rot90"),
    ),
    4: (
        (6, "an oil painting of people around a campfire", None),
        (9, "an oil painting of an old man", "rot180"),
        (1, "an oil painting of a snowy mountain village", "rot90"),
        (7, "a watercolor of a lighthouse", "rot270"),
    ),
}
Progress = Callable[[float, str], None]  # (fraction done, what is happening)
__all__ = [
    "ANAGRAM_DEFAULTS",
    "SDEDIT_I_STARTS",
    "VIEWS",
    "Cond",
    "DenoiseComparison",
    "HybridResult",
    "LiveBackend",
    "PART0_PROMPTS",
    "PART0_STRIDES",
    "Progress",
]


@dataclass(frozen=True)
class DenoiseComparison:
    """A1.2-A1.4 at one t, all from the same x_t: images (C, H, W) in [0, 1];
    ``metrics[name] = (psnr, ssim)`` against the clean image. ``iterative`` is None where the
    backend cannot answer it (a pack at a t without a loop); ``loop`` holds every 5th state."""

    t: int
    noisy: np.ndarray
    blurred: np.ndarray
    one_step: np.ndarray
    iterative: np.ndarray | None
    loop: Trajectory | None
    blur_sigma: float
    blur_kernel: int
    metrics: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class HybridResult:
    images: np.ndarray  # (count, C, H, W) in [0, 1]
    fft_low: np.ndarray | None  # (H, W) log|FFT| of the low-passed far-class noise estimate
    fft_high: np.ndarray | None  # (H, W) log|FFT| of the high-passed near-class noise estimate
    fft_image: np.ndarray  # (H, W) log|FFT| of the first image
    band_t: int | None


def scores(img: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) of an image against the clean one, both in [0, 1]."""
    a, b = torch.as_tensor(np.array(img, np.float32)), torch.as_tensor(np.array(clean, np.float32))
    return psnr(a, b, 1.0), ssim(a, b, 1.0)


def every_fifth(n_states: int) -> list[int]:
    """States 0, 5, 10, ... and the last: the spec's "every 5th step of the loop"."""
    return list(range(0, n_states, 5)) + ([n_states - 1] if (n_states - 1) % 5 else [])


def step_progress(progress: Progress | None, label: str, done: int = 0, total: int | None = None):
    """An engine step callback that reports "<label> i of n" as a fraction of ``total`` steps
    (several loops share one bar: ``done`` are the steps before this loop)."""
    if progress is None:
        return None

    def report(s: Step) -> None:
        progress((done + s.i + 1) / (total or s.n), f"{label} {s.i + 1} of {s.n}")

    return report


def _offset(progress: Progress, done: int, n: int, total: int) -> Progress:
    """A progress callback for ``n`` of ``total`` steps, ``done`` already behind it."""
    return lambda fraction, text: progress((done + fraction * n) / total, text)


class LiveBackend:
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
        callback = step_progress(progress, "Sampling: step")
        if sampler == "ddpm":
            ts = strided_timesteps(stride)
            model = self.guided(gamma)
            traj = iterative_denoise(model, noise, 0, ts, self.schedule, cond, gen, callback=callback)
        else:
            traj = scheduler_sample(
                self.guided(gamma),
                noise,
                sampler,
                steps or 20,
                self.schedule,
                cond,
                generator=gen,
                callback=callback,
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
            part = None if progress is None else _offset(progress, done, n, total)
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
                0,
                ts,
                self.schedule,
                c,
                gen,
                callback=step_progress(progress, f"Iterative denoising from t = {t}: step"),
            )
        final = loop.final if loop is not None else x_t
        lo, hi = self.spec.value_range
        images = {
            name: self._unit(img.clamp(lo, hi))[0]
            for name, img in (("noisy", x_t), ("blur", blurred), ("one-step", one), ("iterative", final))
        }
        loop = (
            loop.to_unit()
            if loop is not None
            else Trajectory((t,), images["noisy"][None, None], None, 0, (0.0, 1.0))
        )
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
        i_starts: Sequence[int] = SDEDIT_I_STARTS,
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
        region,
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
        traj = iterative_denoise(
            m,
            self._noise(count, gen),
            0,
            strided_timesteps(stride),
            self.schedule,
            None,
            gen,
            callback=step_progress(progress, "Visual anagram: step"),
        )
        return self._unit(traj.final)

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
        ts = strided_timesteps(stride)
        traj = iterative_denoise(
            m,
            self._noise(count, gen),
            0,
            ts,
            self.schedule,
            None,
            gen,
            callback=step_progress(progress, "Hybrid image: step"),
        )
        mid = len(ts) // 2
        x_mid, tt = traj.x[mid][:1], torch.full((1,), ts[mid], dtype=torch.long)
        c = self.spec.channels
        low, high = m.bands(guided(x_mid, tt, c_far)[:, :c], guided(x_mid, tt, c_near)[:, :c])
        return HybridResult(
            self._unit(traj.final),
            fft_magnitude(low[0]).numpy(),
            fft_magnitude(high[0]).numpy(),
            fft_magnitude(traj.final[0]).numpy(),
            int(ts[mid]),
        )


def forward_image(x_0: np.ndarray, eps: np.ndarray, abar: float) -> np.ndarray:
    """Eq. A.2 on [0, 1] images: x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps in [-1, 1] units,
    shown back in [0, 1]. Cheap; not cached."""
    x = np.sqrt(abar) * (np.asarray(x_0) * 2 - 1) + np.sqrt(1 - abar) * np.asarray(eps)
    return np.clip((x + 1) / 2, 0, 1)


def viewed(images: np.ndarray, view: str | None = None, distance: float = 1.0) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] under an anagram ``view`` or seen from ``distance``."""
    x = torch.as_tensor(np.array(images))
    if view is not None:
        x = get_view(view).apply_unit(x)
    return viewing_distance(x, distance).numpy() if distance > 1 else x.numpy()


def view_frames(images: np.ndarray, view: str, frames: int = 24) -> np.ndarray:
    """(frames, N, C, H, W) in [0, 1]: the images turning into their ``view``."""
    return transition_frames(torch.as_tensor(np.array(images)), view, frames).numpy()


def steps_of(stride: int) -> int:
    """Denoising steps of the strided grid 990 -> 0 (stride 30: 33)."""
    return len(strided_timesteps(stride)) - 1


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))
