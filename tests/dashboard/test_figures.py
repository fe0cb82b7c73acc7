"""Pictures and figure builders (dashboard/images.py, figures.py, curves.py) are pure: numpy in,
PNG/GIF/Plotly/HTML out."""

import base64
import io
import json
import re
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from dashboard import curves, figures, images, pack, parta, previews
from dashboard import partb as pb
from engine.schedule import Schedule
from engine.trajectory import frame_indices


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_to_uint8_layouts():
    a = np.full((1, 5, 7), 0.5, dtype=np.float32)
    assert images.to_uint8(a).shape == (5, 7)
    assert images.to_uint8(np.zeros((3, 5, 7))).shape == (5, 7, 3)
    assert images.to_uint8(np.zeros((5, 7, 3))).shape == (5, 7, 3)
    assert images.to_uint8(np.array([[np.nan, 2.0, -1.0]])).tolist() == [[0, 255, 0]]


def test_upscale_is_nearest_neighbour():
    a = np.array([[0.0, 1.0]])
    up = images.upscale(a, 3)
    assert up.shape == (3, 6)
    assert set(np.unique(up)) == {0, 255}
    assert (up[:, :3] == 0).all() and (up[:, 3:] == 255).all()


def test_png_roundtrip_lossless_and_scaled():
    rng = np.random.default_rng(0)
    a = rng.random((28, 28)).astype(np.float32)
    im = decode(images.png(a, scale=4))
    assert im.format == "PNG" and im.size == (112, 112)
    back = np.asarray(im)[::4, ::4]
    assert (back == images.to_uint8(a)).all()


def test_grid_layout_and_padding():
    tiles = [np.full((1, 4, 4), v, dtype=np.float32) for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    g = images.grid(tiles, ncols=3, scale=2, pad=1)
    assert g.shape == (2 * 8 + 1, 3 * 8 + 2)
    assert g[0, 0] == 0 and g[0, 9] == images.to_uint8(0.25) and g[9, 0] == images.to_uint8(0.75)
    assert g[8, 0] == 255  # padding row
    with pytest.raises(ValueError):
        images.grid([])
    with pytest.raises(ValueError):
        images.grid([np.zeros((4, 4)), np.zeros((5, 5))])


def test_grid_mixes_gray_and_rgb():
    g = images.grid([np.zeros((4, 4)), np.zeros((3, 4, 4))], scale=1, pad=0)
    assert g.shape == (4, 8, 3)


def test_labeled_row_adds_a_text_band():
    row = images.labeled_row([np.zeros((1, 8, 8))] * 3, ["a", "b", "c"], scale=2, pad=2)
    assert row.shape == (16 + 16, 3 * 16 + 4, 3)
    assert (row[16:] < 255).any()  # some text pixels


def test_gif_animation():
    frames = [np.full((8, 8), v) for v in np.linspace(0, 1, 5)]
    im = decode(images.gif(frames, scale=2))
    assert im.format == "GIF" and im.n_frames == 5 and im.size == (16, 16)


def test_schedule_figure_marks_t():
    abar = Schedule.cosine().alphas_cumprod.numpy()
    fig = figures.schedule_figure(abar, t=250)
    markers = [tr for tr in fig.data if tr.mode == "markers"]
    assert [m.x[0] for m in markers] == [250, 250]
    assert markers[0].y[0] == pytest.approx(abar[250])
    assert markers[1].y[0] == pytest.approx(abar[250] / (1 - abar[250]))
    assert fig.layout.yaxis2.type == "log"
    assert len(fig.data[0].x) == 1000


def test_metric_vs_t_figure():
    fig = figures.metric_vs_t_figure([1, 2, 3], {"a": [1, 2, 3], "b": [3, 2, 1]}, mark_t=2)
    assert [tr.name for tr in fig.data] == ["a", "b"]
    assert fig.data[0].line.color != fig.data[1].line.color


def test_forward_scrubber_html_carries_exact_data():
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-1, 1, (1, 6, 5)).astype(np.float32)
    eps = rng.standard_normal((1, 6, 5)).astype(np.float32)
    abar = Schedule.cosine().alphas_cumprod.numpy()
    html = figures.forward_scrubber_html(x0, eps, abar, t=123, scale=3)
    assert 'type="range"' in html and 'max="999"' in html and 'value="123"' in html
    data = json.loads(re.search(r"const D = (\{.*?\});\n", html).group(1))
    assert (data["c"], data["h"], data["w"], data["t"]) == (1, 6, 5, 123)
    assert len(data["abar"]) == 1000
    back = np.frombuffer(base64.b64decode(data["x0"]), dtype="<f4").reshape(1, 6, 5)
    assert np.array_equal(back, x0)
    with pytest.raises(ValueError):
        figures.forward_scrubber_html(x0, eps[:, :3], abar)


