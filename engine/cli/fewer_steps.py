"""``python -m engine fewer-steps MODEL``: quality against NFE for every sampler of a model (the
curves of the Fewer steps page, ``engine.fewer_steps``), one line per point, and the fastest
sampler that still matches the course (``engine.course.matches_course``)."""

from __future__ import annotations

import json
from pathlib import Path

from .common import check_out, nonneg, positive, setup_threads


def register(sub) -> None:
    from ..adapters import MODEL_NAMES

    f = sub.add_parser("fewer-steps", help="quality against NFE for every sampler (the Fewer steps page)")
    f.add_argument("model", choices=[m for m in MODEL_NAMES if m.startswith(("flow", "ddpm"))])
    f.add_argument("--samples", type=positive(int), default=200)
    f.add_argument("--seed", type=nonneg(int), default=0)
    f.add_argument("--quick", action="store_true", help="the first four step counts of each sampler")
    f.add_argument("--models-dir", help="default cache/models")
    f.add_argument("--out", help="write the curves as JSON (default: print them)")
    f.set_defaults(handler=run)


def run(args) -> int:
    from tqdm import tqdm

    from ..checkpoints import atomic_write_text
    from ..course import FD_MARGIN
    from ..fewer_steps import fastest_within, sweep

    out = check_out(args.out) if args.out else None
    setup_threads(None)
    with tqdm(total=1.0, bar_format="{l_bar}{bar}| {desc}", dynamic_ncols=True, mininterval=2.0) as bar:
        def progress(fraction: float, text: str) -> None:
            bar.n = round(fraction, 4)
            bar.set_description(text, refresh=False)
            bar.update(0)

        report = sweep(args.model, args.samples, args.seed, args.quick,
                       Path(args.models_dir) if args.models_dir else None, progress)
    for p in report["points"]:
        extra = f"accuracy {p['accuracy']:.3f}" if "accuracy" in p else f"confidence {p['confidence']:.3f}"
        who = f"{p['model']:18s} " if "model" in p else ""
        print(f"{who}{p['sampler']:9s} {p['steps']:4d} steps {p['nfe']:4d} NFE  FD {p['fd']:7.3f} (floor "
              f"{p['fd_floor']:.3f})  {extra}  {p['seconds']:7.1f} s")
    best = fastest_within(report)
    if best is not None:
        print(f"fewest NFE within {FD_MARGIN * 100:.0f} % of the course's FD: {best['sampler']} "
              f"{best['steps']} steps ({best['nfe']} NFE)")
    if out:
        atomic_write_text(out, json.dumps(report, indent=1) + "\n")
        print(f"wrote {out}")
    return 0
