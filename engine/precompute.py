"""Computing an artifact pack (``engine.packs``): the Part A figure set through the engine's own
algorithms (``engine.forward``, ``denoise``, ``guidance``, ``editing``, ``illusions``) and a
text-conditioned adapter (DeepFloyd IF, ``engine.deepfloyd.model``). Run once on a GPU by
``python -m engine precompute``; the dashboard browses the result on any laptop.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path

import torch

from . import checkpoints as ckpt
from .deepfloyd.model import DEFAULT_PROMPT, sample_images
from .denoise import gaussian_blur, iterative_denoise, one_step_denoise
from .editing import inpaint, rectangle_mask, sdedit_sweep
from .forward import forward
from .guidance import CFGModel
from .illusions import AnagramModel, HybridModel, get_view
from .packs import MANIFEST, PACK_VERSION, Pack, PackError, PackSettings, open_pack, sha256
from .schedule import strided_timesteps
from .trajectory import to_unit


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(to_unit(x))


def _traj(xs: torch.Tensor) -> torch.Tensor:
    """Steps (T, B, C, H, W) in [-1, 1] -> (B, T, C, H, W) float16 in [0, 1]."""
    return _unit(xs).transpose(0, 1).half()


def _load_photo(name: str, size: int) -> torch.Tensor:
    """A shipped sample photo as (1, 3, size, size) in [-1, 1]."""
    from .data import load_photo

    photo = load_photo(name)[None]
    if photo.shape[-1] != size:
        photo = torch.nn.functional.interpolate(photo, size=(size, size), mode="bilinear", antialias=True)
    return photo.clamp(0, 1) * 2 - 1


@dataclass(frozen=True)
class _Inputs:
    """What the figures of one seed share: the adapter and settings, the photo (1, 3, H, W) in
    [-1, 1], the course's strided timesteps, the photo's prompt embedding, the guided model and a
    generator seeded for this figure alone."""

    adapter: object
    s: PackSettings
    photo: torch.Tensor
    seed: int
    gen: torch.Generator
    ts: list[int]
    photo_cond: torch.Tensor
    guided: CFGModel


def _figure(name: str, adapter, s: PackSettings, photo: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """One figure for one seed, through the engine's algorithms. Arrays without the seed axis."""
    if name not in _FIGURES:
        raise ValueError(f"unknown figure {name!r}")
    inputs = _Inputs(
        adapter, s, photo, seed, torch.Generator().manual_seed(seed), strided_timesteps(s.stride),
        adapter.encode([DEFAULT_PROMPT]), CFGModel(adapter, adapter.null_cond(1), s.guidance),
    )
    return _FIGURES[name](inputs, name)


def _part0(r: _Inputs, name: str) -> dict[str, torch.Tensor]:
    """Part 0: the prompts at each stride; every stride starts from the same seed's noise."""
    adapter, s, seed = r.adapter, r.s, r.seed
    fresh = torch.Generator().manual_seed
    rows = [
        _unit(sample_images(adapter, s.part0_prompts, 1, k, s.guidance, fresh(seed)).final)
        for k in s.part0_strides
    ]
    return {"images": torch.stack(rows, dim=1), "strides": torch.tensor(s.part0_strides)}


def _samples(r: _Inputs, name: str) -> dict[str, torch.Tensor]:
    """From pure noise: the figure "samples" without guidance (gamma 1), "cfg" with the settings'."""
    adapter, s, gen = r.adapter, r.s, r.gen
    traj = sample_images(adapter, s.prompts, 1, s.stride, 1.0 if name == "samples" else s.guidance, gen)
    return {"images": _unit(traj.final), "trajectory": _traj(traj.x), "timesteps": torch.tensor(r.ts)}


def _forward(r: _Inputs, name: str) -> dict[str, torch.Tensor]:
    """The photo noised to each of ``forward_ts`` (the figure "forward"); "one_step" adds
    one-step denoising and a Gaussian blur of the same noisy images."""
    adapter, s, photo, gen, photo_cond = r.adapter, r.s, r.photo, r.gen, r.photo_cond
    sched = adapter.schedule
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


