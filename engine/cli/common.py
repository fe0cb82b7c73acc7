"""What every command of ``python -m engine`` shares: the one-line error, the parser that raises
it, argument types that reject bad numbers before any work, the output-path check and .npz writing.

A user error is a ``CLIError``: ``engine.cli.main`` prints its one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path


class CLIError(Exception):
    """A one-line message for the user; exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a CLIError instead of usage text and ``SystemExit``."""

    def error(self, message):
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


def labels(text: str) -> list[int]:
    """An argparse type: comma-separated digit classes, "0,1,2" -> [0, 1, 2]."""
    try:
        values = [int(p) for p in text.split(",") if p.strip() != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"labels must be comma-separated digits, got {text!r}") from None
    bad = [v for v in values if not 0 <= v <= 9]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"labels must be digits 0-9, got {text!r}")
    return values


def setup_threads(n: int | None) -> None:
    """torch's intra-op threads: ``n``, or every core."""
    import torch

    torch.set_num_threads(n or os.cpu_count() or 1)


def check_out(path: str) -> Path:
    """``path`` as an output file, checked before any work: its folder exists and takes a file."""
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


def save_npz(out: Path, **arrays) -> None:
    """numpy arrays -> ``out`` (.npz), written atomically (never half a file)."""
    import io

    import numpy as np

    from ..checkpoints import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(out, buf.getvalue())


def sampler_settings(args, kind: str) -> tuple[str, int | None, int, float]:
    """(sampler, steps, stride, eta) for a "ddpm" or "flow" model from ``sample``'s flags
    (--sampler, --steps, --stride, --eta), the course's settings by default; a combination that
    does not fit is a one-line CLIError. The built-in and the DeepFloyd ``sample`` both read it."""
    from ..course import EULER_STEPS, FAST_STEPS, FIRST_TIMESTEP, STRIDE
    from ..diffusers_samplers import MAX_STEPS
    from ..samplers import DIFFUSION_SAMPLERS, FLOW_SAMPLERS

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
        steps = steps or EULER_STEPS
    elif sampler != "ddpm":
        steps = steps or FAST_STEPS
        if steps > MAX_STEPS:
            raise CLIError(f"python -m engine sample: --steps must be at most {MAX_STEPS} for {sampler} "
                           "(use --sampler ddpm for more)")
    elif steps is not None and steps > FIRST_TIMESTEP:  # stride 1 from t = 990
        raise CLIError(f"python -m engine sample: --steps must be at most {FIRST_TIMESTEP} for ddpm, "
                       f"got {steps}")
    return sampler, steps, args.stride or STRIDE, args.eta or 0.0
