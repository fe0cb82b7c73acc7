"""Command line: ``python -m engine {train,sample,denoise,info} ...``.

Bad arguments exit with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


class CLIError(Exception):
    """A one-line message for the user; exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2
        raise CLIError(f"{self.prog}: {message}")


def number(kind, minimum=None, strict: bool = False):
    """An argparse type: ``kind`` (int or float), finite, and >= ``minimum`` (> with ``strict``)."""

    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        if minimum is not None and (v < minimum or (strict and v == minimum)):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum}, got {text}")
        return v

    return parse


def positive(kind):
    return number(kind, 0, strict=True)


def nonneg(kind):
    return number(kind, 0)


def _labels(text: str) -> list[int]:
    try:
        labels = [int(p) for p in text.split(",") if p.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"labels must be comma-separated digits, got {text!r}") from None
    bad = [v for v in labels if not 0 <= v <= 9]
    if bad or not labels:
        raise argparse.ArgumentTypeError(f"labels must be digits 0-9, got {text!r}")
    return labels


def build_parser() -> argparse.ArgumentParser:
    from . import deepfloyd_cli
    from .toy2d import data as toy2d
    from .config import PRESETS
    from .adapters import MODEL_NAMES
    from .sampling import DIFFUSION_SAMPLERS, FLOW_SAMPLERS

    p = _Parser(prog="python -m engine", description="Diffusion Lab engine")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a built-in model (checkpoints every epoch; --resume)")
    t.add_argument("model", choices=sorted(PRESETS))
    t.add_argument("--out", help="run directory (default cache/runs/MODEL)")
    t.add_argument("--epochs", type=positive(int))
    t.add_argument("--batch-size", type=positive(int))
    t.add_argument("--lr", type=positive(float))
    t.add_argument("--lr-schedule", choices=["exponential", "constant"])
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

    s = sub.add_parser("sample", help="sample digits from a built-in model into an .npz")
    s.add_argument("--model", choices=[m for m in MODEL_NAMES if "denoiser" not in m and m != "classifier"],
                   help="a built-in model (required unless --backend deepfloyd)")
    s.add_argument("--labels", type=_labels, default=list(range(10)))
    s.add_argument("--per-label", type=positive(int), default=4)
    s.add_argument("--count", type=positive(int), help="number of images (unconditional models)")
    s.add_argument("--sampler", choices=[*DIFFUSION_SAMPLERS, *FLOW_SAMPLERS],
                   help="ddpm (the course's strided loop), ddim, dpmpp-2m for ddpm-class; euler (the "
                        "course's), midpoint, heun, rk4 for flow models")
    s.add_argument("--steps", type=positive(int),
                   help="sampler steps (flow default 300 Euler; ddim/dpmpp-2m default 20; ddpm: stride 30)")
    s.add_argument("--stride", type=positive(int), help="the course's DDPM stride (default 30)")
    s.add_argument("--eta", type=nonneg(float), help="DDIM's eta in [0, 1]: 0 deterministic (default), "
                                                      "1 ancestral")
    s.add_argument("--guidance", type=nonneg(float), default=None)
    s.add_argument("--seed", type=nonneg(int), default=0)
    s.add_argument("--trajectory", action="store_true")
    s.add_argument("--models-dir", help=argparse.SUPPRESS)
    s.add_argument("--out", required=True)
    deepfloyd_cli.add_backend_args(s)

    d = sub.add_parser("denoise", help="run a denoiser on noisy MNIST and report MSE/PSNR")
    d.add_argument("--model", default="denoiser", choices=["denoiser", "denoiser-pure-noise"])
    d.add_argument("--sigma", type=nonneg(float), default=0.5)
    d.add_argument("--split", choices=["train", "test"], default="test")
    d.add_argument("--count", type=positive(int), default=1000)
    d.add_argument("--seed", type=nonneg(int), default=0)
    d.add_argument("--models-dir", help=argparse.SUPPRESS)
    d.add_argument("--out")

    sub.add_parser("info", help="list the shipped models and their manifests")
    deepfloyd_cli.add_commands(sub)

    b = sub.add_parser("bench", help="benchmarks as ratios against a plain reference, same run")
    b.add_argument("--quick", action="store_true", help="small sizes (seconds, for tests)")
    b.add_argument("--out", help="write the results as JSON")
    b.add_argument("--threads", type=positive(int))

    e = sub.add_parser("evaluate", help="measure a model's quality (classifier accuracy, PSNR, ...)")
    e.add_argument("model", choices=MODEL_NAMES)
    e.add_argument("--per-label", type=positive(int), default=20)
    e.add_argument("--models-dir", help="default cache/models")
    e.add_argument("--write", action="store_true", help="save as quality.json beside the model")
    e.add_argument("--device", default="cpu", help="where sampled models run (cpu, cuda)")
    e.add_argument("--fd", action="store_true", help="add the Fréchet distance to test digits and its floor")

    f = sub.add_parser("fewer-steps", help="quality against NFE for every sampler (the Fewer steps page)")
    f.add_argument("model", choices=[m for m in MODEL_NAMES if m.startswith(("flow", "ddpm"))])
    f.add_argument("--samples", type=positive(int), default=200)
    f.add_argument("--seed", type=nonneg(int), default=0)
    f.add_argument("--quick", action="store_true", help="the first four step counts of each sampler")
    f.add_argument("--models-dir", help="default cache/models")
    f.add_argument("--out", help="write the curves as JSON (default: print them)")
    toy2d.add_command(sub)
    return p


