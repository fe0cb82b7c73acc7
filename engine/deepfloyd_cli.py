"""Command-line subcommands for the DeepFloyd IF backend.

    sample     --backend deepfloyd --model-path ID_OR_DIR --prompt-embeds FILE --prompt P --count 2
               --stride 30 --guidance 7 --seed 0 --out FILE.npz
    precompute --backend deepfloyd --model-path ID_OR_DIR --prompt-embeds FILE --pack DIR
    embed      --model-path ID_OR_DIR [--prompt-embeds FILE] [--prompt P ...]   (fill the cache)

``engine/cli.py`` wires them in: ``add_backend_args(sample_parser)`` adds the backend flags to its
existing ``sample`` (which delegates with ``run_sample(args)`` when ``args.backend ==
"deepfloyd"``), and ``add_commands(subparsers)`` adds ``precompute`` and ``embed``. Handlers
return an exit status; user errors print one line on stderr (status 1), never a traceback.
``python -m engine.deepfloyd_cli`` runs the three commands on their own.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from .cli import CLIError, nonneg, positive, sampler_settings

NPZ_KEYS = ("images", "prompts", "seed", "guidance", "stride", "model")


def add_backend_args(parser: argparse.ArgumentParser, default_backend: str = "builtin") -> None:
    """Flags shared by the DeepFloyd commands (without sample's --count/--stride/--guidance/--seed/--out,
    which engine/cli.py's ``sample`` already has)."""
    from .deepfloyd.model import DEFAULT_MODEL_ID

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


def add_sample_args(parser: argparse.ArgumentParser) -> None:
    """Everything ``run_sample`` reads, for a stand-alone ``sample`` parser."""
    add_backend_args(parser, default_backend="deepfloyd")
    parser.add_argument("--count", type=positive(int), default=None, help="images per prompt (default 1)")
    parser.add_argument("--sampler", choices=["ddpm", "ddim", "dpmpp-2m"], help="default: the course's loop")
    parser.add_argument("--steps", type=positive(int), help="ddim/dpmpp-2m steps (default 20)")
    parser.add_argument("--stride", type=positive(int), help="the course's DDPM stride (default 30)")
    parser.add_argument("--eta", type=nonneg(float), help="DDIM's eta in [0, 1] (default 0)")
    parser.add_argument("--guidance", type=nonneg(float), default=None, help="CFG scale (default 7)")
    parser.add_argument("--seed", type=nonneg(int), default=0)
    parser.add_argument("--out", required=True)


def add_commands(subparsers, include_sample: bool = False) -> None:
    """Add ``precompute`` and ``embed`` (and a full ``sample`` when ``include_sample``)."""
    from .packs import FIGURES

    if include_sample:
        s = subparsers.add_parser("sample", help="sample images into an .npz")
        add_sample_args(s)
        s.set_defaults(handler=run_sample)
    p = subparsers.add_parser("precompute", help="compute the Part A figure set into an artifact pack")
    add_backend_args(p, default_backend="deepfloyd")
    p.add_argument("--pack", required=True, help="output folder")
    p.add_argument("--seed", type=nonneg(int), action="append", help="repeatable; default 0")
    p.add_argument("--figures", default=",".join(FIGURES), help="comma-separated subset of the figure set")
    p.add_argument("--stride", type=positive(int), default=30)
    p.add_argument("--guidance", type=nonneg(float), default=7.0)
    p.add_argument("--photo", default="camera", help="shipped sample photo for the editing figures")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(handler=run_precompute)
    e = subparsers.add_parser("embed", help="import or T5-encode prompt embeddings into the cache")
    add_backend_args(e, default_backend="deepfloyd")
    e.set_defaults(handler=run_embed)


def _fail(message: str) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def _guarded(fn):
    """Run a handler; DeepFloyd, pack, file and value errors become one line on stderr."""

    def run(args) -> int:
        from .checkpoints import CheckpointError
        from .deepfloyd.model import DeepFloydError
        from .packs import PackError

        try:
            return fn(args)
        except (DeepFloydError, PackError, CheckpointError, ValueError, OSError) as e:
            return _fail(e)
        except CLIError as e:  # a combination of flags that does not fit: one line, status 2
            print(str(e), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    run.__name__, run.__doc__ = fn.__name__, fn.__doc__
    return run


def _load(args, prompts):
    """The adapter, with ``prompts`` (plus "" for CFG) imported or encoded into its cache."""
    import warnings

    from .deepfloyd.model import NULL_PROMPT, SlowOnCPUWarning, encode_with_t5, load_deepfloyd

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


@_guarded
def run_sample(args) -> int:
    """images float32 (N, 3, H, W) in [0, 1], prompts (N,), seed, ... -> args.out (.npz)."""
    import numpy as np
    import torch

    from .checkpoints import atomic_write_bytes
    from .deepfloyd.model import DEFAULT_PROMPT, sample_images

    out = Path(args.out)
    if not out.parent.is_dir() or out.is_dir():
        return _fail(f"output folder does not exist or the output is a folder: {out}")
    prompts = args.prompt or [DEFAULT_PROMPT]
    count = args.count or 1
    guidance = 7.0 if args.guidance is None else args.guidance
    sampler, steps, stride, eta = sampler_settings(args, "ddpm")
    adapter = _load(args, prompts)
    gen = torch.Generator().manual_seed(args.seed)
    traj = sample_images(adapter, prompts, count, stride, guidance, gen, sampler=sampler, steps=steps,
                         eta=eta)
    images = traj.to_unit().final
    buf = io.BytesIO()
    np.savez(
        buf,
        images=images.astype(np.float32),
        prompts=np.array([p for p in prompts for _ in range(count)]),
        seed=np.int64(args.seed),
        guidance=np.float32(guidance),
        stride=np.int64(stride),
        sampler=np.array(sampler),
        nfe=np.int64(traj.nfe),
        model=np.array(str(args.model_path)),
    )
    atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {images.shape[0]} images to {out}")
    return 0


@_guarded
def run_precompute(args) -> int:
    from .deepfloyd.model import DEFAULT_PROMPT
    from .packs import PackSettings
    from .precompute import precompute_pack

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


@_guarded
def run_embed(args) -> int:
    adapter = _load(args, args.prompt or [])
    prompts = adapter.embeddings.prompts()
    print(f"{len(prompts)} prompt embeddings in {adapter.embeddings.folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    class Parser(argparse.ArgumentParser):
        def error(self, message):
            print(f"{self.prog}: {message}", file=sys.stderr)
            raise SystemExit(2)

    parser = Parser(prog="python -m engine.deepfloyd_cli", description="DeepFloyd IF backend")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_commands(sub, include_sample=True)
    args = parser.parse_args(argv)
    if getattr(args, "backend", "deepfloyd") != "deepfloyd":
        return _fail("this command only runs the DeepFloyd backend: pass --backend deepfloyd")
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
