"""The fixed inputs of a check: one or a few calls ("cases") per function, from seeded generators.

The checker builds them once, sends them to the student's process as arrays (``.npz``, never a
pickle) and runs the reference on the very same arrays. Each case also carries the seed of the
variance noise (``add_variance``'s generator; for ``forward``, of torch's global generator in the
student's process, since the notebook's ``forward`` draws with ``torch.randn_like``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .contract import NAMES, CheckSettings, course_timesteps
from .lab import UNCOND, Lab
from .reference import CORRECT, forward

UNET, TIMESTEPS = "<unet>", "<timesteps>"  # stand-ins for the flow net and the strided list


@dataclass(frozen=True)
class Ref:
    """An argument that is one of the case arrays."""

    key: str


@dataclass
class Case:
    function: str
    index: int
    args: tuple
    kwargs: dict
    seed: int
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        def enc(a):
            return (
                {"array": a.key}
                if isinstance(a, Ref)
                else {"marker": a}
                if a in (UNET, TIMESTEPS)
                else {"value": a}
            )

        return {
            "function": self.function,
            "index": self.index,
            "args": [enc(a) for a in self.args],
            "kwargs": {k: enc(v) for k, v in self.kwargs.items()},
            "seed": self.seed,
        }


def decode_arg(spec: dict, arrays, unet, timesteps):
    """One JSON argument back into a value: an array (as a float32 tensor), a marker, or a value."""
    if "array" in spec:
        return torch.from_numpy(np.array(arrays[spec["array"]], dtype=np.float32))
    if "marker" in spec:
        return unet if spec["marker"] == UNET else list(timesteps)
    return spec["value"]


def _seed(settings: CheckSettings, name: str, k: int) -> int:
    return settings.seed * 1000 + NAMES.index(name) * 10 + k


class _Builder:
    """Collects the cases and their arrays."""

    def __init__(self, lab: Lab, settings: CheckSettings):
        self.lab, self.settings = lab, settings
        self.cases: list[Case] = []
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, key: str, tensor: torch.Tensor) -> Ref:
        self.arrays[key] = tensor.detach().float().numpy()
        return Ref(key)

    def gen(self, name: str) -> torch.Generator:
        return torch.Generator().manual_seed(_seed(self.settings, name, 0) + 5)

    def add(self, name: str, k: int, args: tuple, kwargs: dict, meta: dict | None = None) -> None:
        self.cases.append(Case(name, k, args, kwargs, _seed(self.settings, name, k), meta or {}))


def _part_a(b: _Builder, only) -> None:
    lab, st = b.lab, b.settings
    ts = course_timesteps()
    if "forward" in only:
        im = b.put("forward/im", lab.clean_images(st.forward_batch, st.seed))
        for k, t in enumerate(st.forward_ts):
            b.add("forward", k, (im, int(t)), {}, {"t": int(t), "abar": float(lab.alphas_cumprod[t])})
    prompts = {
        key: b.put(key, lab.prompts.encode(label))
        for key, label in (("prompt_1", st.labels[0]), ("prompt_2", st.labels[1]), ("prompt_uncond", UNCOND))
    }
    if "iterative_denoise" in only:
        i0 = st.denoise_i_start
        clean = lab.clean_images(1, st.seed, label=st.labels[0])  # a digit of the prompt's class
        noisy = forward(
            lab, CORRECT, clean, ts[i0], generator=b.gen("iterative_denoise")
        )  # lab: the schedule
        args = (b.put("iterative_denoise/im_noisy", noisy), i0, prompts["prompt_1"], TIMESTEPS)
        b.add("iterative_denoise", 0, args, {"display": False}, {"i_start": i0})
    guided = {
        "iterative_denoise_cfg": ("prompt_1", "prompt_uncond"),
        "visual_anagrams": ("prompt_1", "prompt_2", "prompt_uncond"),
        "make_hybrids": ("prompt_1", "prompt_2", "prompt_uncond"),
    }
    for name in (n for n in guided if n in only):
        i0 = st.guided_i_start
        noise = b.put(f"{name}/im_noisy", torch.randn(1, *lab.image_shape, generator=b.gen(name)))
        kwargs = {"scale": st.scale} | ({"display": False} if name == "iterative_denoise_cfg" else {})
        b.add(name, 0, (noise, i0, *(prompts[p] for p in guided[name]), TIMESTEPS), kwargs, {"i_start": i0})


def _part_b(b: _Builder, only) -> None:
    lab, st = b.lab, b.settings
    if "flow_matching_loss" in only:
        g = b.gen("flow_matching_loss")
        x1 = lab.clean_images(st.flow_batch, st.seed + 2, unit=True)
        x0 = torch.randn(st.flow_batch, *lab.flow_shape, generator=g)
        t = torch.rand(st.flow_batch, generator=g)
        b.add(
            "flow_matching_loss",
            0,
            (UNET, b.put("loss/x1", x1), b.put("loss/x0", x0), b.put("loss/t", t)),
            {},
        )
    if "flow_sample" in only:
        x0 = torch.randn(st.flow_batch, *lab.flow_shape, generator=b.gen("flow_sample"))
        b.add(
            "flow_sample",
            0,
            (UNET, b.put("sample/x0", x0)),
            {"num_ts": st.flow_steps},
            {"num_ts": st.flow_steps},
        )


def build_cases(lab: Lab, settings: CheckSettings, only=NAMES) -> tuple[list[Case], dict[str, np.ndarray]]:
    """Every case of the functions in ``only`` and the arrays they use."""
    b = _Builder(lab, settings)
    _part_a(b, only)
    _part_b(b, only)
    return b.cases, b.arrays
