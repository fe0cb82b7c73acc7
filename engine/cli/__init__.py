"""Command line: ``python -m engine COMMAND ...``, one module per command:

    train        train a built-in model (checkpoints, --resume)             engine.cli.train
    reflow-pairs a flow teacher's (noise, sample) pairs for reflow           engine.cli.reflow
    sample       sample digits (or DeepFloyd IF images) into an .npz         engine.cli.sample
    denoise      the single-step denoiser on noisy MNIST: MSE, PSNR          engine.cli.denoise
    info         the shipped models and their manifests                      engine.cli.info
    precompute   the Part A figure set into an artifact pack (DeepFloyd)     engine.cli.deepfloyd
    embed        prompt embeddings into the cache (DeepFloyd)                engine.cli.deepfloyd
    bench        benchmarks as ratios against a reference, same run          engine.cli.bench
    evaluate     a model's quality (accuracy, PSNR, Fréchet distance)        engine.cli.evaluate
    fewer-steps  quality against NFE for every sampler                       engine.cli.fewer_steps
    nll          bits/dim of digits under a flow model (exact likelihood)    engine.cli.nll
    toy2d        the 2D playground: train, sample, straightness and MMD      engine.cli.toy2d

Each module has ``register(subparsers)``, which adds its parser(s) with ``handler`` set to the
function that runs them; ``COMMANDS`` lists the modules in the order ``--help`` shows them, and
``main`` calls the handler. Shared helpers are in ``engine.cli.common``.

Bad arguments exit with status 2 and one line on stderr, never a traceback; a model, data,
checkpoint, DeepFloyd, pack, value or file error exits with status 1 and one line ``error: ...``;
Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import sys

from . import bench, check, deepfloyd, denoise, evaluate, fewer_steps, info, nll, reflow, sample, toy2d, train
from .common import CLIError, Parser

COMMANDS = (train, reflow, sample, denoise, info, deepfloyd, bench, evaluate, fewer_steps, nll, toy2d, check)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m engine", description="Diffusion Lab engine")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return p


def _known_errors() -> tuple[type[Exception], ...]:
    """What a user can cause and read in one line (imported only when something went wrong)."""
    from ..checkpoints import CheckpointError
    from ..data import DataError
    from ..deepfloyd.weights import DeepFloydError
    from ..packs import PackError
    from ..train import TrainingError

    return CheckpointError, DataError, DeepFloydError, PackError, TrainingError, ValueError, OSError


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except CLIError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001  -- a clear line, not a traceback
        if isinstance(e, _known_errors()):
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            return 1
        raise
    finally:
        sys.stdout.flush()