def _setup_threads(n: int | None) -> None:
    import torch

    torch.set_num_threads(n or os.cpu_count() or 1)


def _check_out(path: str) -> Path:
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise CLIError(f"output folder is not writable: {parent}")
    if out.is_dir():
        raise CLIError(f"output path is a folder: {out}")
    try:  # root passes os.access everywhere (even /proc): try a real file before doing any work
        tempfile.NamedTemporaryFile(dir=parent, prefix=f".{out.name}.", suffix=".probe").close()
    except OSError as e:
        raise CLIError(f"output folder is not writable: {parent} ({e.strerror})") from None
    return out


def _save_npz(out: Path, **arrays) -> None:
    import io

    from .checkpoints import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(out, buf.getvalue())


def cmd_train(args) -> int:
    from tqdm import tqdm

    from . import train as tr
    from .config import PRESETS
    from .device import init_distributed
    from .sampling import snapshot

    cfg = PRESETS[args.model]
    overrides = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "lr_schedule": args.lr_schedule, "num_hiddens": args.num_hiddens, "sigma": args.sigma,
        "p_uncond": args.p_uncond, "seed": args.seed, "train_count": args.train_count,
    }
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    out = Path(args.out) if args.out else Path("cache/runs") / cfg.name
    _setup_threads(args.threads)
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


def cmd_sample(args) -> int:
    if args.backend == "deepfloyd":
        from .deepfloyd_cli import run_sample

        return run_sample(args)
    if not args.model:
        raise CLIError("python -m engine sample: --model is required for the built-in backend")
    import torch

    from .device import cpu_amp
    from .adapters import MNISTDDPM, FlowModel, load_builtin
    from .sampling import digit_labels, sample_ddpm, sample_flow

    out = _check_out(args.out)
    _setup_threads(None)
    net, cfg, _ = load_builtin(args.model, Path(args.models_dir) if args.models_dir else None)
    gen = torch.Generator().manual_seed(args.seed)
    amp = cpu_amp()
    conditional = cfg.arch == "class"
    if conditional:
        labels = digit_labels(args.labels, args.per_label)
    else:
        labels = torch.full((args.count or len(args.labels) * args.per_label,), -1)
    sampler, steps, stride, eta = sampler_settings(args, "ddpm" if cfg.objective == "ddpm" else "flow")
    if cfg.objective == "ddpm":
        guidance = 7.0 if args.guidance is None else args.guidance
        traj = sample_ddpm(MNISTDDPM(net, amp=amp), labels, stride, guidance, gen, record=args.trajectory,
                           sampler=sampler, steps=steps, eta=eta)
    else:
        guidance = (5.0 if args.guidance is None else args.guidance) if conditional else None
        traj = sample_flow(FlowModel(net, cfg, amp), labels if conditional else None, len(labels), steps,
                           guidance, gen, record=args.trajectory, sampler=sampler)
    shown = traj.to_unit()  # [0, 1] float32 (B, 1, 28, 28) per state
    arrays = {"images": shown.final[:, 0], "labels": labels.numpy().astype(np.int64),
              "nfe": np.int64(traj.nfe), "sampler": np.array(sampler)}
    if args.trajectory:
        arrays["trajectory"] = shown.x[:, :, 0].transpose(1, 0, 2, 3)  # (B, states, 28, 28)
    _save_npz(out, **arrays)
    print(f"wrote {len(labels)} images to {out} ({sampler}, {traj.nfe} network evaluations)")
    return 0


