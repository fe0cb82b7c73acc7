"""``python -m engine check FILE|DIR``: run a student's Project 5 functions against the reference
in a sandbox and name the bug (``docs/check-your-code.md``).

    python -m engine check my_p5.py [--json] [--only forward,flow_sample] [--map my_fwd=forward]
    python -m engine check submissions/ --csv grades.csv

Exit status 0 when every function present passes (every file, for a folder), 1 otherwise, 2 for
bad arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import CLIError, check_out, positive


def register(sub) -> None:
    c = sub.add_parser(
        "check", help="check a student's Project 5 functions against the reference (sandboxed)"
    )
    c.add_argument("path", help="a .py file, or a folder of them (one per student)")
    c.add_argument(
        "--json",
        action="store_true",
        help='print {"functions": {NAME: {status, bug, max_abs_err, message}}} instead of a table',
    )
    c.add_argument(
        "--only", default=None, help="comma-separated function names to check (default: all seven)"
    )
    c.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="THEIRS=OURS",
        help="the student's name for a contract function, e.g. --map my_forward=forward (repeatable)",
    )
    c.add_argument("--csv", default=None, help="write one row per file (status and bug code per function)")
    c.add_argument(
        "--lab",
        choices=["builtin", "tiny"],
        default="builtin",
        help="builtin: ddpm-class and flow-time (default); tiny: small random nets (fast, for tests)",
    )
    c.add_argument("--models-dir", default=None, help="where the built-in models are (default cache/models)")
    c.add_argument(
        "--timeout", type=positive(float), default=60.0, help="seconds per function call (default 60)"
    )
    c.add_argument("--seed", type=int, default=0, help="seed of every input and noise draw (default 0)")
    c.set_defaults(handler=run)


def _options(args) -> dict:
    from ..check import CheckSettings, LabSpec, Limits, parse_map, parse_only
    from ..check.lab import Lab

    try:
        only, rename = parse_only(args.only), parse_map(args.map)
    except ValueError as e:
        raise CLIError(f"python -m engine check: {e}") from None
    lab = Lab(LabSpec(args.lab, root=args.models_dir))
    return {
        "lab": lab,
        "only": only,
        "rename": rename,
        "settings": CheckSettings(seed=args.seed),
        "limits": Limits(wall_s=args.timeout, cpu_s=int(2 * args.timeout) + 10),
    }


def run(args) -> int:
    from ..check import check_file, check_folder
    from ..check.report import csv_text, table, to_json

    path = Path(args.path)
    if not path.exists():
        raise CLIError(f"python -m engine check: no such file or folder: {path}")
    out = check_out(args.csv) if args.csv else None
    opts = _options(args)
    if path.is_dir():
        graded = check_folder(path, **opts)
        if not graded:
            raise CLIError(f"python -m engine check: no .py files in {path}")
        if args.json:
            print(
                json.dumps({"files": {p.name: r.to_json() for p, r in graded}}, ensure_ascii=False, indent=2)
            )
        else:
            for p, r in graded:
                passed = sum(f.status == "pass" for f in r.functions.values())
                print(f"{p.name}: {passed} of {len(r.functions)} pass", file=sys.stdout)
        ok = all(r.ok for _, r in graded)
    else:
        report = check_file(path, **opts)
        print(to_json(report) if args.json else table(report))
        graded, ok = [(path, report)], report.ok
    if out is not None:
        from ..checkpoints import atomic_write_text

        atomic_write_text(out, csv_text(graded, opts["only"]))
        if not args.json:
            print(f"wrote {out}")
    return 0 if ok else 1
