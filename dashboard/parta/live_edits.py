"""Part A's edits, computed live: SDEdit, inpainting (A1.7), visual anagrams and hybrid images
(A1.8-A1.9). ``LiveBackend`` inherits these; see ``dashboard.parta.live``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.editing import inpaint, rectangle_mask, sdedit
from engine.illusions import AnagramModel, HybridModel, fft_magnitude
from engine.schedule import strided_timesteps

from .contract import Cond, HybridResult, Progress, Region, step_progress
from .live_model import LiveModel, seeded


class LiveEdits(LiveModel):
    """The edits of Part A on a live model (each returns [0, 1] images)."""

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
            edit = sdedit(self.guided(gamma), x, i, ts, self.schedule, self.cond(cond, 1), seeded(seed), cb)
            outs.append(edit.final)
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
            seeded(seed),
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
        gen = seeded(seed)
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
        gen = seeded(seed)
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