def test_fft_pair_figure_and_strokes():
    fig = figures.fft_pair_figure({"low": np.zeros((8, 8)), "high": np.ones((8, 8))})
    assert len(fig.data) == 2
    img = images.strokes_image([(4, 4, 20, 20)], width=3, size=28)
    assert img.shape == (28, 28) and img.max() > 0.9 and img[0, 27] == 0
    assert img[12, 12] > 0.9


def test_normalize():
    assert images.normalize(np.array([2.0, 4.0])).tolist() == [0.0, 1.0]
    assert images.normalize(np.ones(3)).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("module", [images, figures, curves, parta, pack, pb, previews],
                         ids=lambda m: m.__name__)
def test_builder_and_compute_modules_have_no_streamlit(module):
    import ast
    from pathlib import Path

    tree = ast.parse(Path(module.__file__).read_text())
    names = {
        a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names
    } | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(str(n).startswith("streamlit") for n in names)


def test_canvas_drawing_is_mnist_like_and_blank_is_none():
    rgba = np.zeros((280, 280, 4), np.uint8)
    assert images.canvas_drawing(rgba) is None  # nothing drawn
    assert images.canvas_drawing(None) is None and images.canvas_drawing(np.zeros((5, 5))) is None
    rgba[100:180, 130:150] = 255  # a white vertical bar, opaque
    img = images.canvas_drawing(rgba, 28)
    assert img.shape == (28, 28) and img.dtype == np.float32
    assert img[10:18, 13:15].min() == 1.0 and img[:, :12].max() == 0.0  # where it was drawn, only
    rgba[..., 3] = 0  # the same strokes fully transparent: nothing visible
    assert images.canvas_drawing(rgba) is None


def test_canvas_mask_marks_the_painted_pixels():
    rgba = np.zeros((280, 280, 4), np.uint8)
    assert images.canvas_mask(rgba, 28, 28) is None
    rgba[200:240, :, :] = (255, 64, 64, 178)  # a translucent red band over rows 20-23
    mask = images.canvas_mask(rgba, 28, 28)
    assert mask.shape == (28, 28) and set(np.unique(mask)) == {0.0, 1.0}
    assert mask[20:24].all() and not mask[:20].any() and not mask[24:].any()
    assert images.canvas_mask(rgba, 64, 64)[46:54].all()  # another image size (DeepFloyd's 64)


def test_enlarged_background_is_nearest_neighbour():
    img = np.zeros((1, 2, 2), np.float32)
    img[0, 0, 0] = 1.0
    big = np.asarray(images.enlarged(img, 20))
    assert big.shape == (20, 20) and big[:10, :10].min() == 255 and big[10:, :].max() == 0


# ----------------------------------------------------------------------------- shared by Part A and Part B


def test_tile_layout_and_padding():
    imgs = np.stack([np.full((3, 2), v, np.float32) for v in (0.0, 0.25, 0.5, 0.75, 1.0)])
    out = images.grid(list(imgs), ncols=2, pad=1)
    assert out.shape == (3 * 4 - 1, 2 * 3 - 1) and out.dtype == np.uint8
    assert out[0, 0] == 0 and out[0, 3] == 64 and out[4, 0] == 128 and out[8, 0] == 255
    assert out[0, 2] == 255  # white padding between columns
    assert out[8, 3] == 255  # the empty last cell is padding colour
    grid = images.table(np.zeros((2, 3, 4, 4), np.uint8), pad=2)  # (R, C, H, W): rows and columns
    assert grid.shape == (2 * 6 - 2, 3 * 6 - 2) and grid.dtype == np.uint8 and grid[4, 0] == 255


