"""Train flow-class variants from scratch and record when each reaches the class-recipe bar (#21):
``python scripts/recipe_ablation.py VARIANT [VARIANT ...] [--out DIR] [--eval-every N]``.

Each variant is the course's flow-class preset with the overrides below; scores go to
``DIR/VARIANT/time_to_quality.json`` (engine/bench/time_to_quality.py). Resumable: run it again
and each variant goes on from its checkpoint. Results are summarised in docs/training.md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.adapters import load_builtin  # noqa: E402
from engine.bench import time_to_quality as ttq  # noqa: E402
from engine.config import PRESETS, RECIPES  # noqa: E402

BASE = PRESETS["flow-class"]
VARIANTS = {
    # the course's recipe, unchanged (10 epochs, about 2 h here): the reference
    "course": {},
    # one ingredient at a time on a 2-epoch budget ...
    "w32-b128": {"num_hiddens": 32, "batch_size": 128, "epochs": 2},
    "w32-b128-cos": {"num_hiddens": 32, "batch_size": 128, "epochs": 2, "lr_schedule": "cosine",
                     "warmup_steps": 100, "lr": 5e-3, "lr_final_factor": 0.02},
    "w32-b128-cos-ema": {"num_hiddens": 32, "batch_size": 128, "epochs": 2, "lr_schedule": "cosine",
                         "warmup_steps": 100, "lr": 5e-3, "lr_final_factor": 0.02, "ema_decay": 0.999},
    "w32-b128-cos-ema-ln": {"num_hiddens": 32, "batch_size": 128, "epochs": 2, "lr_schedule": "cosine",
                            "warmup_steps": 100, "lr": 5e-3, "lr_final_factor": 0.02, "ema_decay": 0.999,
                            "t_sampling": "logit-normal"},
    "w32-b128-cos-ema-p02": {"num_hiddens": 32, "batch_size": 128, "epochs": 2, "lr_schedule": "cosine",
                             "warmup_steps": 100, "lr": 5e-3, "lr_final_factor": 0.02, "ema_decay": 0.999,
                             "p_uncond": 0.2},
    # the shipped class recipe (engine.config.RECIPES; python -m engine train flow-class --recipe class)
    "class": RECIPES["flow-class"]["class"],
    "w64-b64-cos-ema": {"epochs": 1, "lr_schedule": "cosine", "warmup_steps": 100, "lr": 5e-3,
                        "lr_final_factor": 0.02, "ema_decay": 0.999},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    ap.add_argument("--out", default="cache/bench/recipe_ablation")
    ap.add_argument("--eval-every", type=int, default=150, help="optimizer steps between scores")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-train-s", type=float, default=900, help="stop a variant after this much training")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    classifier, _, _ = load_builtin("classifier")
    shipped = ttq.shipped_score()
    print(f"shipped flow-class, same solver and noise: {shipped}", flush=True)
    for name in args.variants:
        cfg = replace(BASE, name=f"flow-class-{name}", **{**VARIANTS[name], "snapshot_epochs": ()})
        ttq.measure(cfg, Path(args.out) / name, args.eval_every, ttq.flow_scorer(classifier, shipped["fd"]),
                    max_train_s=args.max_train_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
