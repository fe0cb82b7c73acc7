"""``python -m engine bench``: the benchmarks of ``engine.bench`` as ratios against a plain
reference timed in the same run; a table on stdout and, with ``--out``, the JSON report."""

from __future__ import annotations

from .common import check_out, positive, setup_threads


def register(sub) -> None:
    b = sub.add_parser("bench", help="benchmarks as ratios against a plain reference, same run")
    b.add_argument("--quick", action="store_true", help="small sizes (seconds, for tests)")
    b.add_argument("--out", help="write the results as JSON")
    b.add_argument("--threads", type=positive(int))
    b.set_defaults(handler=run)


def run(args) -> int:
    from ..bench import format_table, to_json
    from ..bench import run as run_all
    from ..checkpoints import atomic_write_text

    out = check_out(args.out) if args.out else None
    setup_threads(args.threads)
    report = run_all(quick=args.quick, progress=lambda f, name: print(f"[bench] {f:.3f} {name}", flush=True))
    print(format_table(report))
    if out:
        atomic_write_text(out, to_json(report) + "\n")
    return 0
