"""Training: the loss goes down, resumption is exact, and failures are loud and safe.

Tiny configs (num_hiddens 8, 256 images, batch 32: 8 steps per epoch) keep each run ~1 s on CPU.
"""

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import engine.train as tr
from engine.checkpoints import CheckpointError, load_tensors, load_weights
from engine.config import PRESETS
from engine.runs import epoch_means, read_log
from engine.train import TrainingError, train

STEPS_PER_EPOCH = 8


def tiny(name="flow-class", **kw):
    base = {"num_hiddens": 8, "train_count": 256, "batch_size": 32, "epochs": 2, "snapshot_epochs": ()}
    return replace(PRESETS[name], **(base | kw))


def run(cfg, out, precision="fp32", **kw):
    return train(cfg, out, device="cpu", precision=precision, **kw)


def log_steps(out: Path) -> list[int]:
    return [r["step"] for r in read_log(Path(out) / "log.jsonl")]


def assert_identical_runs(a: Path, b: Path):
    """Same weights, optimizer state and loss log, bit for bit."""
    for name in ("checkpoint.safetensors", "model.safetensors"):
        ta, ma = load_tensors(a / name)
        tb, mb = load_tensors(b / name)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{name}: {k} differs"
    assert read_log(a / "log.jsonl") and [r["loss"] for r in read_log(a / "log.jsonl")] == [
        r["loss"] for r in read_log(b / "log.jsonl")
    ]


pytestmark = pytest.mark.usefixtures("one_thread")

