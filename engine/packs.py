"""Artifact packs: the CS180 Part A figure set computed once on a GPU, browsed anywhere.

``engine.precompute.precompute_pack`` runs the engine's own algorithms through a text-conditioned
adapter (DeepFloyd IF) and writes a self-describing folder:

    PACK/manifest.json              version, model id, library versions, prompts, seeds,
                                    settings, every figure's arrays (shape, dtype) and meta,
                                    sha256 and size of every file
    PACK/figures/<figure>.safetensors

Images are float32 in [0, 1] (display-ready); trajectories float16 in [0, 1], shaped
(seeds, batch, steps, 3, H, W). Convention (DDPM): t counts down, ``timesteps[k]`` is the t of
trajectory step k. ``open_pack`` verifies everything and returns a read-only ``Pack``; any
problem is a ``PackError`` that names the file and says what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from .course import DDPM_GUIDANCE, SDEDIT_I_STARTS, STRIDE
from .deepfloyd.model import DEFAULT_PROMPT, NULL_PROMPT

PACK_VERSION = 1
MANIFEST = "manifest.json"
FIGURES = (
    "samples",
    "forward",
    "one_step",
    "iterative",
    "cfg",
    "sdedit",
    "inpaint",
    "text_edit",
    "anagram",
    "hybrid",
    "part0",
)
REQUIRED_ARRAYS = {
    "samples": ("images", "trajectory", "timesteps"),
    "forward": ("photo", "noisy", "timesteps"),
    "one_step": ("photo", "noisy", "denoised", "blurred", "timesteps"),
    "iterative": ("photo", "noisy", "trajectory", "x0_hat", "final", "one_step", "blurred", "timesteps"),
    "cfg": ("images", "trajectory", "timesteps"),
    "sdedit": ("photo", "edits", "i_starts"),
    "inpaint": ("photo", "mask", "images", "trajectory", "timesteps"),
    "text_edit": ("photo", "edits", "i_starts"),
    "anagram": ("images", "flipped", "trajectory", "timesteps"),
    "hybrid": ("images", "trajectory", "timesteps"),
    "part0": ("images", "strides"),
}
PART0_PROMPTS = ("an oil painting of a snowy mountain village", "a man wearing a hat", "a rocket ship")
PART0_STRIDES = (50, 20)  # 20 and 50 inference steps on the 990 -> 0 grid
MANIFEST_KEYS = ("pack_version", "created", "model", "versions", "settings", "figures", "files")


class PackError(RuntimeError):
    """A pack that is missing, incomplete, corrupt or from another pack version."""


@dataclass(frozen=True)
class PackSettings:
    """Everything that determines a pack's contents (saved in its manifest)."""

    prompts: tuple[str, ...] = (DEFAULT_PROMPT,)
    seeds: tuple[int, ...] = (0,)
    figures: tuple[str, ...] = FIGURES
    stride: int = STRIDE
    guidance: float = DDPM_GUIDANCE
    photo: str = "camera"
    forward_ts: tuple[int, ...] = (250, 500, 750)
    iterative_i_start: int = 10
    i_starts: tuple[int, ...] = SDEDIT_I_STARTS
    edit_prompt: str = "a rocket ship"
    inpaint_box: tuple[float, float, float, float] = (0.0, 0.25, 0.5, 0.75)  # top, left, bottom, right
    anagram_prompts: tuple[str, str] = (
        "an oil painting of people around a campfire",
        "an oil painting of an old man",
    )
    anagram_view: str = "flip"
    hybrid_prompts: tuple[str, str] = ("a lithograph of a skull", "a lithograph of waterfalls")  # far, close
    # Part 0's figure: the course's three prompts, each at two step counts (20 and 50), one seed
    part0_prompts: tuple[str, ...] = PART0_PROMPTS
    part0_strides: tuple[int, ...] = PART0_STRIDES

    def __post_init__(self):
        unknown = [f for f in self.figures if f not in FIGURES]
        if unknown or not self.figures:
            raise ValueError(f"unknown figures {unknown}; choose from {', '.join(FIGURES)}")
        if not self.seeds or not self.prompts:
            raise ValueError("a pack needs at least one prompt and one seed")

    def needed_prompts(self) -> list[str]:
        need = [NULL_PROMPT, DEFAULT_PROMPT, *self.prompts]
        need += [self.edit_prompt] if "text_edit" in self.figures else []
        need += list(self.anagram_prompts) if "anagram" in self.figures else []
        need += list(self.hybrid_prompts) if "hybrid" in self.figures else []
        need += list(self.part0_prompts) if "part0" in self.figures else []
        return list(dict.fromkeys(need))