def sampler_settings(args, kind: str) -> tuple[str, int | None, int, float]:
    """(sampler, steps, stride, eta) for a "ddpm" or "flow" model from ``sample``'s flags, the
    course's settings by default; a combination that does not fit is a one-line CLIError."""
    from .sampling import DIFFUSION_SAMPLERS, FLOW_SAMPLERS
    from .diffusers_samplers import MAX_STEPS

    fits = DIFFUSION_SAMPLERS if kind == "ddpm" else FLOW_SAMPLERS
    sampler = args.sampler or fits[0]
    if sampler not in fits:
        raise CLIError(f"python -m engine sample: --sampler {sampler} does not fit {args.model} (a {kind} "
                       f"model); choose from {', '.join(fits)}")
    if args.eta is not None and sampler != "ddim":
        raise CLIError(f"python -m engine sample: --eta is DDIM's; --sampler {sampler} has none")
    if args.eta is not None and args.eta > 1:
        raise CLIError(f"python -m engine sample: --eta must be in [0, 1], got {args.eta}")
    if args.stride is not None and (sampler != "ddpm" or args.steps is not None):
        raise CLIError("python -m engine sample: --stride is the course's DDPM loop's; give --steps instead")
    steps = args.steps
    if kind == "flow":
        steps = steps or 300
    elif sampler != "ddpm":
        steps = steps or 20
        if steps > MAX_STEPS:
            raise CLIError(f"python -m engine sample: --steps must be at most {MAX_STEPS} for {sampler} "
                           "(use --sampler ddpm for more)")
    elif steps is not None and steps > 990:
        raise CLIError(f"python -m engine sample: --steps must be at most 990 for ddpm, got {steps}")
    return sampler, steps, args.stride or 30, args.eta or 0.0


def cmd_denoise(args) -> int:
    import torch

    from .data import load_mnist
    from .forward import add_noise_sigma
    from .metrics import mse, psnr
    from .adapters import load_builtin

    out = _check_out(args.out) if args.out else None
    _setup_threads(None)
    net, cfg, _ = load_builtin(args.model, Path(args.models_dir) if args.models_dir else None)
    split = load_mnist(args.split)
    count = min(args.count, split.images.shape[0])
    clean = split.images[:count]
    gen = torch.Generator().manual_seed(args.seed)
    noise = torch.randn(clean.shape, generator=gen)
    noisy = noise if cfg.pure_noise else add_noise_sigma(clean, args.sigma, noise=noise)
    with torch.inference_mode():
        denoised = torch.cat([net(b) for b in noisy.split(250)])
    print(f"{args.model} sigma={args.sigma} {args.split}[:{count}]: MSE {mse(denoised, clean):.5f} "
          f"PSNR {psnr(denoised, clean):.2f} dB (noisy input PSNR {psnr(noisy, clean):.2f} dB)")
    if out:
        _save_npz(out, clean=clean[:, 0].numpy(), noisy=noisy[:, 0].numpy(),
                  denoised=denoised[:, 0].numpy())
    return 0


