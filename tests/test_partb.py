"""Part B pages and their helpers (dashboard/partb.py).

1. Pure figure builders on tiny arrays (tiling, smoothing, frames, GIF, Plotly figures).
2. Each Part B page under AppTest, on its own (no entrypoint, no sidebar): runs without an
   exception with the models present, shows the fix command when they are missing, and its main
   widgets do what they say.

Models: conftest's ``page_models``: the shipped ``cache/models/<name>`` when present, else a tiny
one trained here in-process (D=4, 128 images, 1 epoch: noise for pictures, the right shapes and
files; snapshots of the tiny flow/DDPM models are random arrays: the pages only display them).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard import jobs
from dashboard import partb as pb

ROOT = Path(__file__).resolve().parent.parent
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


# ----------------------------------------------------------------------------- 1. builders


def test_tile_layout_and_padding():
    imgs = np.stack([np.full((3, 2), v, np.float32) for v in (0.0, 0.25, 0.5, 0.75, 1.0)])
    out = pb.tile(imgs, ncols=2, pad=1)
    assert out.shape == (3 * 4 - 1, 2 * 3 - 1)
    assert out[0, 0] == 0.0 and out[0, 3] == 0.25 and out[4, 0] == 0.5 and out[8, 0] == 1.0
    assert out[0, 2] == 1.0  # white padding between columns
    assert out[8, 3] == 1.0  # the empty last cell is padding colour
    grid = pb.tile(np.zeros((2, 3, 4, 4), np.uint8), pad=2)  # (R, C, H, W): rows and columns
    assert grid.shape == (2 * 6 - 2, 3 * 6 - 2) and grid.dtype == np.uint8 and grid[4, 0] == 255


def test_digit_columns_puts_each_digit_in_a_column():
    imgs = np.repeat(np.arange(10), 4)[:, None, None] * np.ones((1, 2, 2))
    cols = pb.digit_columns(imgs, 4)
    assert cols.shape == (4, 10, 2, 2)
    assert all((cols[:, d] == d).all() for d in range(10))


def test_smooth():
    y = np.array([1.0, 1.0, 1.0])
    assert np.allclose(pb.smooth(y, 0.9), 1.0)  # debiased: a constant stays constant
    z = np.array([3.0, 1.0, 2.0])
    assert np.allclose(pb.smooth(z, 0.0), z)
    s = pb.smooth(np.array([0.0, 10.0]), 0.5)
    assert s[0] == 0.0 and s[1] == pytest.approx(0.5 * 10 / 0.75)


def test_frame_indices_and_alignment():
    idx = pb.frame_indices(301, 48)
    assert idx[0] == 0 and idx[-1] == 300 and len(idx) <= 48 and (np.diff(idx) > 0).all()
    assert list(pb.frame_indices(5, 48)) == [0, 1, 2, 3, 4]
    a, b = pb.align_frames(34, 48)
    assert len(a) == len(b) == 48 and a[0] == b[0] == 0 and a[-1] == 33 and b[-1] == 47


def test_quantize_and_png_upscale():
    q = pb.quantize(np.array([[-1.0, 0.0], [0.5, 2.0]]))
    assert q.dtype == np.uint8 and q.tolist() == [[0, 0], [128, 255]]
    assert pb.quantize(np.zeros((3, 1, 4, 4))).shape == (3, 1, 4, 4)  # no axis shuffling
    im = Image.open(io.BytesIO(pb.png(np.eye(3, dtype=np.float32), 4)))
    assert im.size == (12, 12)
    a = np.asarray(im.convert("L"))
    assert set(np.unique(a)) == {0, 255}  # nearest neighbour: no blended pixels


def test_gif_bytes():
    frames = [np.full((6, 8), v, np.uint8) for v in (0, 128, 255)]
    data = pb.gif_bytes(frames, scale=2, captions=["a", "b", "c"])
    im = Image.open(io.BytesIO(data))
    assert im.format == "GIF" and im.n_frames == 3 and im.size == (16, 12 + 16)


def test_animation_figure_frames_and_controls():
    frames = np.zeros((5, 4, 6), np.uint8)
    panels = [pb.Panel("x_t", frames, [f"t={k}" for k in range(5)]), pb.Panel("x1_hat", frames)]
    fig = pb.animation_figure(panels, [str(k) for k in range(5)], line=(np.arange(5.0), np.ones(5), "|u|"))
    assert len(fig.frames) == 5
    assert [t.type for t in fig.data] == ["image", "image", "scatter", "scatter"]
    assert fig.frames[3].traces == (0, 1, 3)  # the two images and the moving marker
    assert fig.frames[3].layout.annotations[0].text == "t=3"
    assert len(fig.layout.sliders[0].steps) == 5
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert any("Play" in x for x in labels) and any("Pause" in x for x in labels)
    assert fig.data[0].source.startswith("data:image/png;base64,")


def test_line_figures():
    c = pb.Curve("run", np.arange(10.0), np.arange(10) / 5, np.linspace(1, 0.1, 10), np.full(10, 1e-3))
    fig = pb.loss_figure([c, replace(c, label="other")])
    assert fig.layout.yaxis.type == "log" and len(fig.data) == 4  # raw + smoothed each
    assert pb.loss_figure([c], x="step").layout.xaxis.title.text == "step"
    assert pb.lr_figure([c]).layout.yaxis.type == "log"
    p = pb.psnr_figure(np.array([0.0, 0.5, 1.0]), np.array([20.0, 18, 12]), np.array([40.0, 12, 6]))
    assert len(p.data) == 2 and p.data[0].name.startswith("denoised")


def test_lr_sweep_file_chart_and_caption(tmp_path):
    path = tmp_path / "lr_sweep.json"
    assert pb.read_lr_sweep(path) is None  # missing: the page leaves the chart out
    path.write_text('{"runs": [{"lr": "x"}]}')
    assert pb.read_lr_sweep(path) is None  # hand-edited into nonsense: same
    path.write_text(json.dumps({
        "runs": [{"lr": 0.01, "epoch_mean_loss": [0.2, 0.1], "accuracy": 0.5},
                 {"lr": 0.001, "epoch_mean_loss": [0.15, 0.09]}],
        "reference": {"epoch_mean_loss": [0.19, 0.08]}, "chosen_lr": 0.001}))
    sweep = pb.read_lr_sweep(path)
    fig = pb.lr_sweep_figure(sweep)
    assert [t.name for t in fig.data][1:] == ["constant 0.01", "constant 0.001 (shipped)"]
    assert fig.data[2].line.width > fig.data[1].line.width and len(fig.data) == 3
    assert fig.data[0].name.startswith("ExponentialLR")  # underneath the constant runs
    assert fig.layout.yaxis.type == "log"
    caption = pb.lr_sweep_caption(sweep)
    assert "Shipped: constant 0.001" in caption and "0.01: 50 %" in caption


def test_read_curve(tmp_path):
    log = tmp_path / "log.jsonl"
    assert pb.read_curve(log, "x") is None
    log.write_text('{"step": 0, "epoch": 0.5, "loss": 1.0, "lr": 0.01}\n'
                   '{"step": 1, "epoch": 1.0, "loss": 0.5, "lr": 0.01}\n{"step": 2, "ep')  # torn line
    c = pb.read_curve(log, "x")
    assert c.step.tolist() == [0, 1] and c.loss.tolist() == [1.0, 0.5]


# ----------------------------------------------------------------------------- 2. pages


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
    at.slider(key="b2_gamma").set_value(0.0)
    at.button(key="FormSubmitter:b2_form-Sample").click().run()
    assert any("γ = 0, 5 steps" in c for c in image_captions(at))
    root = str(env)
    g5 = [v for k, v in pb._FLOW_CACHE.items() if k[:3] == ("flow-class", 5.0, 5) and k[5] == root]
    g0 = [v for k, v in pb._FLOW_CACHE.items() if k[:3] == ("flow-class", 0.0, 5) and k[5] == root]
    assert g5 and g0 and not np.allclose(g5[0].images, g0[0].images)  # gamma changes the samples
    assert g5[0].images.shape == (40, 28, 28) and g5[0].x.shape[1:] == (40, 28, 28)
    assert g5[0].frame_steps[0] == 0 and g5[0].frame_steps[-1] == 5
    at.radio(key="b2_model").set_value("flow-time").run()  # time model: no CFG slider in use
    assert not at.exception
    assert at.slider(key="b2_gamma").disabled


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
    res = pb.ddpm_vs_flow(3, 1, 0, 100, 7.0, 10, 5.0, str(env),
                          (pb.stamp("ddpm-class"), pb.stamp("flow-class")))
    assert res.start_equal and list(res.ddpm_t[:2]) == [990, 890] and res.ddpm_t[-1] == 0
    assert res.flow_t[0] == 0.0 and res.flow_t[-1] == 1.0
    # frame k pairs x_t with the estimate made from it; the last estimate is the result itself
    assert res.ddpm_x0.shape == res.ddpm_x.shape
    assert not np.array_equal(res.ddpm_x0[0], res.ddpm_x[0])
    assert np.array_equal(res.ddpm_x0[-1], res.ddpm_x[-1])


def test_b3_training_lab_start_busy_cancel(env, tmp_path):
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
    assert not at.exception, [e.value for e in at.exception]
    assert any("class-demo" in s.value for s in at.success)
    assert (runs / "class-demo" / "job.json").exists() and not (tmp_path / "Class demo").exists()
    at.text_input(key="b3_name").set_value("another")
    at.button(key="FormSubmitter:b3_start-Start training").click().run()
    assert any("one run at a time" in w.value for w in at.warning)  # second start refused
    assert not (runs / "another").exists()
    log = runs / "class-demo" / "log.jsonl"
    deadline = time.monotonic() + 90
    while not (log.exists() and log.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception
    at.button(key="b3_cancel").click().run()
    job = jobs.wait("class-demo", runs, timeout=60)
    assert job.status == "cancelled"
    at.run()
    assert not at.exception
    assert at.button(key="b3_resume") is not None  # a cancelled run offers Resume
    assert "run: class-demo" in at.multiselect(key="b3_compare").value
    assert len(at.get("plotly_chart")) >= 2  # live loss and the comparison


def test_log_ticks_have_full_labels():
    wide = pb.log_ticks([0.008, 0.3, 5.3])
    assert wide["ticktext"] == ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5"]
    narrow = pb.log_ticks([0.086, 0.2])  # the LR sweep's epoch means: within one decade
    assert "0.1" in narrow["ticktext"] and "0.14" in narrow["ticktext"] and len(narrow["tickvals"]) >= 4
    assert len(pb.log_ticks([0.5, 0.51])["tickvals"]) >= 2  # never a bare axis
    assert pb.log_ticks([np.nan, -1.0, 0.0]) == {}
    c = pb.Curve("run", np.arange(3.0), np.arange(3) / 3, np.array([1.0, 0.1, 0.01]), np.full(3, 1e-3))
    ticks = list(pb.loss_figure([c]).layout.yaxis.ticktext)
    assert ticks == ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]


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
