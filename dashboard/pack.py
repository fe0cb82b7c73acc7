"""A precomputed pack (``engine.packs``) as a Part A backend: the same calls as ``LiveBackend``,
answered from the pack's arrays, so a page has one body whatever the backend.

A pack holds the Part A figure set at fixed settings (prompts, seeds, stride, gamma, one photo),
so ``allowed(control)`` limits each control to what the pack holds, ``notes(page)`` names the
figures a page would show that the pack lacks, and a call the pack cannot answer raises
``NotInPack`` with a sentence saying why. Nothing is recomputed. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dashboard.parta.contract import (
    Cond,
    DenoiseComparison,
    HybridResult,
    NotInPack,
    PartABackend,
    Progress,
    Region,
    every_fifth,
    scores,
)
from engine.adapters import ModelSpec
from engine.deepfloyd.model import DEFAULT_PROMPT
from engine.illusions import fft_magnitude
from engine.schedule import strided_timesteps
from engine.trajectory import Trajectory

PACK_FIX = "python -m engine precompute --backend deepfloyd --model-path MODEL --pack cache/packs/NAME"
PAGE_FIGURES = {  # which figures each Part A page shows
    "a0": ("cfg", "samples", "part0"),
    "a2": ("one_step", "iterative"),
    "a3": ("samples", "cfg"),
    "a4": ("sdedit", "text_edit", "inpaint"),
    "a5": ("anagram", "hybrid"),
}
EDIT_MODES = {"SDEdit sweep": "sdedit", "Change the prompt": "text_edit", "Inpainting": "inpaint"}


__all__ = ["EDIT_MODES", "NotInPack", "PackBackend"]


class PackContents:
    """What a pack holds: its figures, seeds and settings, and the values each control may take."""

    def __init__(self, pack):
        self.pack, self.settings = pack, pack.settings
        size = next(iter(pack.figures.values())).arrays
        size = next(a for a in size.values() if a.ndim >= 3).shape[-1]
        self.spec = ModelSpec(
            pack.model_id,
            "ddpm",
            size,
            3,
            (0.0, 1.0),
            "text",
            prompts=tuple(self.settings.get("prompts", ())),
        )
        self.seeds = tuple(int(s) for s in self.settings.get("seeds", (0,)))

    # ------------------------------------------------------------------------- what it holds

    def has(self, figure: str) -> bool:
        return figure in self.pack.figures

    def missing(self, figure: str) -> str:
        return (
            f"This pack has no “{figure}” figure (it has {', '.join(self.pack.figures)}). Recompute it "
            f"with --figures {figure}: {PACK_FIX}"
        )

    def notes(self, page: str) -> list[str]:
        return [self.missing(f) for f in PAGE_FIGURES.get(page, ()) if not self.has(f)]

    def allowed(self, control: str) -> tuple | None:
        s = self.settings
        values = {
            "seed": self.seeds,
            "stride": (int(s["stride"]),),
            "gamma": (float(s["guidance"]),),
            "sample_gamma": tuple(
                g for f, g in (("samples", 1.0), ("cfg", float(s["guidance"]))) if self.has(f)
            ),
            "count": (1,),
            "source": ("Sample photo",),
            "photo": (s["photo"],),
            "prompt": self.spec.prompts,
            "denoise_t": self._denoise_ts(),
            "denoise_prompt": (DEFAULT_PROMPT,),
            "blur": ((5, 2.0),),
            "edit_mode": tuple(m for m, f in EDIT_MODES.items() if self.has(f)),
            "sdedit_prompt": (DEFAULT_PROMPT,),
            "edit_prompt": (s["edit_prompt"],),
            "inpaint_region": (self._box(),),
            "anagram_prompts": tuple(s["anagram_prompts"]),
            "view": (s["anagram_view"],),
            "anagram_views": (2,),
            "hybrid_prompts": tuple(s["hybrid_prompts"]),
            "hybrid_blur": ((33, 2.0),),
            "psnr_curve": (),
            "grid_prompts": tuple(self._grid_meta().get("prompts", ())),
            "grid_strides": tuple(int(k) for k in self._grid_meta().get("strides", ())),
            "grid_gamma": tuple(float(g) for g in [self._grid_meta().get("guidance")] if g is not None),
        }
        return values.get(control)

    def _grid_meta(self) -> dict:
        return dict(self.pack.figure("part0").meta) if self.has("part0") else {}

    def _seed_index(self, seed: int) -> int:
        if int(seed) not in self.seeds:
            raise NotInPack(f"this pack holds seeds {', '.join(map(str, self.seeds))}, not {seed}")
        return self.seeds.index(int(seed))

    def _figure(self, name: str):
        if not self.has(name):
            raise NotInPack(self.missing(name))
        return self.pack.figure(name)

    def _denoise_ts(self) -> tuple[int, ...]:
        ts = [int(self.pack.figure("iterative").arrays["timesteps"][0])] if self.has("iterative") else []
        if self.has("one_step"):
            ts += [int(v) for v in self.pack.figure("one_step").arrays["timesteps"]]
        return tuple(ts)

    def _box(self) -> tuple[int, int, int, int]:
        h = self.spec.image_size
        return tuple(round(f * h) for f in self.settings["inpaint_box"])

    def _holds(self, what: str, asked, held) -> None:
        """A NotInPack naming ``what`` when the page asked for a value the pack does not hold."""
        if asked != held:
            raise NotInPack(
                f"this pack holds {what} = {held}, not {asked}; a pack answers only the "
                "settings it was computed at"
            )

    def _settings_hold(self, stride: int, gamma: float) -> None:
        self._holds("stride", int(stride), int(self.settings["stride"]))
        self._holds("γ", float(gamma), float(self.settings["guidance"]))


class PackBackend(PackContents, PartABackend):
    """Part A's answers read from a pack; ``NotInPack`` for what it cannot answer."""

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
        if sampler != "ddpm":
            raise NotInPack(f"a pack holds the course's loop only, not {sampler}")
        fig = self._figure("samples" if gamma == 1.0 else "cfg")
        if gamma not in (1.0, float(fig.meta.get("guidance", -1))):
            raise NotInPack(f"this pack holds samples at γ = {fig.meta.get('guidance')}, not {gamma:g}")
        prompts = list(fig.meta.get("prompts", ()))
        lost = [c for c in conds if c not in prompts]
        if lost:
            raise NotInPack(f"this pack has no samples of {', '.join(map(repr, lost))}")
        traj = fig.arrays["trajectory"][self._seed_index(seed)][[prompts.index(c) for c in conds]]
        times = tuple(int(t) for t in fig.arrays["timesteps"])
        return Trajectory(times, traj.astype(np.float32).swapaxes(0, 1), None, len(times) - 1, (0.0, 1.0))

    def grid(
        self,
        conds: Sequence[Cond],
        strides: Sequence[int],
        seed: int,
        gamma: float,
        progress: Progress | None = None,
    ) -> np.ndarray:
        fig = self._figure("part0")
        prompts, held = list(fig.meta["prompts"]), [int(k) for k in fig.meta["strides"]]
        if gamma != float(fig.meta["guidance"]):
            raise NotInPack(f"this pack holds Part 0's grid at γ = {fig.meta['guidance']}, not {gamma:g}")
        lost = [c for c in conds if c not in prompts] + [k for k in strides if int(k) not in held]
        if lost:
            raise NotInPack(f"this pack's Part 0 grid has no {', '.join(map(repr, lost))}")
        images = fig.arrays["images"][self._seed_index(seed)]
        rows = images[[prompts.index(c) for c in conds]]
        return rows[:, [held.index(int(k)) for k in strides]].astype(np.float32)

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
        k = self._seed_index(seed)
        if self.has("iterative") and int(t) == int(self.pack.figure("iterative").arrays["timesteps"][0]):
            a = self.pack.figure("iterative").arrays
            photo, noisy, blurred, one, final = (
                a[n][k] for n in ("photo", "noisy", "blurred", "one_step", "final")
            )
            blurred, one, final = blurred[0], one[0], final[0]
            traj = a["trajectory"][k].astype(np.float32).swapaxes(0, 1)  # (T, 1, C, H, W)
            loop = Trajectory(tuple(int(v) for v in a["timesteps"]), traj, None, len(traj) - 1, (0.0, 1.0))
            loop = loop.take(every_fifth(len(loop.times)))
        else:
            a = self._figure("one_step").arrays
            ts = [int(v) for v in a["timesteps"]]
            if int(t) not in ts:
                raise NotInPack(
                    f"this pack holds one-step denoising at t = {', '.join(map(str, ts))}, not {t}"
                )
            i = ts.index(int(t))
            photo, noisy, blurred, one = (
                a["photo"][k],
                a["noisy"][k][i],
                a["blurred"][k][i],
                a["denoised"][k][i],
            )
            final, loop = None, None
        images = {"noisy": noisy, "blur": blurred, "one-step": one, "iterative": final}
        metrics = {n: scores(img, photo) for n, img in images.items() if img is not None}
        return DenoiseComparison(int(t), noisy, blurred, one, final, loop, 2.0, 5, metrics)

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
        name = "sdedit" if cond == DEFAULT_PROMPT else "text_edit"
        fig = self._figure(name)
        if cond != fig.meta.get("prompt"):
            raise NotInPack(f"this pack's {name} figure is conditioned on “{fig.meta.get('prompt')}”")
        starts = [int(i) for i in fig.arrays["i_starts"]]
        ts = strided_timesteps(int(self.settings["stride"]))
        return fig.arrays["edits"][self._seed_index(seed)], [ts[i] for i in starts]

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
        """The pack's one inpainting: its photo, box, prompt, stride and γ; another asks raise."""
        if isinstance(region, np.ndarray):
            raise NotInPack("a pack holds inpainting inside its rectangle only, not a painted mask")
        self._holds("the inpainting box", tuple(int(v) for v in region), self._box())
        self._settings_hold(stride, gamma)
        a = self._figure("inpaint").arrays
        return a["images"][self._seed_index(seed)][0], a["mask"]

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
        """The pack's one anagram (its two prompts, one view); other prompts or views raise."""
        s = self.settings
        self._holds("the anagram's prompts", tuple(conds), tuple(s["anagram_prompts"]))
        self._holds(
            "the anagram's views",
            tuple(v for v in views if v not in (None, "", "identity")),
            (s["anagram_view"],),
        )
        self._settings_hold(stride, gamma)
        return self._figure("anagram").arrays["images"][self._seed_index(seed)][:count]

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
        """The pack's one hybrid (its two prompts, blur 33 / 2); other settings raise."""
        self._holds("the hybrid's prompts", (far, near), tuple(self.settings["hybrid_prompts"]))
        self._holds("the hybrid's blur", (int(kernel), float(sigma)), self.allowed("hybrid_blur")[0])
        self._settings_hold(stride, gamma)
        images = self._figure("hybrid").arrays["images"][self._seed_index(seed)][:count]
        return HybridResult(
            images, None, None, fft_magnitude(torch.as_tensor(np.array(images[0]))).numpy(), None
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
        raise NotInPack("a pack holds no PSNR-against-t curve: it needs the model at every t")
