"""Part B pages under AppTest, each on its own (no entrypoint, no sidebar): runs without an
exception with the models present, shows the fix command when they are missing, and its main
widgets do what they say; and what they compute (``dashboard.partb``).

Models: conftest's ``page_models``: the shipped ``cache/models/<name>`` when present, else a tiny
one trained here in-process (D=4, 128 images, 1 epoch: noise for pictures, the right shapes and
files; snapshots of the tiny flow/DDPM models are random arrays: the pages only display them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import jobs
from dashboard import partb as pb
from engine.adapters import MNISTDDPM, FlowModel, load_builtin

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"
PART_B = ["b1_denoiser.py", "b2_flow.py", "b3_training_lab.py", "ab_ddpm_vs_flow.py"]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def env(page_models, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(page_models))
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(tmp_path / "runs"))
    return page_models


@pytest.fixture
def no_models(tmp_path, monkeypatch):
    empty = tmp_path / "empty_models"
    empty.mkdir()
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(empty))
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(tmp_path / "runs"))
    return empty


def app(page: str) -> AppTest:
    return AppTest.from_file(str(PAGES / page), default_timeout=240)


def image_captions(at: AppTest) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


# ----------------------------------------------------------------------------- pages


@pytest.mark.parametrize("page", PART_B)
def test_page_shows_fix_command_when_models_are_missing(no_models, page):
    at = app(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page != "b3_training_lab.py":  # the lab needs no model; it trains them
        assert "python -m engine train" in "\n".join(e.value for e in at.error) + texts(at)


def test_b1_denoiser(env):
    at = app("b1_denoiser.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    heads = [m.value for m in at.markdown if m.value.startswith("**σ =")]
    assert len(heads) == 7 and heads[0].startswith("**σ = 0**") and heads[-1].startswith("**σ = 1**")
    assert any(len(row) == 7 for row in _column_rows(at))  # the sigma grid is 7 columns
    assert [m.label for m in at.metric][0].startswith("RMS")
    assert len(at.get("plotly_chart")) == 2  # PSNR vs sigma, training curve
    assert any(c.startswith("epoch 1:") for c in image_captions(at))  # snapshot after epoch 1
    before = [m.value for m in at.metric]
    at.number_input(key="b1_seed").set_value(7).run()
    assert not at.exception
    assert [m.value for m in at.metric] != before  # the seed changes the noise


def _column_rows(at):
    rows = []

    def walk(node):
        kids = list(getattr(node, "children", {}).values()) if hasattr(node, "children") else []
        cols = [k for k in kids if type(k).__name__ == "Column"]
        if cols:
            rows.append(cols)
        for k in kids:
            walk(k)

    walk(at.main)
    return rows


def test_b2_flow_gamma_and_steps(env):
    at = app("b2_flow.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.slider(key="b2_gamma").value == 5.0 and at.select_slider(key="b2_steps").value == 300
    at.select_slider(key="b2_steps").set_value(5)
    at.button(key="FormSubmitter:b2_form-Sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("γ = 5, 5 steps" in c for c in image_captions(at))
    assert len(at.get("plotly_chart")) >= 2  # the trajectory animation and the LR curves
    if (pb.model_folder("flow-class-constant-lr") / "lr_sweep.json").exists():  # ships with the model
        assert "Shipped: constant" in texts(at)
    # B2.6b, the write-up's figure: digit 2 from the scheduler and the constant rates side by side
    lr_captions = [c for c in image_captions(at) if "constant 1e-" in c or "ExponentialLR" in c]
    assert [c.split(":")[0] for c in lr_captions] == [
        "flow-class", "flow-class-constant-lr", "flow-class-constant-lr-1e-4"
    ], lr_captions
    at.segmented_control(key="b2_lr_digits").set_value("all").run()
    assert not at.exception, [e.value for e in at.exception]
    at.slider(key="b2_gamma").set_value(0.0)
    at.button(key="FormSubmitter:b2_form-Sample").click().run()
    assert any("γ = 0, 5 steps" in c for c in image_captions(at))
    flow = FlowModel(*load_builtin("flow-class", env)[:2])
    g5, g0 = (pb.flow_samples(flow, g, 5, 0, 4) for g in (5.0, 0.0))
    assert not np.allclose(g5.final, g0.final)  # gamma changes the samples
    assert g5.final.shape == (40, 1, 28, 28) and g5.x.shape == g5.x_hat.shape == (6, 40, 1, 28, 28)
    assert g5.times[0] == 0.0 and g5.times[-1] == 1.0 and g5.nfe == 5
    assert pb.flow_speed(g5).shape == (6,) and (pb.flow_speed(g5) > 0).all()
    at.radio(key="b2_model").set_value("flow-time").run()  # time model: no CFG slider in use
    assert not at.exception
    assert at.slider(key="b2_gamma").disabled


def test_b2_one_step_model_samples_at_once_beside_its_teacher(env):
    """flow-class-reflow on the Flow matching page: one step, sampled without a press, guidance
    baked in (the slider is off), and the teacher's blurred single step from the same seed."""
    at = app("b2_flow.py")
    at.run()
    at.radio(key="b2_model").set_value("flow-class-reflow").run()
    assert not at.exception, [e.value for e in at.exception]
    captions = image_captions(at)
    assert any(c.startswith("flow-class (the teacher), one Euler step, γ = 5, seed 0") for c in captions)
    assert any(c.startswith("flow-class-reflow: γ = 1 (γ = 5 baked in), 1 step, seed 0") for c in captions)
    assert at.slider(key="b2_gamma").disabled
    at.select_slider(key="b2_reflow_steps").set_value(2)
    next(b for b in at.button if b.label == "Sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(c.startswith("flow-class-reflow: γ = 1 (γ = 5 baked in), 2 steps") for c in image_captions(at))


def test_b2_how_likely_scores_an_input_and_places_it_among_test_digits(env):
    """"How likely is a digit?": pick an input, press Score it, read its bits/dim under flow-class
    next to the shipped reference; a blank page beats noise (and, with the shipped model, a digit)."""
    at = app("b2_flow.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shipped = (pb.model_folder("flow-class") / "likelihood.json").exists()
    scored = {}
    for kind in ("a blank page", "uniform noise"):
        at.selectbox(key="b2_nll_kind").set_value(kind).run()
        at.button(key="b2_nll_run").click().run()
        assert not at.exception, [e.value for e in at.exception]
        caption = next(c for c in image_captions(at) if c.startswith(f"{kind}: **"))
        scored[kind] = float(caption.split("**")[1].split()[0])
        assert "bits/dim" in caption and ("MNIST test digits average" in caption) == shipped
    assert scored["uniform noise"] > scored["a blank page"] > 0
    if shipped:  # the Nalisnick surprise, and the histogram with its text alternative
        assert scored["a blank page"] < 1.2 < 1.5 < 9.0 < scored["uniform noise"]
        assert "Bits per dimension under flow-class: test digits 1.79" in texts(at)
        assert len(at.get("plotly_chart")) >= 3
    assert "b2_nll_index" not in [w.key for w in at.number_input]  # no digit to pick for these inputs


def test_b2_how_likely_waits_for_a_drawing_and_scores_an_own_image(env):
    """"your drawing" / "your upload": Score it waits until there is an image; the image the page
    passes is the one scored (the shipped inputs' path is not used for it)."""
    at = app("b2_flow.py")
    at.run()
    for kind in ("your drawing", "your upload"):
        at.selectbox(key="b2_nll_kind").set_value(kind).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.button(key="b2_nll_run").disabled  # nothing drawn or uploaded yet
    from dashboard import cache_partb, likelihood

    blank = np.zeros((28, 28), np.float32)
    root = str(pb.models_dir())
    image, mine = cache_partb.likelihood("your drawing", 0, 0, root, pb.stamp("flow-class"), blank)
    _, shipped = cache_partb.likelihood("a blank page", 0, 0, root, pb.stamp("flow-class"))
    assert image.shape == (28, 28) and mine["bits_per_dim"] == pytest.approx(shipped["bits_per_dim"])
    assert "your drawing" in likelihood.caption("your drawing", mine, None)


def test_ab_ddpm_vs_flow(env):
    at = app("ab_ddpm_vs_flow.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    body = texts(at)
    assert "counts **down** from 999" in body and "runs **up** from 0 to 1" in body
    assert "\\gamma = 1 + w" in body
    assert "same tensor" in body  # both samplers start from the same noise
    at.number_input(key="ab_count").set_value(1)
    at.select_slider(key="ab_steps").set_value(10)
    at.select_slider(key="ab_stride").set_value(100).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("10 Euler steps" in c for c in image_captions(at))
    ddpm = MNISTDDPM(load_builtin("ddpm-class", env)[0])
    flow = FlowModel(*load_builtin("flow-class", env)[:2])
    d, f, start_equal = pb.ddpm_vs_flow(ddpm, flow, 3, 1, 0, 100, 7.0, 10, 5.0)
    assert start_equal and list(d.times[:2]) == [990, 890] and d.times[-1] == 0
    assert f.times[0] == 0.0 and f.times[-1] == 1.0
    # frame k pairs x_t with the estimate made from it; the last estimate is the result itself
    assert d.x_hat.shape == d.x.shape
    assert not np.array_equal(d.x_hat[0], d.x[0])
    assert np.array_equal(d.x_hat[-1], d.x[-1])


def test_b3_training_lab_start_queue_cancel(env, tmp_path):
    runs = tmp_path / "runs"
    at = app("b3_training_lab.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="b3_model").set_value("denoiser").run()
    at.number_input(key="b3_epochs_denoiser").set_value(1)
    at.number_input(key="b3_count_denoiser").set_value(0)  # all 60000: long enough to cancel
    at.number_input(key="b3_batch_denoiser").set_value(8)
    at.number_input(key="b3_width_denoiser").set_value(4)
    at.text_input(key="b3_name").set_value("../Class demo")
    at.button(key="FormSubmitter:b3_start-Start training").click().run()
    try:
        assert not at.exception, [e.value for e in at.exception]
        assert any("class-demo" in s.value for s in at.success)
        assert (runs / "class-demo" / "job.json").exists() and not (tmp_path / "Class demo").exists()
        at.text_input(key="b3_name").set_value("another")
        at.button(key="FormSubmitter:b3_start-Start training").click().run()
        assert not at.exception, [e.value for e in at.exception]
        # the second start waits in the queue instead of training alongside the first
        assert any("Queued run **another**" in i.value and "number 1 in line" in i.value for i in at.info)
        queued = jobs.load_job("another", runs)
        assert queued.status == "queued" and queued.pid is None
        assert not (runs / "another" / "log.jsonl").exists()
        assert jobs.running_job(runs).run_id == "class-demo"
        assert "number 1 in line" in texts(at)  # the watched run is the queued one, with its place
        log = runs / "class-demo" / "log.jsonl"
        deadline = time.monotonic() + 90
        while not (log.exists() and log.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        at.selectbox(key="b3_watch").set_value("class-demo").run()
        assert not at.exception
        at.button(key="b3_cancel").click().run()
        job = jobs.wait("class-demo", runs, timeout=60)
        assert job.status == "cancelled"
        at.run()  # the page moves the queue: "another" starts now that nothing trains
        assert not at.exception
        assert jobs.load_job("another", runs).status in jobs.ACTIVE + ("finished", "cancelled")
        assert at.button(key="b3_resume") is not None  # a cancelled run offers Resume
        assert "run: class-demo" in at.multiselect(key="b3_compare").value
        assert len(at.get("plotly_chart")) >= 2  # live loss and the comparison
    finally:
        for j in jobs.list_jobs(runs):  # never leave a training process behind
            if j.active or j.queued:
                jobs.cancel(j.run_id, runs)
                jobs.wait(j.run_id, runs, 60)


def test_presenter_mode_enlarges_chart_text(env):
    at = app("b1_denoiser.py")
    at.session_state["presenter"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert specs and all(s["layout"]["font"]["size"] == 17 for s in specs)
    plain = app("b1_denoiser.py")
    plain.run()
    assert all("font" not in json.loads(c.proto.spec)["layout"] for c in plain.get("plotly_chart"))


def test_fewer_steps_page(env, tmp_path, monkeypatch):
    """The same noise through every sampler, NFE and time under each grid; the curves from a
    report (here one measured "on this machine" and saved where the page keeps them)."""
    monkeypatch.setenv("DIFFLAB_APP_DIR", str(tmp_path / "app"))
    at = app("c1_fewer_steps.py")
    at.session_state["fs_steps"] = 2
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    captions = image_captions(at)
    assert len(captions) == 3 and all("network evaluations" in c for c in captions)  # ddpm, ddim, dpmpp-2m
    report = {"model": "flow-class", "kind": "flow", "samples": 20, "seed": 0, "guidance": 5.0, "quick": True,
              "course": {"sampler": "euler", "steps": 300}, "machine": "test", "when": "2026-11-29T00:00:00Z",
              "points": [{"sampler": s, "steps": n, "nfe": nfe, "seconds": 1.0, "fd": fd, "fd_floor": 1.0,
                          "fd_dims": 32, "accuracy": 1.0}
                         for s, n, nfe, fd in (("euler", 300, 300, 2.0), ("euler", 5, 5, 3.0),
                                               ("rk4", 3, 12, 2.1))]}
    pb.save_fewer_steps("flow-class", report)
    at.selectbox(key="fs_model").set_value("flow-class").run()
    assert not at.exception, [e.value for e in at.exception]
    assert image_captions(at)[0].startswith("Euler (the course): 2 steps · 2 network evaluations")
    assert any("RK4: 2 steps · 8 network evaluations" in c for c in image_captions(at))
    lesson = 2 if pb.time_grid_report() is not None else 0  # why Heun and RK4 fail: FD and accuracy by grid
    assert len(at.get("plotly_chart")) == 2 + lesson  # distance and accuracy against NFE
    if any(r.key == "fs_which" for r in at.radio):  # the shipped curves too: pick this machine's
        at.radio(key="fs_which").set_value("this machine").run()
    assert "RK4, 3 steps, 12 NFE" in texts(at)  # the fewest NFE within 10 % of the course's distance
    at.radio(key="fs_grid").set_value("crowded").run()  # the same solvers, steps near t = 1
    assert not at.exception, [e.value for e in at.exception]
    assert any(c.startswith("Heun: 2 steps (time grid crowded near t = 1) · 4 network evaluations")
               for c in image_captions(at))
    at.selectbox(key="fs_model").set_value("flow-class-reflow")
    at.select_slider(key="fs_steps").set_value(1)
    at.radio(key="fs_grid").set_value("uniform").run()
    assert not at.exception, [e.value for e in at.exception]
    assert image_captions(at)[0].startswith("Euler (the course): 1 step · 1 network evaluation ·")


def test_b2_your_run_beside_the_shipped_model(env, tmp_path):
    """A finished flow-class run of the Training lab opens on the Flow matching page next to the
    shipped model, both drawn from the same noise and read by the classifier."""
    at = app("b2_flow.py")
    at.run()
    assert "Train flow-class in the **Training lab**" in texts(at)
    args = jobs.train_args("flow-class", 1, train_count=256, num_hiddens=4, threads=1, recipe="class")
    job = jobs.start("flow-class", args, "my-run")
    assert jobs.wait(job.run_id, timeout=180).status == "finished"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="b2_your_run").value == "my-run"
    captions = image_captions(at)
    assert any(c.startswith("flow-class (shipped): the classifier reads") for c in captions)
    assert any(c.startswith("my-run (Training lab run): the classifier reads") for c in captions)
    # ... and on the Sampling page ("your run"), under the DDPM's digits
    sampling = app("a3_sampling.py")
    sampling.run()
    assert not sampling.exception, [e.value for e in sampling.exception]
    assert sampling.selectbox(key="a3_your_run").value == "my-run"
    mine = "my-run (Training lab run): the classifier reads"
    assert any(c.startswith(mine) for c in image_captions(sampling))
