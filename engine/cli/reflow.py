"""``python -m engine reflow-pairs``: a flow teacher's own (noise, sample) pairs, the coupling that
``python -m engine train flow-class-reflow`` trains on (``engine.reflow``, docs/reflow.md)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import CLIError, nonneg, positive, setup_threads


def register(sub) -> None:
    from ..course import FLOW_GUIDANCE
    from ..flow import SOLVERS
    from ..reflow import PAIR_SOLVER, PAIR_STEPS

    r = sub.add_parser("reflow-pairs", help="a flow teacher's (noise, sample) pairs for reflow")
    r.add_argument("--teacher", default="flow-class", help="a shipped class-conditioned flow")
    r.add_argument("--teacher-dir", help="or any finished flow run's folder")
    r.add_argument("--count", type=positive(int), default=100000)
    r.add_argument("--seed", type=nonneg(int), default=0)
    r.add_argument("--guidance", type=nonneg(float), default=FLOW_GUIDANCE, help="CFG scale baked in")
    r.add_argument("--solver", choices=sorted(SOLVERS), default=PAIR_SOLVER)
    r.add_argument("--steps", type=positive(int), default=PAIR_STEPS, help="uniform grid steps")
    r.add_argument("--batch", type=positive(int), default=1024)
    r.add_argument("--max-seconds", type=positive(float), help="stop after the batch that passes this time")
    r.add_argument("--device", default="auto")
    r.add_argument("--threads", type=positive(int))
    r.add_argument("--models-dir", help=argparse.SUPPRESS)
    r.add_argument("--out", required=True, help="the pairs file (.safetensors)")
    r.set_defaults(handler=run)


def run(args) -> int:
    from tqdm import tqdm

    from ..adapters import FlowModel, load_model
    from ..device import git_commit, machine_description, pick_device
    from ..flow import SOLVERS
    from ..reflow import make_pairs, save_pairs

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise CLIError("python -m engine reflow-pairs: --out must end in .safetensors")
    out.parent.mkdir(parents=True, exist_ok=True)
    setup_threads(args.threads)
    dev = pick_device(args.device)
    net, cfg, manifest = load_model(args.teacher, Path(args.models_dir) if args.models_dir else None,
                                    args.teacher_dir)
    if cfg.objective != "flow" or cfg.arch != "class":
        raise CLIError(f"python -m engine reflow-pairs: the teacher must be a class-conditioned flow, "
                       f"got {cfg.name} ({cfg.objective}, {cfg.arch})")
    flow = FlowModel(net.to(dev), cfg)  # fp32 (TF32 convolutions on a GPU)
    bar = tqdm(total=args.count, desc="teacher pairs", unit="pair", dynamic_ncols=True, mininterval=2.0)
    t0 = time.monotonic()
    pairs = make_pairs(flow, args.count, args.seed, guidance=args.guidance, solver=args.solver,
                       steps=args.steps, batch=args.batch, progress=lambda done, _: bar.update(done - bar.n),
                       deadline=None if args.max_seconds is None else t0 + args.max_seconds)
    bar.close()
    count = len(pairs["labels"])
    seconds = time.monotonic() - t0
    meta = {
        "teacher": args.teacher_dir or args.teacher, "teacher_finished_at": manifest.get("finished_at", ""),
        "count": count, "seed": args.seed, "guidance": args.guidance, "solver": args.solver,
        "steps": args.steps, "grid": "uniform", "nfe": args.steps * SOLVERS[args.solver][1],
        "seconds": round(seconds, 1), "machine": machine_description(dev), "git_commit": git_commit(),
    }
    save_pairs(out, pairs, meta)
    print(f"wrote {count} pairs to {out} in {seconds:.0f} s ({count / seconds:.0f} pairs/s, "
          f"{meta['nfe']} NFE each, CFG γ {args.guidance:g})")
    return 0
