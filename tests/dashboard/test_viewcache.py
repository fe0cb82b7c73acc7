"""The view cache (dashboard/viewcache.py): results on disk that a fresh server serves at once, and
never after the model or the code that made them changed."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard import viewcache
from dashboard.parta.contract import HybridResult
from engine.adapters import MODELS_DIR
from engine.checkpoints import load_tensors, save_tensors
from engine.trajectory import Trajectory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def views(tmp_path, monkeypatch):
    folder = tmp_path / "views"
    monkeypatch.setenv("DIFFLAB_VIEW_CACHE_DIR", str(folder))
    monkeypatch.delenv("DIFFLAB_VIEW_CACHE", raising=False)
    viewcache.STATS.clear()
    return folder


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A models folder with one fake model "m" (the stamp only reads its bytes)."""
    root = tmp_path / "models"
    (root / "m").mkdir(parents=True)
    (root / "m" / "model.safetensors").write_bytes(b"weights v1")
    (root / "m" / "manifest.json").write_text('{"epochs": 1}')
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(root))
    return root


def counted(**kw):
    """A decorated function that counts its real calls."""
    calls = []

    @viewcache.on_disk(**kw)
    def compute(seed: int, root: str = "", mtime: float = 0.0, _progress=None):
        calls.append(seed)
        return {"x": np.full((2, 3), float(seed) + len(calls) / 10, np.float32), "n": len(calls)}

    return compute, calls


def test_codec_round_trips_results_exactly():
    traj = Trajectory(times=(1.0, 0.5), x=torch.randn(2, 3, 1, 4, 4).bfloat16(),
                      x_hat=np.random.rand(2, 3, 1, 4, 4).astype(np.float32), nfe=7, value_range=(-1.0, 1.0))
    value = {"traj": traj, "pair": (np.arange(5), [1, 2.5, None]), "nan": math.nan, "inf": -math.inf,
             "hybrid": HybridResult(np.zeros((1, 1, 2, 2)), None, np.ones((2, 2)), np.ones((2, 2)), 3),
             "flag": True, "name": "ddpm"}
    tensors = {}
    tree = json.loads(json.dumps(viewcache.encode(value, tensors)))
    back = viewcache.decode(tree, tensors, viewcache._registry())
    assert isinstance(back["traj"], Trajectory) and back["traj"].x.dtype == torch.bfloat16
    assert torch.equal(back["traj"].x, traj.x) and np.array_equal(back["traj"].x_hat, traj.x_hat)
    assert back["traj"].times == (1.0, 0.5) and back["traj"].value_range == (-1.0, 1.0)
    assert isinstance(back["pair"], tuple) and isinstance(back["pair"][1], list)
    assert back["pair"][1] == [1, 2.5, None] and np.array_equal(back["pair"][0], np.arange(5))
    assert math.isnan(back["nan"]) and back["inf"] == -math.inf
    assert back["hybrid"].band_t == 3 and back["hybrid"].fft_low is None
    assert back["flag"] is True and back["name"] == "ddpm"


def test_an_entry_rebuilds_only_known_classes(views):
    """An entry naming any other class (a hand-edited or foreign file) is not served."""
    tree = {"class": "subprocess.Popen", "fields": {"args": {"list": ["sh"]}}}
    save_tensors(views / "evil.safetensors", {}, {"tree": json.dumps(tree)})
    with pytest.raises(KeyError):
        viewcache.load("evil")
    assert viewcache.STATS["unreadable"] == 1


def test_a_result_is_served_from_disk_until_its_model_changes(views, models):
    compute, calls = counted(models=("m",), drop=("root", "mtime"))
    first = compute(3, root="/here", mtime=1.0)
    assert calls == [3] and viewcache.STATS["stored"] == 1
    # a fresh server: another folder path, other mtimes, a progress callback: the same entry
    again = compute(3, root="/elsewhere", mtime=2.0, _progress=print)
    assert calls == [3] and viewcache.STATS["hit"] == 1
    assert np.array_equal(again["x"], first["x"]) and again["n"] == 1

    os.utime(models / "m" / "model.safetensors", (1, 1))  # touched, same bytes: still served
    compute(3)
    assert calls == [3]

    (models / "m" / "model.safetensors").write_bytes(b"weights v2")  # retrained
    retrained = compute(3)
    assert calls == [3, 3] and retrained["n"] == 2, "a retrained model's result must be recomputed"
    (models / "m" / "manifest.json").write_text('{"epochs": 2}')
    compute(3)
    assert len(calls) == 3, "a changed manifest is another model too"
    compute(4)
    assert calls[-1] == 4, "other arguments, another entry"


def test_changed_code_is_never_served_an_old_entry(views, models, monkeypatch):
    compute, calls = counted(models=("m",))
    compute(1)
    monkeypatch.setattr(viewcache, "code_stamp", lambda: "another version of the engine")
    compute(1)
    assert calls == [1, 1]
    assert len(list(views.glob("*.safetensors"))) == 2
    assert viewcache.drop_other_code() == 1, "the old code's entry goes, the new one stays"
    compute(1)
    assert calls == [1, 1]