CASES = {"flow-class/fp32": ("flow-class", "fp32"), "ddpm-class/auto": ("ddpm-class", "auto")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted 2-epoch runs, one per case, trained once for the module."""
    done = {}

    def get(case):
        if case not in done:
            name, precision = CASES[case]
            out = tmp_path_factory.mktemp(case.replace("/", "-"))
            manifest = run(tiny(name), out, precision)
            assert manifest["status"] == "finished"
            done[case] = out
        return done[case]

    return get


def test_loss_goes_down_and_the_run_is_complete(tmp_path):
    cfg = tiny("flow-class", epochs=4)
    torch.manual_seed(1234)
    expected_next = torch.rand(1)
    torch.manual_seed(1234)
    manifest = run(cfg, tmp_path)
    assert torch.equal(torch.rand(1), expected_next), "training must not disturb the caller's RNG"

    losses = [r["loss"] for r in read_log(tmp_path / "log.jsonl")]
    assert len(losses) == 4 * STEPS_PER_EPOCH and all(math.isfinite(v) for v in losses)
    first = sum(losses[:STEPS_PER_EPOCH]) / STEPS_PER_EPOCH
    last = sum(losses[-STEPS_PER_EPOCH:]) / STEPS_PER_EPOCH
    assert last < 0.8 * first, f"loss did not go down: {first:.3f} -> {last:.3f}"

    assert manifest["status"] == "finished" and manifest["steps"] == 32 and manifest["world_size"] == 1
    assert manifest["config"]["num_hiddens"] == 8 and math.isfinite(manifest["final_loss"])
    for name in ("model.safetensors", "manifest.json", "checkpoint.safetensors"):
        assert (tmp_path / name).is_file()
    model, loaded_cfg, meta = load_weights(tmp_path / "model.safetensors")
    assert loaded_cfg == cfg and meta["manifest"]["steps"] == 32
    with torch.no_grad():
        out = model(torch.rand(2, 1, 28, 28), torch.rand(2), torch.eye(10)[:2])
    assert out.shape == (2, 1, 28, 28) and torch.isfinite(out).all()


def test_snapshots_are_written_after_the_listed_epochs(tmp_path):
    from engine.sampling import snapshot

    cfg = tiny("denoiser", epochs=2, snapshot_epochs=(1,), lr=1e-3)
    run(cfg, tmp_path, snapshot_fn=snapshot)
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["epoch_01.safetensors"]
    arrays, meta = load_tensors(tmp_path / "snapshots" / "epoch_01.safetensors")
    assert meta["epoch"] == 1 and arrays["noisy"].shape == (7, 8, 1, 28, 28)
    assert torch.isfinite(arrays["denoised"]).all()


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_mid_epoch_is_bit_identical(tmp_path, reference, case):
    name, precision = CASES[case]
    first = run(tiny(name), tmp_path, precision, max_steps=5)
    assert first["status"] == "cancelled" and not (tmp_path / "model.safetensors").exists()
    assert load_tensors(tmp_path / "checkpoint.safetensors")[1]["global_step"] == 5
    assert log_steps(tmp_path) == list(range(5))
    second = run(tiny(name), tmp_path, precision, resume=True)
    assert second["status"] == "finished" and second["steps"] == 16
    assert log_steps(tmp_path) == list(range(16))
    assert_identical_runs(reference(case), tmp_path)


def test_resume_at_an_epoch_boundary_and_twice(tmp_path, reference):
    cfg = tiny("flow-class")
    assert run(cfg, tmp_path, max_steps=STEPS_PER_EPOCH)["status"] == "cancelled"
    meta = load_tensors(tmp_path / "checkpoint.safetensors")[1]
    assert (meta["epoch"], meta["step_in_epoch"], meta["global_step"]) == (1, 0, 8)
    assert run(cfg, tmp_path, resume=True, max_steps=11)["status"] == "cancelled"
    assert run(cfg, tmp_path, resume=True)["status"] == "finished"
    assert log_steps(tmp_path) == list(range(16))
    assert_identical_runs(reference("flow-class/fp32"), tmp_path)


def test_resume_after_a_crash_trims_the_log(tmp_path, reference):
    """A crash after the last checkpoint leaves log lines past it; resume drops and redoes them."""
    cfg = tiny("flow-class")

    def crash(p):
        if p.step == 12:
            raise RuntimeError("simulated crash")

    # checkpoint_every_s=0: a mid-epoch checkpoint after every step, like a long run's timer
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(cfg, tmp_path, on_progress=crash, checkpoint_every_s=0.0)
    assert log_steps(tmp_path) == list(range(12))  # step 11 was logged, not checkpointed
    assert load_tensors(tmp_path / "checkpoint.safetensors")[1]["global_step"] == 11
    run(cfg, tmp_path, resume=True)
    steps = log_steps(tmp_path)
    assert steps == list(range(16)), f"gap or duplicate in the log: {steps}"
    assert_identical_runs(reference("flow-class/fp32"), tmp_path)


def test_resume_without_a_checkpoint_starts_fresh(tmp_path, reference):
    run(tiny("flow-class"), tmp_path, resume=True)
    assert_identical_runs(reference("flow-class/fp32"), tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_checkpoint_is_rejected_on_resume(tmp_path, damage):
    cfg = tiny("denoiser", train_count=64, epochs=1)
    run(cfg, tmp_path)
    path = tmp_path / "checkpoint.safetensors"
    data = path.read_bytes()
    path.write_bytes(b"\x00garbage" * 10 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or not a safetensors file") as err:
        run(cfg, tmp_path, resume=True)
    assert str(path) in str(err.value)


def test_resume_with_other_settings_is_refused(tmp_path):
    run(tiny("denoiser", train_count=64, epochs=1), tmp_path)
    with pytest.raises(TrainingError, match="different settings"):
        run(tiny("denoiser", train_count=64, epochs=1, lr=0.5), tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        run(tiny("denoiser", train_count=64, epochs=1, num_hiddens=4), tmp_path, resume=True)


def test_refuses_to_overwrite_a_checkpoint_without_resume(tmp_path):
    cfg = tiny("denoiser", train_count=64, epochs=1)
    run(cfg, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(TrainingError, match="already has a checkpoint; pass --resume"):
        run(cfg, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny("flow-class")
    real = tr.compute_loss
    calls = {"n": 0}
    saved = {}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 11 else loss  # step 10, in epoch 2

    def watch(p):
        if p.step == STEPS_PER_EPOCH + 1:  # the epoch-1 checkpoint exists now
            saved["bytes"] = (tmp_path / "checkpoint.safetensors").read_bytes()

    monkeypatch.setattr(tr, "compute_loss", poisoned)
    with pytest.raises(TrainingError) as err:
        run(cfg, tmp_path, on_progress=watch)
    msg = str(err.value)
    assert "loss became nan at step 10 (epoch 2)" in msg and "lower --lr" in msg
    assert str(tmp_path / "checkpoint.safetensors") in msg
    assert (tmp_path / "checkpoint.safetensors").read_bytes() == saved["bytes"]
    assert load_tensors(tmp_path / "checkpoint.safetensors")[1]["global_step"] == 8
    assert not (tmp_path / "model.safetensors").exists() and not (tmp_path / "manifest.json").exists()

    monkeypatch.setattr(tr, "compute_loss", real)  # the kept checkpoint is usable
    assert run(cfg, tmp_path, resume=True)["status"] == "finished"
    assert log_steps(tmp_path) == list(range(16))


def test_huge_learning_rate_is_caught(tmp_path):
    with pytest.raises(TrainingError, match="loss became (nan|inf)"):
        run(tiny("denoiser", lr=1e12, lr_schedule="constant", epochs=3), tmp_path)


def test_stop_event_cancels_with_a_checkpoint(tmp_path):
    import threading

    stop = threading.Event()
    manifest = run(
        tiny("denoiser", train_count=128),
        tmp_path,
        stop_event=stop,
        on_progress=lambda p: p.step == 2 and stop.set(),
    )
    assert manifest["status"] == "cancelled"
    assert load_tensors(tmp_path / "checkpoint.safetensors")[1]["global_step"] == 2


def test_batch_larger_than_the_data_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="fewer than one batch"):
        run(tiny("denoiser", train_count=16, batch_size=32), tmp_path)


def test_epoch_means_group_steps_by_the_epoch_they_finish_in():
    # 2 steps per epoch: "epoch" is 0.5, 1.0 in the first and 1.5, 2.0 in the second
    recs = [{"epoch": e, "loss": v} for e, v in [(0.5, 4.0), (1.0, 2.0), (1.5, 1.0), (2.0, 0.5)]]
    assert epoch_means(recs) == [3.0, 0.75]
    assert epoch_means([]) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")
@pytest.mark.parametrize("name", ["denoiser", "flow-class", "ddpm-class"])
def test_cuda_training_with_snapshots_loads_on_the_cpu(tmp_path, name):
    """Models trained on a GPU (the shipped denoisers were) snapshot during training and load
    on a CPU-only machine; the snapshot's sampling loop runs on CPU tensors, the net on CUDA."""
    from engine.sampling import snapshot

    cfg = tiny(name, epochs=1, snapshot_epochs=(1,))
    manifest = train(cfg, tmp_path, device="cuda", snapshot_fn=snapshot)
    assert manifest["status"] == "finished" and manifest["device"].startswith("cuda")
    assert manifest["machine"].startswith("CUDA ") and manifest["precision"] == "bfloat16"
    arrays, _ = load_tensors(tmp_path / "snapshots" / "epoch_01.safetensors")
    assert all(v.device.type == "cpu" and torch.isfinite(v.float()).all() for v in arrays.values())
    model, _, _ = load_weights(tmp_path / "model.safetensors")
    assert next(model.parameters()).device.type == "cpu"


def test_class_recipe_ingredients_resume_exactly(tmp_path):
    """Warm-up + cosine (stepped per step), an EMA of the weights and logit-normal times: a run
    cut mid-epoch and resumed is bit-identical to one never cut; the EMA is what ships."""
    cfg = tiny("flow-class", lr_schedule="cosine", warmup_steps=4, ema_decay=0.9, t_sampling="logit-normal")
    ref, part = tmp_path / "ref", tmp_path / "part"
    assert run(cfg, ref)["status"] == "finished"
    assert run(cfg, part, max_steps=5)["status"] == "cancelled"
    assert run(cfg, part, resume=True)["steps"] == 2 * STEPS_PER_EPOCH
    assert_identical_runs(ref, part)

    lrs = [r["lr"] for r in read_log(ref / "log.jsonl")]  # the rate after each step
    assert lrs[:3] == pytest.approx([cfg.lr * k / 4 for k in (2, 3, 4)])
    assert max(lrs) == pytest.approx(cfg.lr) and lrs[-1] == pytest.approx(cfg.lr * cfg.lr_final_factor)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False)), "cosine must only fall"

    state, _ = load_tensors(ref / "checkpoint.safetensors")
    shipped, _ = load_tensors(ref / "model.safetensors")
    # Over the whole state (one tensor can sit where EMA and weights agree to fp16 rounding):
    # the shipped fp16 weights are the EMA's, within fp16 rounding, and not the raw weights.
    def gap(prefix):
        return max((shipped[k].float() - state[prefix + k].float()).abs().max().item() for k in shipped)

    assert gap("ema.module.") <= 2e-3
    assert gap("model.") > 5 * gap("ema.module.")