@dataclass(frozen=True)
class Figure:
    name: str
    arrays: Mapping[str, np.ndarray]  # read-only numpy arrays
    meta: Mapping


@dataclass(frozen=True)
class Pack:
    """A validated pack; arrays are read-only."""

    path: Path
    manifest: Mapping = field(repr=False)
    figures: Mapping[str, Figure] = field(repr=False)

    @property
    def model_id(self) -> str:
        return self.manifest["model"]["id"]

    @property
    def settings(self) -> Mapping:
        return self.manifest["settings"]

    def figure(self, name: str) -> Figure:
        if name not in self.figures:
            raise PackError(f"pack {self.path} has no figure {name!r}; it has {', '.join(self.figures)}")
        return self.figures[name]



def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _frozen(value):
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def open_pack(pack_dir: str | os.PathLike) -> Pack:
    """Read and verify a pack (version, keys, checksums, array names, shapes and dtypes)."""
    from safetensors.numpy import load as st_load

    root = Path(pack_dir)
    redo = "Recompute it with: python -m engine precompute --backend deepfloyd --pack PATH"
    if not (root / MANIFEST).is_file():
        raise PackError(f"{root} is not an artifact pack: no {MANIFEST}. {redo}")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PackError(f"{root / MANIFEST} is not valid JSON ({e}). {redo}") from e
    if not isinstance(manifest, dict):
        raise PackError(f"{root / MANIFEST} is not a JSON object. {redo}")
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise PackError(f"{root / MANIFEST} lacks {', '.join(missing)}. {redo}")
    if manifest["pack_version"] != PACK_VERSION:
        raise PackError(
            f"{root} is pack version {manifest['pack_version']!r}; this engine reads version "
            f"{PACK_VERSION}. {redo}"
        )
    blobs = {}
    for rel, info in manifest["files"].items():
        path = root / rel
        if (
            Path(rel).is_absolute()
            or ".." in Path(rel).parts
            or not path.resolve().is_relative_to(root.resolve())
        ):
            raise PackError(f"pack file {rel!r} points outside the pack {root}. {redo}")
        if not path.is_file():
            raise PackError(f"pack file missing: {path}. {redo}")
        data = path.read_bytes()
        if len(data) != info.get("bytes") or sha256(data) != info.get("sha256"):
            raise PackError(f"pack file corrupt (checksum mismatch): {path}. {redo}")
        blobs[rel] = data
    figures = {}
    for name, info in manifest["figures"].items():
        if name not in REQUIRED_ARRAYS:
            raise PackError(f"{root} has an unknown figure {name!r}. {redo}")
        if info.get("file") not in blobs:
            raise PackError(f"figure {name!r} names {info.get('file')!r}, which has no checksum. {redo}")
        try:
            arrays = st_load(blobs[info["file"]])
        except Exception as e:  # noqa: BLE001
            raise PackError(f"figure file {root / info['file']} is unreadable ({e}). {redo}") from e
        lacking = [k for k in REQUIRED_ARRAYS[name] if k not in arrays]
        if lacking:
            raise PackError(f"figure {name!r} in {root} lacks arrays {', '.join(lacking)}. {redo}")
        for key, a in arrays.items():
            want = info.get("arrays", {}).get(key, {})
            if list(a.shape) != want.get("shape") or str(a.dtype) != want.get("dtype"):
                raise PackError(
                    f"array {name}/{key} in {root} has shape {list(a.shape)} {a.dtype}, manifest says "
                    f"{want.get('shape')} {want.get('dtype')}. {redo}"
                )
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise PackError(f"array {name}/{key} in {root} holds NaN or inf values. {redo}")
            a.setflags(write=False)
        figures[name] = Figure(name, MappingProxyType(arrays), _frozen(info.get("meta", {})))
    return Pack(root, _frozen(manifest), MappingProxyType(figures))
