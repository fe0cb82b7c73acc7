"""Artifact packs: the CS180 Part A figure set computed once on a GPU, browsed anywhere.

``precompute_pack`` runs the engine's own algorithms (``engine.forward``, ``denoise``,
``guidance``, ``editing``, ``illusions``) through a text-conditioned adapter (DeepFloyd IF,
``engine.deepfloyd``) and writes a self-describing folder:

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
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from . import checkpoints as ckpt
from .deepfloyd import DEFAULT_PROMPT, NULL_PROMPT, sample_images
from .denoise import gaussian_blur, iterative_denoise, one_step_denoise
from .editing import SDEDIT_I_STARTS, inpaint, rectangle_mask, sdedit_sweep
from .forward import forward
from .guidance import CFGModel
from .illusions import AnagramModel, HybridModel, get_view
from .sampling import to_unit
from .schedule import strided_timesteps

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
}
MANIFEST_KEYS = ("pack_version", "created", "model", "versions", "settings", "figures", "files")


class PackError(RuntimeError):
    """A pack that is missing, incomplete, corrupt or from another pack version."""


@dataclass(frozen=True)
class PackSettings:
    """Everything that determines a pack's contents (saved in its manifest)."""

    prompts: tuple[str, ...] = (DEFAULT_PROMPT,)
    seeds: tuple[int, ...] = (0,)
    figures: tuple[str, ...] = FIGURES
    stride: int = 30
    guidance: float = 7.0
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


# ----------------------------------------------------------------------------- computing


def _unit(x: torch.Tensor) -> torch.Tensor:
    return to_unit(x.float().cpu())


