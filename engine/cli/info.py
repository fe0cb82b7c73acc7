"""``python -m engine info``: the shipped models, each with its loss, speed, machine and the
command that trained it (from its manifest), or the command that would train it."""

from __future__ import annotations


def register(sub) -> None:
    sub.add_parser("info", help="list the shipped models and their manifests").set_defaults(handler=run)


def run(args) -> int:
    from ..adapters import MODEL_NAMES, MODELS_DIR, read_manifest

    for name in MODEL_NAMES:
        m = read_manifest(name)
        if m is None:
            print(f"{name:24s} not shipped (train: python -m engine train {name} --out {MODELS_DIR / name})")
            continue
        print(f"{name:24s} loss {m.get('final_loss')}, {m.get('samples_per_s')} samples/s, "
              f"{m.get('wall_time_s')} s on {m.get('machine')}")
        print(f"{'':24s} {m.get('command')} (commit {str(m.get('git_commit'))[:10]})")
    return 0
