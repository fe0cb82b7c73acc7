"""``python -m engine toy2d``: the 2D playground on the command line (``engine.toy2d``): train a
model on a toy set or a CSV of points in seconds, sample it, print straightness and MMD; ``--out``
saves samples, held-out data, the trajectory (N, S+1, 2) and its times to an .npz."""

from __future__ import annotations

from .common import CLIError, check_out, nonneg, positive, save_npz


def register(sub) -> None:
    from ..course import COURSE_DDPM_STEPS
    from ..toy2d.data import DATASETS
    from ..toy2d.sample import DDPM_SAMPLERS, FLOW_SAMPLERS, FLOW_STEPS
    from ..toy2d.train import OBJECTIVES, ToyConfig

    p = sub.add_parser("toy2d", help="train a 2D toy model in seconds, sample it, print straightness/MMD")
    p.add_argument("--dataset", choices=list(DATASETS), default="moons")
    p.add_argument("--csv", help="train on the points of this CSV (x, y[, label]) instead of --dataset")
    p.add_argument("--objective", choices=OBJECTIVES, default="fm")
    p.add_argument("--cfg", type=nonneg(float), metavar="G", help="classifier-free guidance scale gamma "
                   "(trains a class-conditioned model; needs --label)")
    p.add_argument("--label", type=nonneg(int), metavar="L", help="sample this class (a class model)")
    p.add_argument("--sampler", choices=[*FLOW_SAMPLERS, *DDPM_SAMPLERS],
                   help="flow: euler (default), midpoint, heun, rk4; ddpm: ddpm (the course's loop), ddim")
    p.add_argument("--steps", type=positive(int),
                   help=f"sampling steps (default {FLOW_STEPS} for flows, {COURSE_DDPM_STEPS} for ddpm)")
    p.add_argument("--count", type=positive(int), default=2000, help="samples (at most 20000)")
    p.add_argument("--train-steps", type=positive(int), default=ToyConfig.steps)
    p.add_argument("--seed", type=nonneg(int), default=0)
    p.add_argument("--threads", type=positive(int), default=1)
    p.add_argument("--out", help="write samples, data, trajectory (N, S+1, 2) and times to this .npz")
    p.set_defaults(handler=run)


def _fail(message: str) -> CLIError:
    return CLIError(f"python -m engine toy2d: {message}")


def _points(args):
    """The training set: ``--csv`` parsed and checked, or the toy set ``--dataset``."""
    from pathlib import Path

    from ..toy2d.data import PointsError, dataset, parse_csv

    if not args.csv:
        return dataset(args.dataset)
    try:
        return parse_csv(Path(args.csv).read_bytes(), name=args.csv)
    except PointsError as e:
        raise _fail(f"{args.csv}: {e}") from None


def run(args) -> int:
    import numpy as np
    import torch

    from ..toy2d.data import MAX_POINTS
    from ..toy2d.sample import DDPM_SAMPLERS, held_out, quality, sample, straightness
    from ..toy2d.train import ToyConfig, torch_threads, train

    out = check_out(args.out) if args.out else None
    if args.count > MAX_POINTS:
        raise _fail(f"--count must be at most {MAX_POINTS}, got {args.count}")
    data = _points(args)
    conditional = args.cfg is not None or args.label is not None
    if args.cfg is not None and args.label is None:
        raise _fail("--cfg needs --label (the class to guide towards)")
    if conditional and not data.num_classes:
        raise _fail(f"{data.title} has no classes; --cfg/--label need a labelled set")
    if args.label is not None and args.label >= data.num_classes:
        raise _fail(f"--label must be in [0, {data.num_classes - 1}] for {data.title}")
    ddpm = args.objective == "ddpm"
    if args.sampler and (args.sampler in DDPM_SAMPLERS) != ddpm:
        raise _fail(f"sampler {args.sampler} does not fit objective {args.objective}")
    cfg = ToyConfig(objective=args.objective, steps=args.train_steps, seed=args.seed,
                    num_classes=data.num_classes if conditional else 0)
    with torch_threads(args.threads):
        result = train(cfg, data, threads=None)
        print(f"trained {args.objective} on {data.title}: {cfg.steps} steps in {result.seconds:.1f} s, "
              f"loss {result.losses[-100:].mean():.4f} (mean of the last 100 steps)")
        noise = torch.randn(args.count, 2, generator=torch.Generator().manual_seed(args.seed + 1))
        traj = sample(result.model, noise, args.sampler, args.steps, args.label, args.cfg,
                      torch.Generator().manual_seed(args.seed + 2))
        samples = traj.final.float()
        q = quality(samples, data, args.seed, args.label)
        held = held_out(data, args.count, args.seed + 2, args.label)  # apart from the metrics' draws
    print(f"sampled {args.count} points: {len(traj.times) - 1} steps, NFE {traj.nfe}, straightness "
          f"{straightness(traj.x):.3f}")
    print(f"MMD {q.mmd:.4f} (two draws of the data: {q.mmd_floor:.4f}, ratio {q.mmd / q.mmd_floor:.2f}); "
          f"sliced Wasserstein {q.swd:.4f} (floor {q.swd_floor:.4f})")
    if out:
        save_npz(out, samples=samples.numpy(), data=held.numpy(), times=np.asarray(traj.times, np.float64),
                 trajectory=traj.x.float().permute(1, 0, 2).numpy())
        print(f"wrote {out}")
    return 0
