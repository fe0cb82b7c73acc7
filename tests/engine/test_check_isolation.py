"""Check your code: the student's file runs in a separate, limited process. A file that loops
forever (even one that swallows the timer's exception), allocates without bound, burns CPU, calls
``os.system``, forks, opens a socket, writes or deletes outside its scratch folder, reads the
server's files, or raises is stopped or reported, with the student's own traceback lines; this
process and the sandbox's zygote stay up, and nothing outside the scratch folder changes.

Small limits (2 s per call, 512 MB) keep the file fast; the tiny lab is used throughout.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from engine.check import Limits, check_source
from engine.check.contract import ERROR, FAIL, PASS
from engine.check.lab import Lab, LabSpec
from engine.check.sandbox import network_prefix, zygote_for

pytestmark = pytest.mark.usefixtures("one_thread_module")
LIMITS = Limits(wall_s=2, grace_s=2, memory_mb=512, cpu_s=20)
CORRECT = (Path(__file__).resolve().parents[1] / "check_data" / "correct.py").read_text()
ONE = ("forward",)


@pytest.fixture(scope="module")
def lab():
    return Lab(LabSpec("tiny"))


def check(lab, source, only=ONE, limits=LIMITS):
    return check_source(source, lab=lab, only=only, limits=limits).functions


def test_infinite_loop_is_stopped(lab):
    r = check(lab, "def forward(im, t):\n    while True:\n        pass\n")["forward"]
    assert r.status == ERROR and "stopped after 2 s" in r.message


def test_loop_that_swallows_the_timer_is_killed_and_the_rest_still_runs(lab):
    source = (
        "import time\ndef flow_sample(unet, x0, num_ts=300):\n    while True:\n        try:\n"
        "            time.sleep(0.2)\n        except BaseException:\n            pass\n\n"
        + CORRECT.split("def flow_sample")[0]
    )
    results = check(lab, source, only=("forward", "flow_sample", "flow_matching_loss"))
    assert results["flow_sample"].status == ERROR and "did not return" in results["flow_sample"].message
    assert results["forward"].status == PASS and results["flow_matching_loss"].status == PASS


def test_cpu_limit(lab):
    r = check(
        lab,
        "def forward(im, t):\n    while True:\n        pass\n",
        limits=Limits(wall_s=30, grace_s=2, memory_mb=512, cpu_s=2),
    )["forward"]
    assert r.status == ERROR and "CPU time" in r.message


def test_unbounded_allocation_is_stopped(lab):
    source = ("import torch\ndef forward(im, t):\n    keep = []\n    while True:\n"
              "        keep.append(torch.ones(10**8))\n")
    r = check(lab, source)["forward"]
    assert r.status == ERROR and "out of memory" in r.message and "line 5, in forward" in r.message


@pytest.mark.parametrize(
    "body, what",
    [
        ("import os\n    os.system('touch /tmp/difflab_pwned')", "os.system"),
        ("import os\n    os.fork()", "new processes"),
        ("import subprocess\n    subprocess.run(['true'])", "subprocess"),
        ("import socket\n    socket.socket().connect(('127.0.0.1', 8501))", "sockets"),
        ("import ctypes\n    ctypes.CDLL(None).system(b'true')", "ctypes"),
        ("return open('/etc/hostname').read()", "read only its own folder"),
    ],
)
def test_refused_operations(lab, body, what):
    r = check(lab, f"def forward(im, t):\n    {body}\n")["forward"]
    assert r.status == ERROR and what in r.message, r.message
    assert not Path("/tmp/difflab_pwned").exists()


def test_no_network_namespace_where_the_os_allows_it():
    prefix, note = network_prefix()
    if os.geteuid() == 0:
        assert prefix and prefix[1] == "-n" and note is None


def test_nothing_outside_scratch_changes(lab, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.chmod(outside, 0o777)  # even a world-writable folder: the audit hook, not permissions, refuses
    (outside / "keep.txt").write_text("mine")
    before = {p.name: p.read_text() for p in outside.iterdir()}
    temps = set(os.listdir(tempfile.gettempdir()))
    attempts = {
        "forward": f"open('{outside}/new.txt', 'w').write('x')",
        "iterative_denoise": f"import os; os.remove('{outside}/keep.txt')",
        "iterative_denoise_cfg": f"import pathlib; pathlib.Path('{outside}/keep.txt').write_text('changed')",
        "visual_anagrams": f"import os; os.rename('{outside}/keep.txt', '{outside}/moved.txt')",
        "make_hybrids": f"import os; os.chmod('{outside}/keep.txt', 0o777)",
        "flow_matching_loss": f"import os; os.open('{outside}/fd.txt', os.O_WRONLY | os.O_CREAT)",
    }
    source = "".join(f"def {n}(*args, **kwargs):\n    {code}\n\n" for n, code in attempts.items())
    source += (
        "def flow_sample(unet, x0, num_ts=300):\n    open('inside.txt', 'w').write('fine')\n    return x0\n"
    )
    results = check(lab, source, only=(*attempts, "flow_sample"))
    for name in attempts:
        assert results[name].status == ERROR and "Refused" in results[name].message, results[name].message
    assert results["flow_sample"].status == FAIL  # wrote in its own folder, then returned the wrong thing
    assert {p.name: p.read_text() for p in outside.iterdir()} == before
    assert oct((outside / "keep.txt").stat().st_mode & 0o777) != "0o777"
    assert not {t for t in set(os.listdir(tempfile.gettempdir())) - temps if t.startswith("difflab-check-")}


def test_exception_shows_only_the_students_lines(lab):
    source = ("import torch\n\ndef helper(x):\n    return x.reshape(7, -1, 5)\n\n"
              "def forward(im, t):\n    return helper(im)\n")
    r = check(lab, source)["forward"]
    assert r.status == ERROR
    assert "line 7, in forward: return helper(im)" in r.message and "line 4, in helper" in r.message
    assert "RuntimeError" in r.message and "site-packages" not in r.message and "engine" not in r.message


def test_file_that_fails_to_load(lab):
    for source, text in [
        ("import matplotlib.pyplot as plt\n", "matplotlib"),
        ("def forward(:\n", "SyntaxError"),
        ("while True:\n    pass\n", "stopped after"),
    ]:
        r = check(lab, source)["forward"]
        assert r.status == ERROR and "could not be loaded" in r.message and text in r.message, r.message


def test_nan_wrong_shape_and_prints(lab):
    source = (
        "import torch\ndef forward(im, t):\n    print('hello from forward')\n    return im * float('nan')\n"
        "def flow_sample(unet, x0, num_ts=300):\n    return x0[0]\n"
    )
    results = check(lab, source, only=("forward", "flow_sample"))
    assert results["forward"].status == FAIL and "NaN" in results["forward"].message
    assert "hello from forward" in results["forward"].stdout
    assert results["flow_sample"].status == FAIL and "shape" in results["flow_sample"].message


def test_checker_stays_up_after_all_that(lab):
    zyg = zygote_for(lab.spec.to_dict(), LIMITS.startup_s)
    results = check(lab, CORRECT, only=("forward", "flow_sample"))
    assert all(r.status == PASS for r in results.values())
    assert zyg.alive() and zygote_for(lab.spec.to_dict(), LIMITS.startup_s) is zyg