def _iterative(r: _Inputs, name: str) -> dict[str, torch.Tensor]:
    """The photo noised to ``ts[iterative_i_start]`` and denoised by the strided loop, beside one
    step and a blur."""
    adapter, photo, ts, gen, photo_cond = r.adapter, r.photo, r.ts, r.gen, r.photo_cond
    sched = adapter.schedule
    i = r.s.iterative_i_start
    x_t = forward(photo, ts[i], sched, generator=gen)
    traj = iterative_denoise(adapter, x_t, ts[i:], cond=photo_cond, generator=gen, schedule=sched)
    return {
        "photo": _unit(photo[0]),
        "noisy": _unit(x_t[0]),
        "trajectory": _traj(traj.x),
        "x0_hat": _traj(traj.x_hat[:-1]),  # the estimates the steps made (pack v1)
        "final": _unit(traj.final),
        "one_step": _unit(one_step_denoise(adapter, x_t, ts[i], sched, photo_cond)),
        "blurred": _unit(gaussian_blur(x_t)),
        "timesteps": torch.tensor(traj.times),
    }


def _sdedit(r: _Inputs, name: str) -> dict[str, torch.Tensor]:
    """SDEdit of the photo from each of ``i_starts``: with the photo's prompt ("sdedit") or with
    ``edit_prompt`` ("text_edit")."""
    adapter, s, photo, guided, ts, gen = r.adapter, r.s, r.photo, r.guided, r.ts, r.gen
    sched = adapter.schedule
    cond = r.photo_cond if name == "sdedit" else adapter.encode([s.edit_prompt])
    edits = sdedit_sweep(
        guided, photo, s.i_starts, timesteps=ts, schedule=sched, cond=cond, generator=gen
    )
    return {
        "photo": _unit(photo[0]),
        "edits": _unit(torch.cat(edits)),
        "i_starts": torch.tensor(s.i_starts),
    }


def _inpaint(r: _Inputs, name: str) -> dict[str, torch.Tensor]:
    """The photo with ``inpaint_box`` (fractions of the side) generated anew."""
    guided, photo, ts, photo_cond, gen = r.guided, r.photo, r.ts, r.photo_cond, r.gen
    sched = r.adapter.schedule
    h = photo.shape[-1]
    top, left, bottom, right = (round(f * h) for f in r.s.inpaint_box)
    mask = rectangle_mask(h, h, top, left, bottom, right)
    traj = inpaint(guided, photo, mask, ts, sched, photo_cond, gen)
    return {
        "photo": _unit(photo[0]),
        "mask": mask[0],
        "images": _unit(traj.final),
        "trajectory": _traj(traj.x),
        "timesteps": torch.tensor(ts),
    }


def _illusion(r: _Inputs, name: str) -> dict[str, torch.Tensor]:
    """From pure noise: an "anagram" (two prompts, one seen through ``anagram_view``) or a
    "hybrid" (the far prompt in the low frequencies, the near one in the high)."""
    s, guided, ts, gen, sched = r.s, r.guided, r.ts, r.gen, r.adapter.schedule
    if name == "anagram":
        c1, c2 = r.adapter.encode(list(s.anagram_prompts)).split(1)
        model = AnagramModel(guided, [c1, c2], ["identity", s.anagram_view])
    else:
        far, near = r.adapter.encode(list(s.hybrid_prompts)).split(1)
        model = HybridModel(guided, far, near)
    noise = torch.randn(r.photo.shape, generator=gen)
    traj = iterative_denoise(model, noise, ts, generator=gen, schedule=sched)
    out = {"images": _unit(traj.final), "trajectory": _traj(traj.x), "timesteps": torch.tensor(ts)}
    if name == "anagram":
        out["flipped"] = get_view(s.anagram_view).apply(out["images"])
    return out


_FIGURES = {
    "part0": _part0, "samples": _samples, "cfg": _samples, "forward": _forward, "one_step": _forward,
    "iterative": _iterative, "sdedit": _sdedit, "text_edit": _sdedit, "inpaint": _inpaint,
    "anagram": _illusion, "hybrid": _illusion,
}


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
    elif name == "part0":
        meta |= {"prompts": list(s.part0_prompts), "strides": list(s.part0_strides), "guidance": s.guidance}
    return meta


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "numpy", "diffusers", "transformers", "safetensors", "huggingface_hub"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


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
            for key in ("timesteps", "i_starts", "mask", "strides"):
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
            files[f"figures/{path.name}"] = {"sha256": sha256(data), "bytes": len(data)}
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
