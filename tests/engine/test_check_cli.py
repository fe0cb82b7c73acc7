"""``python -m engine check``: the table, the ``--json`` contract, ``--only`` and ``--map``, the
exit status (0 when everything present passes), a folder graded into one CSV, and one-line
errors for bad arguments. Most calls go through ``engine.cli.main`` in this process (the
student's code still runs in the sandbox); one runs the real command line.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.check.contract import NAMES
from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "check_data"
sys.path.insert(0, str(DATA))
from plants import plant  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread_module")
CORRECT = (DATA / "correct.py").read_text()


@pytest.fixture
def buggy(tmp_path) -> Path:
    path = tmp_path / "buggy.py"
    path.write_text(plant(CORRECT, ["cfg-sign"]).replace("def flow_sample(", "def my_sampler("))
    return path


def test_json_contract_and_exit_status(buggy, capsys):
    rc = main(
        [
            "check",
            str(buggy),
            "--lab",
            "tiny",
            "--json",
            "--only",
            "iterative_denoise_cfg,flow_sample,forward",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert list(data) == ["functions"] and list(data["functions"]) == [
        "forward",
        "iterative_denoise_cfg",
        "flow_sample",
    ]
    for entry in data["functions"].values():
        assert set(entry) == {"status", "bug", "max_abs_err", "message"}
    assert data["functions"]["iterative_denoise_cfg"]["status"] == "fail"
    assert data["functions"]["iterative_denoise_cfg"]["bug"] == "cfg-sign"
    assert data["functions"]["flow_sample"] == {
        "status": "missing",
        "bug": None,
        "max_abs_err": None,
        "message": "no function named flow_sample in your file",
    }
    assert data["functions"]["forward"]["status"] == "pass"


def test_map_and_table(buggy, capsys):
    rc = main(
        [
            "check",
            str(buggy),
            "--lab",
            "tiny",
            "--only",
            "flow_sample,forward",
            "--map",
            "my_sampler=flow_sample",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0].split()[:5] == ["function", "status", "max", "err", "bug"]
    assert "flow_sample" in out and "2 of 2 present functions pass" in out


def test_folder_to_csv(buggy, tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text(CORRECT)
    (folder / "bob.py").write_text(buggy.read_text())
    out = tmp_path / "grades.csv"
    rc = main(
        ["check", str(folder), "--lab", "tiny", "--csv", str(out), "--only", "forward,iterative_denoise_cfg"]
    )
    assert rc == 1 and "wrote" in capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["file"] for r in rows] == ["alice.py", "bob.py"]
    assert rows[0]["iterative_denoise_cfg"] == "pass" and rows[0]["passed"] == "2"
    assert rows[1]["iterative_denoise_cfg"] == "fail" and rows[1]["iterative_denoise_cfg_bug"] == "cfg-sign"
    assert list(rows[0])[:3] == ["file", "forward", "forward_bug"] and list(rows[0])[-2:] == [
        "passed",
        "present",
    ]


@pytest.mark.parametrize(
    "argv, text",
    [
        (["check", "/nonexistent.py"], "no such file"),
        (["check", str(DATA / "correct.py"), "--only", "forwards"], "--only"),
        (["check", str(DATA / "correct.py"), "--map", "forward"], "--map"),
        (["check", str(DATA / "correct.py"), "--timeout", "-1"], "timeout"),
    ],
)
def test_bad_arguments_exit_2(argv, text, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_real_command_line_exit_zero():
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "check", str(DATA / "correct.py"), "--lab", "tiny", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data["functions"]) == list(NAMES) and all(
        f["status"] == "pass" for f in data["functions"].values()
    )
