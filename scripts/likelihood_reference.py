"""Bits/dim of flow-class on MNIST test digits and on out-of-distribution inputs, written to
cache/models/flow-class/likelihood.json (what the Flow matching page's "How likely?" section
plots). CPU, one thread: ~20 min on a busy 2-core machine.

    python scripts/likelihood_reference.py [--models-dir cache/models]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.adapters import MODELS_DIR, load_builtin  # noqa: E402
from engine.checkpoints import atomic_write_text  # noqa: E402
from engine.data import load_mnist  # noqa: E402
from engine.likelihood import model_nll  # noqa: E402

STEPS, PROBES, SEED = 32, 4, 0


def inputs() -> dict[str, torch.Tensor]:
    test = load_mnist("test").images
    return {
        "test digits": test[:32],
        "inverted digits": 1 - test[:16],
        "blank (all 0)": torch.zeros(8, 1, 28, 28),
        "uniform noise": torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(SEED)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", default=str(MODELS_DIR))
    args = p.parse_args()
    torch.set_num_threads(1)
    net, cfg, _ = load_builtin("flow-class", Path(args.models_dir))
    out = {"model": "flow-class", "steps": STEPS, "probes": PROBES, "seed": SEED, "sets": {}}
    for name, images in inputs().items():
        t0 = time.perf_counter()
        r = model_nll(net, images, class_conditioned=True, steps=STEPS, probes=PROBES,
                      generator=torch.Generator().manual_seed(SEED))
        r["seconds"] = round(time.perf_counter() - t0, 1)
        out["sets"][name] = r
        print(f"{name}: {r['bits_per_dim']:.3f} bits/dim ± {r['probe_se']:.4f} (probes) "
              f"± {r['sample_se']:.4f} (images)", flush=True)
    path = Path(args.models_dir) / "flow-class" / "likelihood.json"
    atomic_write_text(path, json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