def test_missing_model_or_disabled_cache_computes_every_time(views, models, monkeypatch):
    compute, calls = counted(models=("absent",))
    compute(1), compute(1)
    assert calls == [1, 1] and not list(views.glob("*.safetensors"))
    monkeypatch.setenv("DIFFLAB_VIEW_CACHE", "off")
    compute, calls = counted(models=("m",))
    compute(1), compute(1)
    assert calls == [1, 1]


def test_a_broken_entry_is_computed_again_and_replaced(views, models):
    compute, calls = counted(models=("m",))
    compute(5)
    (entry,) = views.glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:40])  # half-written by a crash
    assert compute(5)["n"] == 2 and viewcache.STATS["unreadable"] == 1
    assert compute(5)["n"] == 2, "the recomputed entry replaced the broken one"


def test_the_folder_keeps_the_newest_entries(views, models, monkeypatch):
    monkeypatch.setattr(viewcache, "MAX_ENTRIES", 3)
    compute, _ = counted(models=("m",))
    for seed in range(6):
        compute(seed)
    assert len(list(views.glob("*.safetensors"))) == 3


def test_start_fill_runs_once_and_not_when_filled(views, monkeypatch):
    started = []
    class Child:
        def __init__(self, cmd, **kw):
            started.append(cmd)

        def wait(self):
            return 0

    monkeypatch.setattr(viewcache.subprocess, "Popen", Child)
    monkeypatch.setattr(viewcache, "_fill_started", False)
    monkeypatch.setenv("DIFFLAB_VIEW_CACHE_FILL", "on")
    assert viewcache.start_fill() and started[0][1:] == ["-m", "dashboard.viewfill"]
    assert not viewcache.start_fill(), "once per server process"
    monkeypatch.setattr(viewcache, "_fill_started", False)
    views.mkdir(exist_ok=True)
    done = {"state": "done", "stamps": viewcache.current_stamps()}
    (views / viewcache.FILL_STATE).write_text(json.dumps(done))
    assert not viewcache.start_fill() and len(started) == 1, "already filled for this code and these models"


# ----------------------------------------------------------------------------- real pages


def _retrained_models(tmp_path) -> Path:
    """The shipped models, but ddpm-class with one weight nudged: a retrained model."""
    root = tmp_path / "retrained"
    root.mkdir()
    for folder in MODELS_DIR.iterdir():
        if folder.name != "ddpm-class" and folder.is_dir():
            (root / folder.name).symlink_to(folder, target_is_directory=True)
    shutil.copytree(MODELS_DIR / "ddpm-class", root / "ddpm-class",
                    ignore=shutil.ignore_patterns("checkpoint*", "snapshots"))
    state, meta = load_tensors(root / "ddpm-class" / "model.safetensors")
    key = next(k for k, v in state.items() if v.ndim == 4)
    state[key] = state[key] * 1.05
    save_tensors(root / "ddpm-class" / "model.safetensors", state, meta)
    return root


def _images(at) -> list[bytes]:
    return [el.proto.SerializeToString() for el in at.image]


def test_a_fresh_server_serves_a_page_from_disk_until_the_model_is_retrained(views, tmp_path, monkeypatch):
    import streamlit as st

    from tests.support.helpers import ok, page

    monkeypatch.delenv("DIFFLAB_MODELS_DIR", raising=False)
    cold = page("a5_illusions.py", timeout=300)
    ok(cold)
    assert viewcache.STATS["stored"] >= 1
    st.cache_data.clear()  # a new server process: memory caches empty, the disk kept
    viewcache.STATS.clear()
    warm = page("a5_illusions.py", timeout=300)
    ok(warm)
    assert viewcache.STATS["hit"] >= 1 and viewcache.STATS["miss"] == 0
    assert _images(cold) and _images(warm) == _images(cold)

    st.cache_data.clear()
    viewcache.STATS.clear()
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(_retrained_models(tmp_path)))
    st.cache_resource.clear()
    retrained = page("a5_illusions.py", timeout=300)
    ok(retrained)
    assert viewcache.STATS["hit"] == 0 and viewcache.STATS["miss"] >= 1
    assert _images(retrained) != _images(cold), "the retrained model's own images"
    st.cache_resource.clear()


@pytest.mark.slow
def test_the_background_fill_fills_the_pages_it_opens(views):
    cmd = [sys.executable, "-m", "dashboard.viewfill", "--pages", "home.py", "a5_illusions.py"]
    env = {k: v for k, v in os.environ.items() if k != "DIFFLAB_MODELS_DIR"}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    state = viewcache.fill_state()
    assert state["state"] == "done" and not state["errors"] and state["stored"] >= 1
    assert state["stamps"] == viewcache.current_stamps()
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert json.loads(again.stdout.strip().splitlines()[-1])["stored"] == 0, "a second fill finds it all"
