"""Summarise constant-LR training runs of flow-class-constant-lr into one small JSON file.

    python scripts/lr_sweep_summary.py RUN_DIR... [--out cache/models/flow-class-constant-lr/lr_sweep.json]
    python scripts/lr_sweep_summary.py --add RUN_DIR...   # add runs to the existing file (same lr: replaced)

Each RUN_DIR is a finished `python -m engine train` folder (manifest.json, log.jsonl and, if
evaluated, quality.json). The shipped flow-class (ExponentialLR) is added as the reference.
The file holds per-epoch mean losses: what the Flow page plots to justify the chosen rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.checkpoints import atomic_write_text  # noqa: E402
from engine.runs import epoch_means, read_log  # noqa: E402


def summarise(run: Path) -> dict:
    manifest = json.loads((run / "manifest.json").read_text())
    cfg = manifest["config"]
    entry = {
        "lr": cfg["lr"],
        "lr_schedule": cfg["lr_schedule"],
        "epoch_mean_loss": epoch_means(read_log(run / "log.jsonl")),
        "final_loss": manifest["final_loss"],
        "machine": manifest["machine"],
        "command": manifest["command"],
    }
    quality = run / "quality.json"
    if quality.exists():
        entry["accuracy"] = json.loads(quality.read_text())["per_class_accuracy"]["overall"]
    return entry


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path,
                    default=ROOT / "cache/models/flow-class-constant-lr/lr_sweep.json")
    ap.add_argument("--reference", type=Path, default=ROOT / "cache/models/flow-class")
    ap.add_argument("--add", action="store_true",
                    help="keep the runs already in --out (whose folders may be elsewhere) and add these")
    args = ap.parse_args()
    new = [summarise(r) for r in args.runs]
    kept = json.loads(args.out.read_text())["runs"] if args.add and args.out.exists() else []
    kept = [e for e in kept if all(abs(e["lr"] - n["lr"]) > 1e-12 for n in new)]
    runs = sorted(kept + new, key=lambda e: -e["lr"])
    best = min(runs, key=lambda e: sum(e["epoch_mean_loss"]))
    out = {
        "runs": runs,
        "reference": summarise(args.reference),
        "chosen_lr": best["lr"],
        "rule": "the constant rate with the lowest mean loss summed over all epochs",
    }
    atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    for e in runs:
        print(f"lr {e['lr']:g}: epoch means {e['epoch_mean_loss']}, final {e['final_loss']}")
    print(f"chosen {best['lr']:g}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
