"""A check report as text: the CLI's table, its ``--json`` and a teacher's grading CSV.

The CSV has one row per submission: ``file``, then for each function ``NAME`` (pass / fail /
error / missing) and ``NAME_bug`` (a catalogue code or empty), then ``passed`` (functions that
pass) and ``present`` (functions found in the file).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .contract import MISSING, NAMES, PASS, CheckReport

MARK = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "missing": "missing"}


def table(report: CheckReport) -> str:
    """function | status | max error | bug | message, one row each, then the notes."""
    rows = [("function", "status", "max err", "bug", "message")]
    for name, r in report.functions.items():
        err = "" if r.max_abs_err is None else f"{r.max_abs_err:.2g}"
        rows.append((name, MARK[r.status], err, r.bug or "", r.message))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 7)
    for name, r in report.functions.items():
        if r.divergence and r.status != PASS and r.divergence not in r.message:
            lines.append(f"{name}: first difference at {r.divergence}")
    lines += [f"note: {n}" for n in report.notes]
    passed = sum(r.status == PASS for r in report.functions.values())
    present = sum(r.status != MISSING for r in report.functions.values())
    lines.append(f"{passed} of {present} present functions pass ({report.seconds:.1f} s)")
    return "\n".join(lines)


def to_json(report: CheckReport) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2)


def csv_text(graded: list[tuple[Path, CheckReport]], names=NAMES) -> str:
    """The grading CSV for (file, report) pairs."""
    buf = io.StringIO()
    columns = ["file", *[c for n in names for c in (n, f"{n}_bug")], "passed", "present"]
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    for path, report in graded:
        row = {"file": Path(path).name}
        for n in names:
            r = report.functions.get(n)
            row[n], row[f"{n}_bug"] = (r.status, r.bug or "") if r else ("", "")
        row["passed"] = sum(r.status == PASS for r in report.functions.values())
        row["present"] = sum(r.status != MISSING for r in report.functions.values())
        w.writerow(row)
    return buf.getvalue()