def test_a_bad_recipe_setting_is_refused(tmp_path):
    with pytest.raises(ValueError, match="t_sampling"):
        run(tiny("flow-class", t_sampling="beta"), tmp_path)


def test_the_class_recipe_is_the_preset_with_its_overrides():
    from engine.config import PRESETS, RECIPES, with_recipe

    course = PRESETS["flow-class"]
    assert with_recipe(course, "course") is course  # the reference stays exactly the preset
    recipe = with_recipe(course, "class")
    for field, value in RECIPES["flow-class"]["class"].items():
        assert getattr(recipe, field) == value
    assert (recipe.name, recipe.objective, recipe.arch) == (course.name, course.objective, course.arch)
    assert recipe.ema_decay > 0 and recipe.lr_schedule == "cosine" and recipe.epochs < course.epochs
    with pytest.raises(ValueError, match="has no 'class' recipe"):
        with_recipe(PRESETS["ddpm-class"], "class")


def test_time_to_quality_scores_between_segments_and_stops_at_the_bar(tmp_path):
    """engine.bench.time_to_quality.measure: trains in segments (resume is exact, so the run is
    the same as one never cut), scores each from its checkpoint, and stops once the bar is met;
    run again, it goes on from what it recorded."""
    from engine.bench.time_to_quality import denoiser_scorer, measure

    cfg = tiny("denoiser", epochs=3)
    low_bar = measure(cfg, tmp_path / "a", 4, denoiser_scorer(target_db=-100.0, count=50),
                      stop_when_reached=True, log=lambda _: None)
    assert low_bar["reached_at_step"] == 4 and len(low_bar["scores"]) == 1
    high_bar = measure(cfg, tmp_path / "b", 8, denoiser_scorer(target_db=99.0, count=50), log=lambda _: None)
    assert high_bar["reached_at_s"] is None and [s["step"] for s in high_bar["scores"]] == [8, 16, 24]
    assert all(math.isfinite(s["psnr"]) for s in high_bar["scores"])
    again = measure(cfg, tmp_path / "b", 8, denoiser_scorer(target_db=99.0, count=50), log=lambda _: None)
    assert [s["step"] for s in again["scores"]][:3] == [8, 16, 24], "a second call keeps what was measured"
