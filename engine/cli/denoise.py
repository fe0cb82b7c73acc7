"""``python -m engine denoise``: the single-step denoiser (CS180 B1.2) on noisy MNIST, its MSE
and PSNR against the clean digits; ``--out`` saves clean, noisy and denoised (N, 28, 28) to an .npz.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CLIError, check_out, nonneg, positive, save_npz, setup_threads


def register(sub) -> None:
    from ..course import DENOISER_SIGMA

    d = sub.add_parser("denoise", help="run a denoiser on noisy MNIST and report MSE/PSNR")
    d.add_argument("--model", default="denoiser", choices=["denoiser", "denoiser-pure-noise"])
    d.add_argument("--model-dir", help="any trained denoiser run's folder (instead of --model)")
    d.add_argument("--sigma", type=nonneg(float), default=DENOISER_SIGMA)
    d.add_argument("--split", choices=["train", "test"], default="test")
    d.add_argument("--count", type=positive(int), default=1000)
    d.add_argument("--seed", type=nonneg(int), default=0)
    d.add_argument("--models-dir", help=argparse.SUPPRESS)
    d.add_argument("--out")
    d.set_defaults(handler=run)


def run(args) -> int:
    import torch

    from ..adapters import load_model
    from ..data import load_mnist
    from ..forward import add_noise_sigma
    from ..metrics import mse, psnr

    out = check_out(args.out) if args.out else None
    setup_threads(None)
    net, cfg, _ = load_model(args.model, Path(args.models_dir) if args.models_dir else None, args.model_dir)
    if cfg.objective != "denoiser":
        raise CLIError(f"python -m engine denoise: {args.model_dir} holds a {cfg.objective}, not a denoiser")
    split = load_mnist(args.split)
    count = min(args.count, split.images.shape[0])
    clean = split.images[:count]
    gen = torch.Generator().manual_seed(args.seed)
    noise = torch.randn(clean.shape, generator=gen)
    noisy = noise if cfg.pure_noise else add_noise_sigma(clean, args.sigma, noise=noise)
    with torch.inference_mode():
        denoised = torch.cat([net(b) for b in noisy.split(250)])
    name = args.model_dir or args.model
    print(f"{name} sigma={args.sigma} {args.split}[:{count}]: MSE {mse(denoised, clean):.5f} "
          f"PSNR {psnr(denoised, clean):.2f} dB (noisy input PSNR {psnr(noisy, clean):.2f} dB)")
    if out:
        save_npz(out, clean=clean[:, 0].numpy(), noisy=noisy[:, 0].numpy(), denoised=denoised[:, 0].numpy())
    return 0
