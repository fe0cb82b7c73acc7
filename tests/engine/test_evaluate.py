"""engine.evaluate: the numbers behind each model's quality.json (python -m engine evaluate)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine import evaluate as ev
from tests.support.tiny import train_tiny


class FixedClassifier(torch.nn.Module):
    """Logits that say "digit = round(mean pixel * 10) % 10", confidently."""

    def forward(self, x):
        digit = (x.flatten(1).mean(1) * 10).round().long() % 10
        return torch.nn.functional.one_hot(digit, 10).float() * 20.0


def test_per_class_accuracy():
    pred = torch.tensor([0, 0, 1, 2, 2, 2])
    labels = torch.tensor([0, 1, 1, 2, 2, 0])
    acc = ev.per_class_accuracy(pred, labels)
    assert acc == pytest.approx({"0": 0.5, "1": 0.5, "2": 1.0, "overall": 4 / 6})


def test_unconditional_quality_counts_digits_and_confidence():
    images = torch.stack([torch.full((1, 28, 28), v) for v in (0.0, 0.0, 0.1, 0.3)])
    q = ev.unconditional_quality(FixedClassifier(), images)
    assert q["class_share"]["0"] == 0.5 and q["class_share"]["1"] == 0.25 and q["class_share"]["3"] == 0.25
    assert math.isclose(sum(q["class_share"].values()), 1.0)
    assert q["mean_confidence"] > 0.99 and q["confident_share"] == 1.0


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-models")
    for name in ("classifier", "flow-class", "flow-time", "ddpm-class", "denoiser", "denoiser-pure-noise",
                 "flow-class-reflow"):
        train_tiny(name, root / name)
    return root


def test_evaluate_each_kind_of_model(tiny_root, one_thread):
    flow = ev.evaluate("flow-class", tiny_root, per_label=1)
    assert set(flow["per_class_accuracy"]) == {*map(str, range(10)), "overall"}
    assert flow["guidance"] == 5.0 and flow["steps"] == 300 and flow["samples"] == 10
    ddpm = ev.evaluate("ddpm-class", tiny_root, per_label=1)
    assert ddpm["guidance"] == 7.0 and ddpm["stride"] == 30
    assert all(0.0 <= v <= 1.0 for v in ddpm["per_class_accuracy"].values())
    time_only = ev.evaluate("flow-time", tiny_root, per_label=1)
    assert "per_class_accuracy" not in time_only  # no class asked for: nothing to be accurate about
    assert math.isclose(sum(time_only["class_share"].values()), 1.0, abs_tol=0.01)
    assert 0.1 <= time_only["mean_confidence"] <= 1.0
    den = ev.evaluate("denoiser", tiny_root)
    assert den["trained_sigma"] == 0.5 and len(den["psnr_by_sigma"]) == 7
    assert den["psnr_by_sigma"]["0.0"]["noisy_psnr"] is None  # infinite: the input is clean
    json.dumps(den, allow_nan=False)  # quality.json is strict JSON (no Infinity)
    pure = ev.evaluate("denoiser-pure-noise", tiny_root)
    assert pure["count"] == 256
    assert 0 <= pure["rms_to_mean_image"] <= pure["rms_to_mean_image_per_output"] + 1e-6


def test_quality_summary_one_line_per_kind(tmp_path):
    from engine.adapters import quality_summary, read_quality

    assert quality_summary({"test_accuracy": 0.9929}) == "99.29 % MNIST test accuracy"
    acc = {**{str(c): 1.0 for c in range(10)}, "3": 0.9, "overall": 0.99}
    line = quality_summary({"per_class_accuracy": acc, "guidance": 7.0, "stride": 30, "samples": 200})
    assert line == ("99.0 % of 200 samples classified as the asked digit "
                    "(γ 7.0, stride 30; worst digit 3: 90 %)")
    psnr = {"psnr_by_sigma": {"0.5": {"denoised_psnr": 20.1, "noisy_psnr": 6.0}}, "trained_sigma": 0.5}
    assert quality_summary(psnr) == "test PSNR at σ 0.5: 20.1 dB (noisy input 6.0 dB)"
    assert quality_summary(None) == "" and quality_summary({"per_class_accuracy": "x"}) == "see quality.json"
    (tmp_path / "flow-class").mkdir()
    assert read_quality("flow-class", tmp_path) is None
    (tmp_path / "flow-class" / "quality.json").write_text("[1, 2]")
    assert read_quality("flow-class", tmp_path) is None


# ----------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_known_values():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=gen, dtype=torch.float64)
    assert ev.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # N(0, I) vs N(m, 4 I) in 3-d: |m|^2 + 3 (1 + 4 - 2 * 2) = |m|^2 + 3, up to sampling noise
    b = 2 * torch.randn(4000, 3, generator=gen, dtype=torch.float64) + torch.tensor([1.0, 2.0, 0.0])
    assert ev.frechet_distance(a, b) == pytest.approx(5.0 + 3.0, rel=0.05)


def test_fd_sees_real_digits_as_close_and_noise_as_far():
    """With the shipped classifier: held-out test digits score about the floor, noise far above."""
    from engine.adapters import ModelNotFound, load_builtin
    from engine.data import load_mnist

    try:
        classifier = load_builtin("classifier")[0]
    except ModelNotFound:
        pytest.skip("the classifier is not shipped in this copy")
    test = load_mnist("test")
    labels = torch.arange(200) % 10
    real = torch.cat([test.images[:5000][test.labels[:5000] == c][:20] for c in range(10)])
    real_labels = torch.arange(10).repeat_interleave(20)
    score = ev.fd_to_test(classifier, real, real_labels)
    assert score["fd_dims"] == ev.FD_DIMS and score["fd"] < 1.5 * score["fd_floor"]
    noise = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert ev.fd_to_test(classifier, noise, labels)["fd"] > 5 * score["fd_floor"]
    blurred = torch.nn.functional.avg_pool2d(real, 3, 1, 1)  # same digits, softer strokes
    assert score["fd"] < ev.fd_to_test(classifier, blurred, real_labels)["fd"]


def test_evaluate_fd_and_the_fewer_steps_sweep(tiny_root, one_thread, monkeypatch):
    from engine import fewer_steps as fs

    flow = ev.evaluate("flow-class", tiny_root, per_label=2, fd=True)
    assert flow["fd"] > 0 and flow["fd_floor"] > 0 and flow["fd_dims"] == ev.FD_DIMS
    monkeypatch.setattr(fs, "GRIDS", {"euler": (2, 4), "midpoint": (1,), "heun": (1,), "rk4": (1,)})
    monkeypatch.setitem(fs.COURSE_SAMPLER, "flow", ("euler", 4))
    seen = []
    report = fs.sweep("flow-class", samples=20, root=tiny_root, progress=lambda f, text: seen.append(f))
    pairs = [(p["sampler"], p["steps"], p["nfe"]) for p in report["points"]]
    assert pairs == [("euler", 2, 2), ("euler", 4, 4), ("midpoint", 1, 2), ("heun", 1, 2), ("rk4", 1, 4)]
    assert report["course"] == {"sampler": "euler", "steps": 4} and report["samples"] == 20
    assert all(0 <= p["accuracy"] <= 1 and p["fd"] > 0 and p["seconds"] >= 0 for p in report["points"])
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    best = fs.fastest_within(report, 10.0)  # a wide margin: the fewest NFE wins, ties by distance
    assert best["nfe"] == 2
    assert fs.fastest_within(report, -1.0) is None  # nothing is 100 % better than the course


def test_a_distilled_model_is_measured_beside_its_teacher(tiny_root, one_thread, monkeypatch):
    """Fewer steps for flow-class-reflow: its own points at 1-8 NFE, the teacher's at the same NFE,
    and the teacher's course setting as the reference; the fastest point is the student's."""
    from engine import fewer_steps as fs
    from engine.config import PRESETS

    assert fs.teacher_of(PRESETS["flow-class-reflow"], {}) == "flow-class"  # from the weights it started at
    assert fs.teacher_of(PRESETS["flow-class"], {}) is None
    assert fs.teacher_of(PRESETS["flow-class"], {"reflow": {"pairs": {"teacher": "flow-x"}}}) == "flow-x"
    monkeypatch.setattr(fs, "teacher_of", lambda cfg, manifest: "flow-class")  # the stand-in has no pairs
    monkeypatch.setattr(fs, "ONE_STEP_GRIDS", {"euler": (1, 2)})
    monkeypatch.setattr(fs, "TEACHER_GRIDS", {"euler": (1, 2)})
    monkeypatch.setitem(fs.COURSE_SAMPLER, "flow", ("euler", 4))
    report = fs.sweep("flow-class-reflow", samples=20, root=tiny_root)
    who = [(p["model"], p["sampler"], p["steps"], p["nfe"]) for p in report["points"]]
    student, teacher = "flow-class-reflow", "flow-class"
    assert who == [(student, "euler", 1, 1), (student, "euler", 2, 2), (teacher, "euler", 1, 1),
                   (teacher, "euler", 2, 2), (teacher, "euler", 4, 4)]
    assert report["course"] == {"sampler": "euler", "steps": 4, "model": "flow-class"}
    assert report["teacher"] == "flow-class" and report["guidance"] == 1.0  # guidance baked in
    assert fs.course_point(report) is report["points"][-1]
    best = fs.fastest_within(report, 10.0)  # the teacher's 1-step point ties on NFE but never counts
    assert best["model"] == "flow-class-reflow" and best["nfe"] == 1