def _traj(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Steps of (B, C, H, W) -> (B, T, C, H, W) float16 in [0, 1]."""
    return torch.stack([_unit(x) for x in xs], 1).half()


def _load_photo(name: str, size: int) -> torch.Tensor:
    """A shipped sample photo as (1, 3, size, size) in [-1, 1]."""
    from .data import load_photo

    photo = load_photo(name)[None]
    if photo.shape[-1] != size:
        photo = torch.nn.functional.interpolate(photo, size=(size, size), mode="bilinear", antialias=True)
    return photo.clamp(0, 1) * 2 - 1


def _figure(name: str, adapter, s: PackSettings, photo: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """One figure for one seed, through the engine's algorithms. Arrays without the seed axis."""
    gen = torch.Generator().manual_seed(seed)
    sched = adapter.schedule
    ts = strided_timesteps(s.stride)
    photo_cond = adapter.encode([DEFAULT_PROMPT])
    guided = CFGModel(adapter, adapter.null_cond(1), s.guidance, 3)
    ts_arr = torch.tensor(ts)
    if name in ("samples", "cfg"):
        traj = sample_images(adapter, s.prompts, 1, s.stride, 1.0 if name == "samples" else s.guidance, gen)
        return {"images": _unit(traj.final), "trajectory": _traj(traj.x), "timesteps": ts_arr}
    if name in ("forward", "one_step"):
        noisy = torch.cat([forward(photo, t, sched, generator=gen) for t in s.forward_ts])
        out = {"photo": _unit(photo[0]), "noisy": _unit(noisy), "timesteps": torch.tensor(s.forward_ts)}
        if name == "one_step":
            out["denoised"] = _unit(
                torch.cat(
                    [
                        one_step_denoise(adapter, x[None], t, sched, photo_cond)
                        for x, t in zip(noisy, s.forward_ts, strict=True)
                    ]
                )
            )
            out["blurred"] = _unit(gaussian_blur(noisy))
        return out
    if name == "iterative":
        i = s.iterative_i_start
        x_t = forward(photo, ts[i], sched, generator=gen)
        traj = iterative_denoise(adapter, x_t, i, ts, sched, photo_cond, gen)
        return {
            "photo": _unit(photo[0]),
            "noisy": _unit(x_t[0]),
            "trajectory": _traj(traj.x),
            "x0_hat": _traj(traj.x0_hat),
            "final": _unit(traj.final),
            "one_step": _unit(one_step_denoise(adapter, x_t, ts[i], sched, photo_cond)),
            "blurred": _unit(gaussian_blur(x_t)),
            "timesteps": torch.tensor(traj.timesteps),
        }
    if name in ("sdedit", "text_edit"):
        cond = photo_cond if name == "sdedit" else adapter.encode([s.edit_prompt])
        edits = sdedit_sweep(
            guided, photo, s.i_starts, timesteps=ts, schedule=sched, cond=cond, generator=gen
        )
        return {
            "photo": _unit(photo[0]),
            "edits": _unit(torch.cat(edits)),
            "i_starts": torch.tensor(s.i_starts),
        }
    if name == "inpaint":
        h = photo.shape[-1]
        top, left, bottom, right = (round(f * h) for f in s.inpaint_box)
        mask = rectangle_mask(h, h, top, left, bottom, right)
        traj = inpaint(guided, photo, mask, ts, sched, photo_cond, gen)
        return {
            "photo": _unit(photo[0]),
            "mask": mask[0],
            "images": _unit(traj.final),
            "trajectory": _traj(traj.x),
            "timesteps": ts_arr,
        }
    if name in ("anagram", "hybrid"):
        if name == "anagram":
            c1, c2 = adapter.encode(list(s.anagram_prompts)).split(1)
            model = AnagramModel(guided, c1, c2, s.anagram_view, 3)
        else:
            far, near = adapter.encode(list(s.hybrid_prompts)).split(1)
            model = HybridModel(guided, far, near, channels=3)
        noise = torch.randn(photo.shape, generator=gen)
        traj = iterative_denoise(model, noise, 0, ts, sched, None, gen)
        out = {"images": _unit(traj.final), "trajectory": _traj(traj.x), "timesteps": ts_arr}
        if name == "anagram":
            out["flipped"] = get_view(s.anagram_view).apply(out["images"])
        return out
    raise ValueError(f"unknown figure {name!r}")


def _figure_meta(name: str, s: PackSettings) -> dict:
    meta = {"stride": s.stride, "value_range": [0.0, 1.0]}
    if name == "samples":
        meta |= {"prompts": list(s.prompts), "guidance": 1.0}
    elif name == "cfg":
        meta |= {"prompts": list(s.prompts), "guidance": s.guidance}
    elif name in ("forward", "one_step", "iterative"):
        meta |= {"photo": s.photo, "prompt": DEFAULT_PROMPT}
        if name == "iterative":
            meta["i_start"] = s.iterative_i_start
    elif name in ("sdedit", "text_edit", "inpaint"):
        meta |= {
            "photo": s.photo,
            "guidance": s.guidance,
            "prompt": s.edit_prompt if name == "text_edit" else DEFAULT_PROMPT,
        }
    elif name == "anagram":
        meta |= {"prompts": list(s.anagram_prompts), "view": s.anagram_view, "guidance": s.guidance}
    elif name == "hybrid":
        meta |= {"prompts_far_near": list(s.hybrid_prompts), "guidance": s.guidance}
    return meta


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "numpy", "diffusers", "transformers", "safetensors", "huggingface_hub"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def precompute_pack(
    adapter,
    pack_dir: str | os.PathLike,
    prompts: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    figures: Sequence[str] | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    **settings,
) -> Pack:
    """Compute ``figures`` (default: the full Part A set) for every seed and write a pack.

    ``settings`` overrides ``PackSettings`` fields (stride, guidance, photo, i_starts, ...). The
    pack appears atomically: it is written to a temporary folder and renamed into place.
    """
    given = {"prompts": prompts, "seeds": seeds, "figures": figures}
    s = PackSettings(**{k: tuple(v) for k, v in given.items() if v is not None})
    s = replace(s, **{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    pack_dir = Path(pack_dir)
    if pack_dir.exists() and not overwrite:
        raise PackError(
            f"{pack_dir} already exists; choose another path or pass overwrite=True (--overwrite)"
        )
    adapter.encode(s.needed_prompts())  # every missing embedding fails now, before any work
    photo = _load_photo(s.photo, adapter.spec.image_size)

    pack_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=pack_dir.parent, prefix=f".{pack_dir.name}.tmp-"))
    try:
        figures_meta, files = {}, {}
        for k, name in enumerate(s.figures):
            if progress is not None:
                progress(name, k, len(s.figures))
            per_seed = [_figure(name, adapter, s, photo, seed) for seed in s.seeds]
            arrays = {key: torch.stack([a[key] for a in per_seed]) for key in per_seed[0]}
            for key in ("timesteps", "i_starts", "mask"):
                if key in arrays:
                    arrays[key] = arrays[key][0]
            rel = f"figures/{name}.safetensors"
            meta = _figure_meta(name, s)
            ckpt.save_tensors(tmp / rel, arrays, {"figure": name, **meta})
            figures_meta[name] = {
                "file": rel,
                "meta": meta,
                "arrays": {
                    key: {"shape": list(a.shape), "dtype": str(a.dtype).removeprefix("torch.")}
                    for key, a in arrays.items()
                },
            }
        for path in sorted((tmp / "figures").iterdir()):
            data = path.read_bytes()
            files[f"figures/{path.name}"] = {"sha256": _sha256(data), "bytes": len(data)}
        manifest = {
            "pack_version": PACK_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": {
                "id": str(getattr(adapter, "model_id", adapter.spec.name)),
                "spec": asdict(adapter.spec) | {"prompts": []},
                "dtype": str(getattr(adapter, "dtype", "")),
                "device": str(getattr(adapter, "device", "")),
                "num_timesteps": adapter.schedule.num_timesteps,
            },
            "versions": _versions(),
            "settings": asdict(s),
            "figures": figures_meta,
            "files": files,
        }
        ckpt.atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=1))
        if pack_dir.exists():
            old = pack_dir.with_name(f".{pack_dir.name}.old-{os.getpid()}")
            os.replace(pack_dir, old)
            os.replace(tmp, pack_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, pack_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return open_pack(pack_dir)


# ----------------------------------------------------------------------------- reading


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
        if len(data) != info.get("bytes") or _sha256(data) != info.get("sha256"):
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
