"""``python -m engine bench``: the benchmarks of ``engine.bench`` as ratios against a plain
reference timed in the same run; a table on stdout and, with ``--out``, the JSON report."""

from __future__ import annotations

from .common import check_out, positive, setup_threads


def register(sub) -> None:
    b = sub.add_parser("bench", help="benchmarks as ratios against a plain reference, same run")
    b.add_argument("--quick", action="store_true", help="small sizes (seconds, for tests)")
    b.add_argument("--out", help="write the results as JSON")
    b.add_argument("--threads", type=positive(int))
    b.add_argument("--time-to-quality", action="store_true",
                   help="train both recipes of flow-class and the denoiser from scratch to their quality bar "
                        "(about half an hour on 2 cores) instead of the speed benchmarks")
    b.add_argument("--budget-s", type=positive(float), default=600,
                   help="with --time-to-quality: training seconds each run gets (default 600)")
    b.add_argument("--work", default="cache/bench/time_to_quality_runs",
                   help="with --time-to-quality: where the runs go (resumable)")
    b.set_defaults(handler=run)


def run(args) -> int:
    from ..bench import format_table, to_json
    from ..bench import run as run_all
    from ..checkpoints import atomic_write_text

    out = check_out(args.out) if args.out else None
    setup_threads(args.threads)
    if args.time_to_quality:
        from ..bench import run_time_to_quality

        report = run_time_to_quality(args.work, args.budget_s, log=_say)
    else:
        report = run_all(quick=args.quick, progress=lambda f, name: _say(f"{f:.3f} {name}"))
    print(format_table(report))
    if out:
        atomic_write_text(out, to_json(report) + "\n")
    return 0


def _say(line: str) -> None:
    print(f"[bench] {line}", flush=True)
