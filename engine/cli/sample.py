"""``python -m engine sample``: sample digits from a built-in model into an .npz; with
``--backend deepfloyd``, images from DeepFloyd IF (``engine.cli.deepfloyd``).

The .npz holds ``images`` float32 (N, 28, 28) in [0, 1], ``labels`` int64 (N,) (-1: no class),
``nfe``, ``sampler`` and, with ``--trajectory``, ``trajectory`` (N, states, 28, 28).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CLIError, check_out, nonneg, positive, sampler_settings, save_npz, setup_threads
from .common import labels as label_list
from .deepfloyd import add_backend_args, run_sample


def register(sub) -> None:
    from ..adapters import MODEL_NAMES
    from ..course import EULER_STEPS, FAST_STEPS, STRIDE
    from ..samplers import DIFFUSION_SAMPLERS, FLOW_SAMPLERS

    s = sub.add_parser("sample", help="sample digits from a built-in model into an .npz")
    s.add_argument("--model", choices=[m for m in MODEL_NAMES if "denoiser" not in m and m != "classifier"],
                   help="a built-in model (required unless --model-dir or --backend deepfloyd)")
    s.add_argument("--model-dir", help="any trained run's folder (python -m engine train ... --out DIR)")
    s.add_argument("--labels", type=label_list, default=list(range(10)))
    s.add_argument("--per-label", type=positive(int), default=4)
    s.add_argument("--count", type=positive(int), help="number of images (unconditional models)")
    s.add_argument("--sampler", choices=[*DIFFUSION_SAMPLERS, *FLOW_SAMPLERS],
                   help="ddpm (the course's strided loop), ddim, dpmpp-2m for ddpm-class; euler (the "
                        "course's), midpoint, heun, rk4 for flow models")
    s.add_argument("--steps", type=positive(int),
                   help=f"sampler steps (flow default {EULER_STEPS} Euler; ddim/dpmpp-2m default "
                        f"{FAST_STEPS}; ddpm: stride {STRIDE})")
    s.add_argument("--stride", type=positive(int), help=f"the course's DDPM stride (default {STRIDE})")
    s.add_argument("--eta", type=nonneg(float), help="DDIM's eta in [0, 1]: 0 deterministic (default), "
                                                      "1 ancestral")
    s.add_argument("--guidance", type=nonneg(float), default=None,
                   help="CFG scale (default: the course's, 7 DDPM / 5 flow; 1 for flow-class-reflow, "
                        "whose guidance is baked in)")
    s.add_argument("--seed", type=nonneg(int), default=0)
    s.add_argument("--trajectory", action="store_true")
    s.add_argument("--models-dir", help=argparse.SUPPRESS)
    s.add_argument("--out", required=True)
    add_backend_args(s)
    s.set_defaults(handler=run)


def run(args) -> int:
    if args.backend == "deepfloyd":
        return run_sample(args)
    if (args.model is None) == (args.model_dir is None):
        raise CLIError("python -m engine sample: give --model NAME or --model-dir DIR (one of them)")
    import numpy as np
    import torch

    from ..adapters import MNISTDDPM, FlowModel, load_model
    from ..device import cpu_amp
    from ..sampling import default_guidance, digit_labels, sample_ddpm, sample_flow

    out = check_out(args.out)
    setup_threads(None)
    net, cfg, _ = load_model(args.model, Path(args.models_dir) if args.models_dir else None, args.model_dir)
    if cfg.objective not in ("ddpm", "flow"):
        raise CLIError(f"python -m engine sample: {args.model_dir} holds a {cfg.objective}, which makes no "
                       "digits from noise; use a flow or DDPM run")
    gen = torch.Generator().manual_seed(args.seed)
    amp = cpu_amp()
    conditional = cfg.arch == "class"
    if conditional:
        labels = digit_labels(args.labels, args.per_label)
    else:
        labels = torch.full((args.count or len(args.labels) * args.per_label,), -1)
    kind = "ddpm" if cfg.objective == "ddpm" else "flow"
    sampler, steps, stride, eta = sampler_settings(args, kind)
    guidance = default_guidance(cfg) if args.guidance is None else args.guidance
    if kind == "ddpm":
        traj = sample_ddpm(MNISTDDPM(net, amp=amp), labels, stride, guidance, gen, record=args.trajectory,
                           sampler=sampler, steps=steps, eta=eta)
    else:
        traj = sample_flow(FlowModel(net, cfg, amp), labels if conditional else None, len(labels), steps,
                           guidance if conditional else None, gen, record=args.trajectory, sampler=sampler)
    shown = traj.to_unit()  # [0, 1] float32 (B, 1, 28, 28) per state
    arrays = {"images": shown.final[:, 0], "labels": labels.numpy().astype(np.int64),
              "nfe": np.int64(traj.nfe), "sampler": np.array(sampler)}
    if args.trajectory:
        arrays["trajectory"] = shown.x[:, :, 0].transpose(1, 0, 2, 3)  # (B, states, 28, 28)
    save_npz(out, **arrays)
    print(f"wrote {len(labels)} images to {out} ({sampler}, {traj.nfe} network evaluations)")
    return 0
