"""``python -m engine nll --model NAME``: how likely a flow model finds MNIST test digits (or the
images of an .npz), in bits per dimension, with the Hutchinson estimator's standard error
(``engine.likelihood``; the conventions are in docs/likelihood.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import nonneg, positive, setup_threads

FLOWS = ("flow-class", "flow-time", "flow-class-constant-lr", "flow-class-constant-lr-1e-4")


def register(sub) -> None:
    n = sub.add_parser("nll", help="negative log-likelihood (bits/dim) of digits under a flow model")
    n.add_argument("--model", default="flow-class", choices=FLOWS)
    n.add_argument("--npz", help="score these images instead: key 'images', (N, 1, 28, 28) in [0, 1]")
    n.add_argument("--count", type=positive(int), default=16, help="how many test digits (or images)")
    n.add_argument("--seed", type=nonneg(int), default=0, help="dequantization noise and probes")
    n.add_argument("--steps", type=positive(int), default=32, help="RK4 steps (32: within 0.001 bits/dim)")
    n.add_argument("--probes", type=positive(int), default=4, help="Hutchinson probes per image")
    n.add_argument("--json", action="store_true", help="print the result as JSON")
    n.add_argument("--models-dir", help=argparse.SUPPRESS)
    n.set_defaults(handler=run)


def read_images(path: str):
    """(N, 1, 28, 28) float32 images in [0, 1] from an .npz (no pickles), or a ValueError."""
    import zipfile

    import numpy as np
    import torch

    if not Path(path).is_file() or not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz file (numpy.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            images = np.asarray(data["images"], dtype=np.float32) if "images" in names else None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"cannot read {path} as an .npz: {e}") from None
    if images is None:
        raise ValueError(f"{path} has no 'images' array (it has {', '.join(names) or 'none'})")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28) or len(images) == 0:
        raise ValueError(f"'images' must have shape (N, 1, 28, 28), got {images.shape}")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise ValueError("'images' must be finite values in [0, 1]")
    return torch.from_numpy(images)


def run(args) -> int:
    import sys

    import torch

    from ..adapters import load_builtin
    from ..data import load_mnist
    from ..likelihood import model_nll

    images = read_images(args.npz)[: args.count] if args.npz else load_mnist("test").images[: args.count]
    setup_threads(None)
    net, cfg, _ = load_builtin(args.model, Path(args.models_dir) if args.models_dir else None)

    def progress(done: int, total: int) -> None:
        if not args.json:
            print(f"\r{done}/{total} images", end="", file=sys.stderr, flush=True)

    result = model_nll(net, images, class_conditioned=cfg.arch == "class", steps=args.steps,
                       probes=args.probes, generator=torch.Generator().manual_seed(args.seed),
                       progress=progress)
    result = {"model": args.model, "source": args.npz or "mnist-test", "seed": args.seed, **result}
    if args.json:
        print(json.dumps(result))
    else:
        print(file=sys.stderr)
        print(f"{args.model} on {result['count']} {'images' if args.npz else 'MNIST test digits'}: "
              f"{result['bits_per_dim']:.4f} bits/dim ± {result['probe_se']:.4f} (Hutchinson, "
              f"{args.probes} probes) ± {result['sample_se']:.4f} (over images); RK4, {args.steps} steps")
    return 0
