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
    p.add_argument("--density-out", metavar="F.npz", help="write the learned density on a grid over the "
                   "box (x, y, density) to this .npz; print the mean log-density of held-out vs uniform data")
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
    density_out = check_out(args.density_out) if args.density_out else None
    if density_out and args.objective == "ddpm":
        raise _fail("--density-out needs a flow objective (fm, reflow, ot-fm): a density comes from its ODE")
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
    if density_out:
        _density(result.model, held, args, density_out)
    if out:
        save_npz(out, samples=samples.numpy(), data=held.numpy(), times=np.asarray(traj.times, np.float64),
                 trajectory=traj.x.float().permute(1, 0, 2).numpy())
        print(f"wrote {out}")
    return 0


def _density(model, held, args, out) -> None:
    """The learned density on a grid (to ``out``) and the mean log-density of held-out data
    against points spread uniformly over the box."""
    import torch

    from ..toy2d.data import BOX
    from ..toy2d.density import density_grid, log_density, mass, uniform_log_density

    x, y, density = density_grid(model, label=args.label)
    uniform = (torch.rand(len(held), 2, generator=torch.Generator().manual_seed(args.seed + 3)) * 2 - 1) * BOX
    data_lp, uniform_lp = log_density(model, held, args.label), log_density(model, uniform, args.label)
    print(f"density: mass {mass(density):.4f} inside the box [-{BOX:g}, {BOX:g}]^2; mean log-density of "
          f"held-out data {data_lp.mean():.3f}, of uniform points {uniform_lp.mean():.3f} "
          f"(the uniform density: {uniform_log_density():.3f})")
    save_npz(out, x=x.numpy(), y=y.numpy(), density=density.numpy())
    print(f"wrote {out}")
