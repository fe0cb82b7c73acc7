"""Reflow (#23): the teacher's pairs, training on them, and the shipped one-step model."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import checkpoints as ckpt
from engine.adapters import FlowModel, load_builtin
from engine.config import PRESETS, build_model
from engine.reflow import load_pairs, make_pairs, pair_labels, pair_noise, save_pairs
from engine.train import train

ROOT = Path(__file__).resolve().parents[2]


def tiny_teacher(seed=0) -> FlowModel:
    cfg = replace(PRESETS["flow-class"], num_hiddens=4)
    torch.manual_seed(seed)
    return FlowModel(build_model(cfg).eval(), cfg)


def test_pair_noise_is_the_same_whatever_the_batches():
    whole = pair_noise(2500, seed=3)
    parts = torch.cat([pair_noise(2500, 3, 0, 700), pair_noise(2500, 3, 700, 1100),
                       pair_noise(2500, 3, 1100)])
    assert torch.equal(whole, parts)
    assert not torch.equal(pair_noise(10, 4), pair_noise(10, 3))
    counts = torch.bincount(pair_labels(1005, seed=1), minlength=10)
    assert counts.min() >= 100 and counts.max() <= 101


def test_pairs_are_the_teachers_ode_endpoints_and_survive_the_file(tmp_path):
    flow = tiny_teacher()
    pairs = make_pairs(flow, 12, seed=5, guidance=5.0, steps=3, batch=5)
    again = make_pairs(flow, 12, seed=5, guidance=5.0, steps=3, batch=12)
    assert torch.equal(pairs["z1"], again["z1"]) and torch.equal(pairs["labels"], again["labels"])
    # z1 really is the guided ODE's end from z0 (three midpoint steps by hand)
    from engine.guidance import CFGModel

    u = CFGModel(flow, flow.null_cond(1), 5.0)
    x, cond = pairs["z0"].clone(), flow.encode(pairs["labels"])
    for i in range(3):
        t = torch.full((12,), i / 3)
        k1 = u(x, t, cond)
        x = x + u(x + k1 / 6, t + 1 / 6, cond) / 3
    torch.testing.assert_close(pairs["z1"], x, atol=1e-5, rtol=1e-5)
    save_pairs(tmp_path / "p.safetensors", pairs, {"seed": 5, "count": 12})
    loaded, meta = load_pairs(tmp_path / "p.safetensors")
    assert torch.equal(loaded["z0"], pairs["z0"]) and torch.equal(loaded["labels"], pairs["labels"])
    torch.testing.assert_close(loaded["z1"], pairs["z1"], atol=2e-3, rtol=1e-3)  # fp16 on disk
    ckpt.save_tensors(tmp_path / "other.safetensors", {"x": torch.zeros(1)}, {})
    with pytest.raises(ckpt.CheckpointError, match="no reflow pairs"):
        load_pairs(tmp_path / "other.safetensors")


def test_a_deadline_keeps_whole_batches():
    pairs = make_pairs(tiny_teacher(), 20, seed=0, guidance=5.0, steps=1, batch=8, deadline=0.0)
    assert len(pairs["z1"]) == 8 and torch.equal(pairs["z0"], pair_noise(20, 0, 0, 8))


def test_reflow_trains_from_the_teacher_on_its_pairs(tmp_path):
    teacher_cfg = replace(PRESETS["flow-class"], num_hiddens=4, train_count=64, epochs=1, batch_size=32)
    train(teacher_cfg, tmp_path / "teacher", device="cpu", precision="fp32")
    teacher, _, _ = ckpt.load_weights(tmp_path / "teacher" / "model.safetensors")
    pairs = make_pairs(FlowModel(teacher, teacher_cfg), 64, seed=0, guidance=5.0, steps=2, batch=64)
    save_pairs(tmp_path / "pairs.safetensors", pairs, {"seed": 0, "count": 64})
    cfg = replace(PRESETS["flow-class-reflow"], num_hiddens=4, batch_size=32, epochs=2, warmup_steps=1,
                  pairs=str(tmp_path / "pairs.safetensors"),
                  init_from=str(tmp_path / "teacher" / "model.safetensors"))
    # a rate of ~0 keeps the teacher's weights: the student starts from them
    still = train(replace(cfg, lr=1e-12), tmp_path / "still", device="cpu", precision="fp32")
    assert still["status"] == "finished" and still["config"]["guidance_baked"] == 5.0
    kept, _, _ = ckpt.load_weights(tmp_path / "still" / "model.safetensors")
    for a, b in zip(kept.parameters(), teacher.parameters(), strict=True):  # BatchNorm's stats move
        torch.testing.assert_close(a, b.float(), atol=1e-3, rtol=1e-3)
    # a real rate moves them, and the loss on the pairs falls
    train(replace(cfg, epochs=8, lr=3e-3), tmp_path / "student", device="cpu", precision="fp32")
    log = [r["loss"] for r in ckpt_log(tmp_path / "student")]
    assert np.mean(log[-4:]) < np.mean(log[:4])


def ckpt_log(folder):
    from engine.runs import read_log

    return read_log(folder / "log.jsonl")


def test_guidance_one_is_one_network_call_a_step():
    from engine.sampling import sample_flow

    flow, calls = tiny_teacher(), []
    real = flow._run

    def counted(*a):
        calls.append(a[0].shape[0])
        return real(*a)

    flow._run = counted
    sample_flow(flow, torch.tensor([3, 4]), 2, 2, 1.0, torch.Generator().manual_seed(0))
    assert calls == [2, 2]  # no CFG batch of 4
    calls.clear()
    sample_flow(flow, torch.tensor([3, 4]), 2, 2, 5.0, torch.Generator().manual_seed(0))
    assert calls == [4, 4]


def test_shipped_reflow_model_makes_the_asked_digits_in_one_step(tmp_path):
    """The CLI as a user runs it: one Euler step, the default guidance (baked in: γ 1)."""
    out = tmp_path / "one.npz"
    res = subprocess.run([sys.executable, "-m", "engine", "sample", "--model", "flow-class-reflow",
                          "--steps", "1", "--per-label", "5", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "1 network evaluations" in res.stdout
    with np.load(out) as data:
        images, labels, nfe = data["images"], data["labels"], int(data["nfe"])
    assert nfe == 1 and images.shape == (50, 28, 28)
    classifier, _, _ = load_builtin("classifier")
    from engine.classifier import classify

    pred = classify(classifier, torch.from_numpy(images)[:, None].clamp(0, 1))
    assert float((pred == torch.from_numpy(labels)).float().mean()) >= 0.95
    _, cfg, manifest = load_builtin("flow-class-reflow")
    assert cfg.guidance_baked == 5.0 and manifest["config"]["pairs"]
    assert manifest_of("flow-class-reflow")["reflow"]["default_guidance"] == 1.0


def manifest_of(name):
    import json

    return json.loads((ROOT / "cache/models" / name / "manifest.json").read_text())


def test_reflow_pairs_cli_errors_are_one_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "engine", "reflow-pairs", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    bad = run("--count", "4", "--out", str(tmp_path / "p.npz"))
    assert bad.returncode == 2 and ".safetensors" in bad.stderr and "Traceback" not in bad.stderr
    wrong = run("--teacher", "ddpm-class", "--count", "4", "--out", str(tmp_path / "p.safetensors"))
    assert wrong.returncode != 0 and "class-conditioned flow" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    ok = run("--count", "3", "--steps", "1", "--batch", "3", "--threads", "1",
             "--out", str(tmp_path / "p.safetensors"))
    assert ok.returncode == 0, ok.stderr
    pairs, meta = load_pairs(tmp_path / "p.safetensors")
    assert len(pairs["z1"]) == 3 and meta["nfe"] == 2 and meta["guidance"] == 5.0
