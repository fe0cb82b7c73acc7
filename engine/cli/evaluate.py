"""``python -m engine evaluate MODEL``: a model's quality as JSON (classifier accuracy of its
samples, PSNR, and with ``--fd`` the Fréchet distance to test digits); ``--write`` saves it as
quality.json beside the model."""

from __future__ import annotations

import json
from pathlib import Path

from .common import CLIError, positive, setup_threads


def register(sub) -> None:
    from ..adapters import MODEL_NAMES

    e = sub.add_parser("evaluate", help="measure a model's quality (classifier accuracy, PSNR, ...)")
    e.add_argument("model", nargs="?", choices=MODEL_NAMES, help="a shipped model (or --model-dir)")
    e.add_argument("--model-dir", help="any trained run's folder (python -m engine train ... --out DIR)")
    e.add_argument("--per-label", type=positive(int), default=20)
    e.add_argument("--models-dir", help="default cache/models")
    e.add_argument("--write", action="store_true", help="save as quality.json beside the model")
    e.add_argument("--device", default="cpu", help="where sampled models run (cpu, cuda)")
    e.add_argument("--fd", action="store_true", help="add the Fréchet distance to test digits and its floor")
    e.set_defaults(handler=run)


def run(args) -> int:
    from ..adapters import model_path
    from ..checkpoints import atomic_write_text
    from ..device import pick_device
    from ..evaluate import evaluate

    setup_threads(None)
    root = Path(args.models_dir) if args.models_dir else None
    try:
        device = str(pick_device(args.device))
    except (ValueError, RuntimeError) as e:
        raise CLIError(str(e)) from None
    if (args.model is None) == (args.model_dir is None):
        raise CLIError("python -m engine evaluate: give a shipped MODEL or --model-dir DIR (one of them)")
    kind = args.model
    if args.model_dir is not None:
        from ..adapters import load_run
        from ..evaluate import kind_of_model

        kind = kind_of_model(load_run(args.model_dir)[1])
    if args.fd and kind in ("classifier", "denoiser", "denoiser-pure-noise"):
        raise CLIError(f"python -m engine evaluate: --fd scores generated digits; a {kind} makes none")
    result = evaluate(kind, root, per_label=args.per_label, device=device, fd=args.fd,
                      model_dir=args.model_dir)
    text = json.dumps(result, indent=2)
    print(text)
    if args.write:
        folder = Path(args.model_dir) if args.model_dir else model_path(args.model, root).parent
        out = folder / "quality.json"
        atomic_write_text(out, text + "\n")
        print(f"wrote {out}")
    return 0