def test_digit_columns_puts_each_digit_in_a_column():
    imgs = np.repeat(np.arange(10), 4)[:, None, None] * np.ones((1, 2, 2))
    cols = images.digit_columns(imgs, 4)
    assert cols.shape == (4, 10, 2, 2)
    assert all((cols[:, d] == d).all() for d in range(10))


def test_smooth():
    y = np.array([1.0, 1.0, 1.0])
    assert np.allclose(curves.smooth(y, 0.9), 1.0)  # debiased: a constant stays constant
    z = np.array([3.0, 1.0, 2.0])
    assert np.allclose(curves.smooth(z, 0.0), z)
    s = curves.smooth(np.array([0.0, 10.0]), 0.5)
    assert s[0] == 0.0 and s[1] == pytest.approx(0.5 * 10 / 0.75)


def test_frame_indices_and_alignment():
    idx = frame_indices(301, 48)
    assert idx[0] == 0 and idx[-1] == 300 and len(idx) <= 48 and (np.diff(idx) > 0).all()
    assert list(frame_indices(5, 48)) == [0, 1, 2, 3, 4]
    a, b = pb.align_frames(34, 48)
    assert len(a) == len(b) == 48 and a[0] == b[0] == 0 and a[-1] == 33 and b[-1] == 47


def test_quantize_and_png_upscale():
    q = images.to_uint8(np.array([[-1.0, 0.0], [0.5, 2.0]]))
    assert q.dtype == np.uint8 and q.tolist() == [[0, 0], [128, 255]]
    assert images.to_uint8(np.zeros((3, 1, 4, 4))).shape == (3, 1, 4, 4)  # no axis shuffling
    im = Image.open(io.BytesIO(images.png(np.eye(3, dtype=np.float32), 4)))
    assert im.size == (12, 12)
    a = np.asarray(im.convert("L"))
    assert set(np.unique(a)) == {0, 255}  # nearest neighbour: no blended pixels


def test_gif_with_captions():
    frames = [np.full((6, 8), v, np.uint8) for v in (0, 128, 255)]
    data = images.gif(frames, scale=2, captions=["a", "b", "c"])
    im = Image.open(io.BytesIO(data))
    assert im.format == "GIF" and im.n_frames == 3 and im.size == (16, 12 + 16)


def test_animation_figure_frames_and_controls():
    frames = np.zeros((5, 4, 6), np.uint8)
    panels = [figures.Panel("x_t", frames, [f"t={k}" for k in range(5)]), figures.Panel("x1_hat", frames)]
    line = (np.arange(5.0), np.ones(5), "|u|")
    fig = figures.animation_figure(panels, [str(k) for k in range(5)], line=line)
    assert len(fig.frames) == 5
    assert [t.type for t in fig.data] == ["image", "image", "scatter", "scatter"]
    assert fig.frames[3].traces == (0, 1, 3)  # the two images and the moving marker
    assert fig.frames[3].layout.annotations[0].text == "t=3"
    assert len(fig.layout.sliders[0].steps) == 5
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert any("Play" in x for x in labels) and any("Pause" in x for x in labels)
    assert fig.data[0].source.startswith("data:image/png;base64,")


