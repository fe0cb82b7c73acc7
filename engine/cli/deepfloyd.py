"""``python -m engine`` for the DeepFloyd IF backend (Part A at 64 x 64, ``engine.deepfloyd``):

    sample     --backend deepfloyd --model-path ID_OR_DIR --prompt-embeds FILE --prompt P --count 2
               --seed 0 --out FILE.npz
    precompute --model-path ID_OR_DIR --prompt-embeds FILE --pack DIR [--figures forward,cfg,...]
    embed      --model-path ID_OR_DIR [--prompt-embeds FILE] [--prompt P ...]   (fill the cache)

``sample`` is the built-in command's (``engine.cli.sample``) with the flags of
``add_backend_args``; it hands ``--backend deepfloyd`` to ``run_sample``. ``register`` adds
``precompute`` and ``embed``. DeepFloyd and pack errors reach ``engine.cli.main``, which prints
them as one line (status 1), never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from .common import nonneg, positive, sampler_settings, save_npz


def add_backend_args(parser: argparse.ArgumentParser, default_backend: str = "builtin") -> None:
    """The flags every DeepFloyd command reads (``sample`` has its own --count, --stride,
    --guidance, --seed and --out)."""
    from ..deepfloyd.model import DEFAULT_MODEL_ID

    parser.add_argument("--backend", choices=["builtin", "deepfloyd"], default=default_backend)
    parser.add_argument(
        "--model-path",
        default=DEFAULT_MODEL_ID,
        help=f"Hub id or local diffusers folder (default {DEFAULT_MODEL_ID})",
    )
    parser.add_argument("--prompt-embeds", help="import prompt -> embedding dict (.pth or .safetensors)")
    parser.add_argument(
        "--prompt", action="append", help="text prompt (repeatable); default 'a high quality photo'"
    )
    parser.add_argument("--encode-missing", action="store_true", help="run T5 for prompts not in the cache")
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--embeddings-dir", help="embedding cache root (default cache/embeddings)")
    parser.add_argument("--offline", action="store_true", help="never download (like HF_HUB_OFFLINE=1)")


def register(sub) -> None:
    """``precompute`` and ``embed``."""
    from ..course import DDPM_GUIDANCE, STRIDE
    from ..packs import FIGURES

    p = sub.add_parser("precompute", help="compute the Part A figure set into an artifact pack")
    add_backend_args(p, default_backend="deepfloyd")
    p.add_argument("--pack", required=True, help="output folder")
    p.add_argument("--seed", type=nonneg(int), action="append", help="repeatable; default 0")
    p.add_argument("--figures", default=",".join(FIGURES), help="comma-separated subset of the figure set")
    p.add_argument("--stride", type=positive(int), default=STRIDE)
    p.add_argument("--guidance", type=nonneg(float), default=DDPM_GUIDANCE)
    p.add_argument("--photo", default="camera", help="shipped sample photo for the editing figures")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(handler=run_precompute)
    e = sub.add_parser("embed", help="import or T5-encode prompt embeddings into the cache")
    add_backend_args(e, default_backend="deepfloyd")
    e.set_defaults(handler=run_embed)


def _load(args, prompts):
    """The adapter, with ``prompts`` (plus "" for CFG) imported or encoded into its cache."""
    import warnings

    from ..deepfloyd.model import NULL_PROMPT, SlowOnCPUWarning, encode_with_t5, load_deepfloyd

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SlowOnCPUWarning)
        adapter = load_deepfloyd(
            args.model_path,
            device=args.device,
            embeddings_dir=args.embeddings_dir,
            offline=True if args.offline else None,
        )
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.prompt_embeds:
        adapter.embeddings.import_file(args.prompt_embeds)
    need = list(dict.fromkeys([NULL_PROMPT, *prompts]))
    if args.encode_missing:
        encode_with_t5(
            args.model_path,
            need,
            adapter.embeddings,
            device=args.device,
            offline=True if args.offline else None,
        )
    adapter.encode(need)  # a clear EmbeddingsMissingError now rather than mid-run
    return adapter


def run_sample(args) -> int:
    """images float32 (N, 3, H, W) in [0, 1], prompts (N,), seed, ... -> args.out (.npz)."""
    from pathlib import Path

    import numpy as np
    import torch

    from ..course import DDPM_GUIDANCE
    from ..deepfloyd.model import DEFAULT_PROMPT, sample_images

    out = Path(args.out)
    if not out.parent.is_dir() or out.is_dir():
        print(f"error: output folder does not exist or the output is a folder: {out}", file=sys.stderr)
        return 1
    prompts = args.prompt or [DEFAULT_PROMPT]
    count = args.count or 1
    guidance = DDPM_GUIDANCE if args.guidance is None else args.guidance
    sampler, steps, stride, eta = sampler_settings(args, "ddpm")
    adapter = _load(args, prompts)
    gen = torch.Generator().manual_seed(args.seed)
    traj = sample_images(adapter, prompts, count, stride, guidance, gen, sampler=sampler, steps=steps,
                         eta=eta)
    images = traj.to_unit().final
    save_npz(
        out,
        images=images.astype(np.float32),
        prompts=np.array([p for p in prompts for _ in range(count)]),
        seed=np.int64(args.seed),
        guidance=np.float32(guidance),
        stride=np.int64(stride),
        sampler=np.array(sampler),
        nfe=np.int64(traj.nfe),
        model=np.array(str(args.model_path)),
    )
    print(f"wrote {images.shape[0]} images to {out}")
    return 0


def run_precompute(args) -> int:
    from ..deepfloyd.model import DEFAULT_PROMPT
    from ..packs import PackSettings
    from ..precompute import precompute_pack

    figures = [f.strip() for f in args.figures.split(",") if f.strip()]
    fields = {"stride": args.stride, "guidance": args.guidance, "photo": args.photo}
    settings = PackSettings(
        tuple(args.prompt or [DEFAULT_PROMPT]), tuple(args.seed or [0]), tuple(figures), **fields
    )
    adapter = _load(args, settings.needed_prompts())
    pack = precompute_pack(
        adapter,
        args.pack,
        settings.prompts,
        settings.seeds,
        settings.figures,
        overwrite=args.overwrite,
        progress=lambda name, i, n: print(f"[{i + 1}/{n}] {name}", file=sys.stderr),
        **fields,
    )
    print(f"wrote pack {pack.path} ({', '.join(pack.figures)})")
    return 0


def run_embed(args) -> int:
    adapter = _load(args, args.prompt or [])
    prompts = adapter.embeddings.prompts()
    print(f"{len(prompts)} prompt embeddings in {adapter.embeddings.folder}")
    return 0
