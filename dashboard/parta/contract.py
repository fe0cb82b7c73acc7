"""Part A's backend contract: what every Part A page may ask of a backend, and the result types.

Two backends answer it: ``LiveBackend`` (``dashboard.parta.live``: the built-in MNIST DDPM or
DeepFloyd IF, computed here) and ``PackBackend`` (``dashboard.pack``: a precomputed pack's arrays).
``PartABackend`` is the typed Protocol both declare; ``tests/dashboard/test_backend_contract.py``
checks that each implements every method with exactly its parameters. A backend that cannot honour
an argument (a pack holds one setting) raises ``NotInPack`` with a sentence saying so; the page shows
it. Images travel as float32 numpy in [0, 1]; a condition is a class (int), a prompt (str), or None /
-1 / "" for the null one. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from engine.metrics import psnr, ssim
from engine.trajectory import Step, Trajectory

Cond = int | str | None
Progress = Callable[[float, str], None]  # (fraction done, what is happening)
Region = tuple[int, int, int, int] | np.ndarray  # inpainting: (top, left, bottom, right) or a 0/1 mask


class NotInPack(LookupError):
    """The backend does not hold what was asked; the message says what it holds instead."""


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


@runtime_checkable
class PartABackend(Protocol):
    """What a Part A page asks. ``allowed(control)`` is the values a control may take (None: any);
    ``notes(page)`` the figures of a page the backend lacks. ``progress`` feeds a progress bar."""

    spec: object  # engine.adapters.ModelSpec

    def allowed(self, control: str) -> tuple | None: ...

    def notes(self, page: str) -> list[str]: ...

    def sample(self, conds: Sequence[Cond], seed: int, stride: int, gamma: float, sampler: str = "ddpm",
               steps: int | None = None, progress: Progress | None = None) -> Trajectory:
        """A1.5-A1.6: one image per condition from pure noise with CFG scale ``gamma``."""
        ...

    def grid(self, conds: Sequence[Cond], strides: Sequence[int], seed: int, gamma: float,
             progress: Progress | None = None) -> np.ndarray:
        """Part 0: (len(conds), len(strides), C, H, W), each condition at each stride."""
        ...

    def denoise(self, x_0: np.ndarray, cond: Cond, t: int, seed: int, stride: int, kernel: int,
                sigma: float | None, progress: Progress | None = None) -> DenoiseComparison:
        """A1.2-A1.4: blur, one step and the strided loop from one x_t."""
        ...

    def psnr_curve(self, x_0: np.ndarray, cond: Cond, seed: int, stride: int, ts: Sequence[int],
                   progress: Progress | None = None) -> dict[str, list[float]]:
        """PSNR against t of the noisy image and the three denoisers."""
        ...

    def sdedit(self, x_0: np.ndarray, cond: Cond, seed: int, stride: int, gamma: float,
               i_starts: Sequence[int], progress: Progress | None = None) -> tuple[np.ndarray, list[int]]:
        """A1.7: one edit per i_start, and the t each started at."""
        ...

    def inpaint(self, x_0: np.ndarray, region: Region, cond: Cond, seed: int, stride: int, gamma: float,
                progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A1.7.2: RePaint inside ``region``; (result, mask)."""
        ...

    def anagram(self, conds: Sequence[Cond], views: Sequence[str], count: int, seed: int, stride: int,
                gamma: float, progress: Progress | None = None) -> np.ndarray:
        """A1.8: images that read as ``conds[i]`` under ``views[i]``."""
        ...

    def hybrid(self, far: Cond, near: Cond, kernel: int, sigma: float, count: int, seed: int, stride: int,
               gamma: float, progress: Progress | None = None) -> HybridResult:
        """A1.9: low frequencies of ``far``, high ones of ``near``."""
        ...


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


def offset_progress(progress: Progress, done: int, n: int, total: int) -> Progress:
    """A progress callback for ``n`` of ``total`` steps, ``done`` already behind it."""
    return lambda fraction, text: progress((done + fraction * n) / total, text)