def test_line_figures():
    c = curves.Curve("run", np.arange(10.0), np.arange(10) / 5, np.linspace(1, 0.1, 10), np.full(10, 1e-3))
    fig = curves.loss_figure([c, replace(c, label="other")])
    assert fig.layout.yaxis.type == "log" and len(fig.data) == 4  # raw + smoothed each
    assert curves.loss_figure([c], x="step").layout.xaxis.title.text == "step"
    assert curves.lr_figure([c]).layout.yaxis.type == "log"
    p = curves.psnr_figure(np.array([0.0, 0.5, 1.0]), np.array([20.0, 18, 12]), np.array([40.0, 12, 6]))
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
    fig = curves.lr_sweep_figure(sweep)
    assert [t.name for t in fig.data][1:] == ["constant 0.01", "constant 0.001 (shipped)"]
    assert fig.data[2].line.width > fig.data[1].line.width and len(fig.data) == 3
    assert fig.data[0].name.startswith("ExponentialLR")  # underneath the constant runs
    assert fig.layout.yaxis.type == "log"
    caption = curves.lr_sweep_caption(sweep)
    assert "Shipped: constant 0.001" in caption and "0.01: 50 %" in caption


def test_read_curve(tmp_path):
    log = tmp_path / "log.jsonl"
    assert pb.read_curve(log, "x") is None
    log.write_text('{"step": 0, "epoch": 0.5, "loss": 1.0, "lr": 0.01}\n'
                   '{"step": 1, "epoch": 1.0, "loss": 0.5, "lr": 0.01}\n{"step": 2, "ep')  # torn line
    c = pb.read_curve(log, "x")
    assert c.step.tolist() == [0, 1] and c.loss.tolist() == [1.0, 0.5]


def test_log_ticks_have_full_labels():
    wide = curves.log_ticks([0.008, 0.3, 5.3])
    assert wide["ticktext"] == ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5"]
    narrow = curves.log_ticks([0.086, 0.2])  # the LR sweep's epoch means: within one decade
    assert "0.1" in narrow["ticktext"] and "0.14" in narrow["ticktext"] and len(narrow["tickvals"]) >= 4
    assert len(curves.log_ticks([0.5, 0.51])["tickvals"]) >= 2  # never a bare axis
    assert curves.log_ticks([np.nan, -1.0, 0.0]) == {}
    c = curves.Curve("run", np.arange(3.0), np.arange(3) / 3, np.array([1.0, 0.1, 0.01]), np.full(3, 1e-3))
    ticks = list(curves.loss_figure([c]).layout.yaxis.ticktext)
    assert ticks == ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]


def test_steps_figure_draws_a_distilled_model_beside_its_teacher():
    point = {"seconds": 0.1, "fd_floor": 2.7, "accuracy": 1.0}
    rows = [("flow-class-reflow", 1, 3.9), ("flow-class-reflow", 2, 3.6), ("flow-class", 1, 17.0),
            ("flow-class", 300, 3.9)]
    report = {"model": "flow-class-reflow", "teacher": "flow-class", "kind": "flow",
              "course": {"sampler": "euler", "steps": 300, "model": "flow-class"},
              "points": [{"model": m, "sampler": "euler", "steps": n, "nfe": n, "fd": fd, **point}
                         for m, n, fd in rows]}
    fig = curves.steps_figure(report, "fd")
    names = [t.name for t in fig.data]
    assert names == ["flow-class-reflow, euler", "flow-class, euler", "the course's setting (flow-class)"]
    assert list(fig.data[0].y) == [3.9, 3.6] and list(fig.data[1].x) == [1, 300]
    assert list(fig.data[2].x) == [300]  # the star is the teacher's 300 steps, not the student's


def test_time_grid_figure_groups_solvers_by_grid():
    rows = [{"solver": s, "steps": n, "nfe": nfe, "grid": g, "fd": fd, "accuracy": acc}
            for (s, n, nfe) in (("heun", 3, 6), ("rk4", 2, 8))
            for g, fd, acc in (("uniform", 36.0, 0.5), ("crowded near 1", 6.0, 0.97))]
    fd = curves.time_grid_figure({"rows": rows}, "fd")
    assert [t.name for t in fd.data] == ["uniform", "crowded near 1"]
    assert list(fd.data[0].x) == ["Heun 3<br>(6 NFE)", "RK4 2<br>(8 NFE)"]
    assert list(fd.data[1].y) == [6.0, 6.0]
    assert fd.layout.yaxis.type == "log"
    acc = curves.time_grid_figure({"rows": rows}, "accuracy")
    assert list(acc.data[1].y) == [97.0, 97.0]  # percent
