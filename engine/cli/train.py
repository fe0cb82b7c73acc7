"""``python -m engine train MODEL``: train a built-in model (checkpoints every few minutes; --resume).

SIGTERM or Ctrl-C finishes the current step, writes a checkpoint and exits; ``--resume`` goes on.
Under torchrun every rank trains and rank 0 reports.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from .common import nonneg, positive, setup_threads


def register(sub) -> None:
    from ..config import PRESETS

    t = sub.add_parser("train", help="train a built-in model (checkpoints every epoch; --resume)")
    t.add_argument("model", choices=sorted(PRESETS))
    t.add_argument("--out", help="run directory (default cache/runs/MODEL)")
    t.add_argument("--recipe", default="course",
                   help="course (the preset, default) or class (flow-class and denoiser: minutes on a "
                   "CPU; docs/training.md); the flags below override it")
    t.add_argument("--epochs", type=positive(int))
    t.add_argument("--batch-size", type=positive(int))
    t.add_argument("--lr", type=positive(float))
    t.add_argument("--lr-schedule", choices=["exponential", "constant", "cosine"])
    t.add_argument("--warmup-steps", type=nonneg(int), help="cosine schedule: linear warm-up steps")
    t.add_argument("--ema-decay", type=nonneg(float), help="keep (and ship) a weights EMA: 0.999")
    t.add_argument("--t-sampling", choices=["uniform", "logit-normal"], help="flow matching's training times")
    t.add_argument("--t-zero-share", type=nonneg(float), help="share of training times at exactly 0")
    t.add_argument("--pairs", help="reflow: the teacher's pairs (python -m engine reflow-pairs --out FILE)")
    t.add_argument("--init-from", help="start from these weights (a model.safetensors)")
    t.add_argument("--num-hiddens", type=positive(int))
    t.add_argument("--sigma", type=nonneg(float))
    t.add_argument("--p-uncond", type=nonneg(float))
    t.add_argument("--seed", type=nonneg(int))
    t.add_argument("--train-count", type=nonneg(int), help="train on the first N images only")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--device", default="auto")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    t.add_argument("--threads", type=positive(int))
    t.add_argument("--checkpoint-every", type=positive(float), default=300.0, metavar="SECONDS")
    t.add_argument("--max-steps", type=positive(int), help=argparse.SUPPRESS)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(handler=run)


def run(args) -> int:
    from tqdm import tqdm

    from .. import train as tr
    from ..config import PRESETS, with_recipe
    from ..device import init_distributed
    from ..sampling import snapshot

    try:
        cfg = with_recipe(PRESETS[args.model], args.recipe)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    overrides = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "lr_schedule": args.lr_schedule, "num_hiddens": args.num_hiddens, "sigma": args.sigma,
        "p_uncond": args.p_uncond, "seed": args.seed, "train_count": args.train_count,
        "warmup_steps": args.warmup_steps, "ema_decay": args.ema_decay, "t_sampling": args.t_sampling,
        "t_zero_share": args.t_zero_share, "pairs": args.pairs, "init_from": args.init_from,
    }
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    out = Path(args.out) if args.out else Path("cache/runs") / cfg.name
    setup_threads(args.threads)
    distributed = init_distributed()
    rank = int(os.environ.get("RANK", "0"))
    bar = None

    def on_progress(p: tr.Progress):
        nonlocal bar
        if args.no_progress or rank != 0:
            return
        if bar is None:
            bar = tqdm(total=p.total_steps, initial=p.step - 1, desc=cfg.name, unit="step",
                       dynamic_ncols=True, mininterval=1.0)
        bar.update(1)
        bar.set_postfix(epoch=p.epoch + 1, loss=f"{p.loss:.4f}", lr=f"{p.lr:.2e}",
                        samples_s=f"{p.samples_per_s:.0f}", refresh=False)

    command = "python -m engine " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    # SIGTERM/SIGINT: finish the current step, write a checkpoint, exit ("cancelled").
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        manifest = tr.train(
            cfg, out, resume=args.resume, device=args.device, precision=args.precision,
            checkpoint_every_s=args.checkpoint_every, on_progress=on_progress, stop_event=stop,
            snapshot_fn=snapshot, command=command, max_steps=args.max_steps,
        )
    finally:
        if bar is not None:
            bar.close()
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    if rank == 0:
        status = manifest.get("status")
        if status == "finished":
            print(f"finished {cfg.name}: {manifest['samples_per_s']} samples/s, final loss "
                  f"{manifest['final_loss']}, weights in {out / 'model.safetensors'}")
        else:
            print(f"stopped {cfg.name} ({status}); continue with --resume --out {out}")
    return 0