def cmd_info(args) -> int:
    from .adapters import MODEL_NAMES, MODELS_DIR, read_manifest

    for name in MODEL_NAMES:
        m = read_manifest(name)
        if m is None:
            print(f"{name:24s} not shipped (train: python -m engine train {name} --out {MODELS_DIR / name})")
            continue
        print(f"{name:24s} loss {m.get('final_loss')}, {m.get('samples_per_s')} samples/s, "
              f"{m.get('wall_time_s')} s on {m.get('machine')}")
        print(f"{'':24s} {m.get('command')} (commit {str(m.get('git_commit'))[:10]})")
    return 0


def cmd_evaluate(args) -> int:
    from .checkpoints import atomic_write_text
    from .device import pick_device
    from .evaluate import evaluate
    from .adapters import model_path

    _setup_threads(None)
    root = Path(args.models_dir) if args.models_dir else None
    try:
        device = str(pick_device(args.device))
    except (ValueError, RuntimeError) as e:
        raise CLIError(str(e)) from None
    if args.fd and args.model in ("classifier", "denoiser", "denoiser-pure-noise"):
        raise CLIError(f"python -m engine evaluate: --fd scores generated digits; {args.model} makes none")
    result = evaluate(args.model, root, per_label=args.per_label, device=device, fd=args.fd)
    text = json.dumps(result, indent=2)
    print(text)
    if args.write:
        out = model_path(args.model, root).parent / "quality.json"
        atomic_write_text(out, text + "\n")
        print(f"wrote {out}")
    return 0


def cmd_fewer_steps(args) -> int:
    from tqdm import tqdm

    from .checkpoints import atomic_write_text
    from .fewer_steps import fastest_within, sweep

    out = _check_out(args.out) if args.out else None
    _setup_threads(None)
    with tqdm(total=1.0, bar_format="{l_bar}{bar}| {desc}", dynamic_ncols=True, mininterval=2.0) as bar:
        def progress(fraction: float, text: str) -> None:
            bar.n = round(fraction, 4)
            bar.set_description(text, refresh=False)
            bar.update(0)

        report = sweep(args.model, args.samples, args.seed, args.quick,
                       Path(args.models_dir) if args.models_dir else None, progress)
    for p in report["points"]:
        extra = f"accuracy {p['accuracy']:.3f}" if "accuracy" in p else f"confidence {p['confidence']:.3f}"
        print(f"{p['sampler']:9s} {p['steps']:4d} steps {p['nfe']:4d} NFE  FD {p['fd']:7.3f} (floor "
              f"{p['fd_floor']:.3f})  {extra}  {p['seconds']:7.1f} s")
    best = fastest_within(report, 0.10, 0.97 if report["kind"] == "flow" else 0.95)
    if best is not None:
        print(f"fewest NFE within 10 % of the course's FD: {best['sampler']} {best['steps']} steps "
              f"({best['nfe']} NFE)")
    if out:
        atomic_write_text(out, json.dumps(report, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


def cmd_bench(args) -> int:
    from .bench import format_table, run, to_json
    from .checkpoints import atomic_write_text

    out = _check_out(args.out) if args.out else None
    _setup_threads(args.threads)
    report = run(quick=args.quick, progress=lambda f, name: print(f"[bench] {f:.3f} {name}", flush=True))
    print(format_table(report))
    if out:
        atomic_write_text(out, to_json(report) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        commands = {"train": cmd_train, "sample": cmd_sample, "denoise": cmd_denoise,
                    "info": cmd_info, "evaluate": cmd_evaluate, "bench": cmd_bench,
                    "fewer-steps": cmd_fewer_steps}
        if args.command not in commands:  # precompute / embed: handlers set by deepfloyd_cli
            return args.handler(args)
        return commands[args.command](args)
    except CLIError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001  -- a clear line, not a traceback
        from .checkpoints import CheckpointError
        from .data import DataError
        from .train import TrainingError

        if isinstance(e, (CheckpointError, DataError, TrainingError, ValueError, OSError)):
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise
    finally:
        sys.stdout.flush()
        time.sleep(0)


if __name__ == "__main__":
    raise SystemExit(main())
