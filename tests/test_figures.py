"""Figure builders (dashboard/figures.py) are pure: numpy in, PNG/GIF/Plotly/HTML out."""

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from dashboard import figures
from engine.schedule import Schedule


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_to_uint8_layouts():
    a = np.full((1, 5, 7), 0.5, dtype=np.float32)
    assert figures.to_uint8(a).shape == (5, 7)
    assert figures.to_uint8(np.zeros((3, 5, 7))).shape == (5, 7, 3)
    assert figures.to_uint8(np.zeros((5, 7, 3))).shape == (5, 7, 3)
    assert figures.to_uint8(np.array([[np.nan, 2.0, -1.0]])).tolist() == [[0, 255, 0]]


def test_upscale_is_nearest_neighbour():
    a = np.array([[0.0, 1.0]])
    up = figures.upscale(a, 3)
    assert up.shape == (3, 6)
    assert set(np.unique(up)) == {0, 255}
    assert (up[:, :3] == 0).all() and (up[:, 3:] == 255).all()


def test_png_roundtrip_lossless_and_scaled():
    rng = np.random.default_rng(0)
    a = rng.random((28, 28)).astype(np.float32)
    im = decode(figures.png(a, scale=4))
    assert im.format == "PNG" and im.size == (112, 112)
    back = np.asarray(im)[::4, ::4]
    assert (back == figures.to_uint8(a)).all()


def test_grid_layout_and_padding():
    tiles = [np.full((1, 4, 4), v, dtype=np.float32) for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    g = figures.grid(tiles, ncols=3, scale=2, pad=1)
    assert g.shape == (2 * 8 + 1, 3 * 8 + 2)
    assert g[0, 0] == 0 and g[0, 9] == figures.to_uint8(0.25) and g[9, 0] == figures.to_uint8(0.75)
    assert g[8, 0] == 255  # padding row
    with pytest.raises(ValueError):
        figures.grid([])
    with pytest.raises(ValueError):
        figures.grid([np.zeros((4, 4)), np.zeros((5, 5))])


def test_grid_mixes_gray_and_rgb():
    g = figures.grid([np.zeros((4, 4)), np.zeros((3, 4, 4))], scale=1, pad=0)
    assert g.shape == (4, 8, 3)


def test_labeled_row_adds_a_text_band():
    row = figures.labeled_row([np.zeros((1, 8, 8))] * 3, ["a", "b", "c"], scale=2, pad=2)
    assert row.shape == (16 + 16, 3 * 16 + 4, 3)
    assert (row[16:] < 255).any()  # some text pixels


def test_gif_animation():
    frames = [np.full((8, 8), v) for v in np.linspace(0, 1, 5)]
    im = decode(figures.gif(frames, scale=2))
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
    img = figures.strokes_image([(4, 4, 20, 20)], width=3, size=28)
    assert img.shape == (28, 28) and img.max() > 0.9 and img[0, 27] == 0
    assert img[12, 12] > 0.9


def test_normalize_and_to_unit():
    assert figures.normalize(np.array([2.0, 4.0])).tolist() == [0.0, 1.0]
    assert figures.normalize(np.ones(3)).tolist() == [0.0, 0.0, 0.0]
    assert figures.to_unit(np.array([-1.0, 0.0, 3.0])).tolist() == [0.0, 0.5, 1.0]


def test_figures_module_has_no_streamlit():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(figures.__file__).read_text())
    names = {
        a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names
    } | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(str(n).startswith("streamlit") for n in names)


def test_canvas_drawing_is_mnist_like_and_blank_is_none():
    rgba = np.zeros((280, 280, 4), np.uint8)
    assert figures.canvas_drawing(rgba) is None  # nothing drawn
    assert figures.canvas_drawing(None) is None and figures.canvas_drawing(np.zeros((5, 5))) is None
    rgba[100:180, 130:150] = 255  # a white vertical bar, opaque
    img = figures.canvas_drawing(rgba, 28)
    assert img.shape == (28, 28) and img.dtype == np.float32
    assert img[10:18, 13:15].min() == 1.0 and img[:, :12].max() == 0.0  # where it was drawn, only
    rgba[..., 3] = 0  # the same strokes fully transparent: nothing visible
    assert figures.canvas_drawing(rgba) is None


def test_canvas_mask_marks_the_painted_pixels():
    rgba = np.zeros((280, 280, 4), np.uint8)
    assert figures.canvas_mask(rgba, 28, 28) is None
    rgba[200:240, :, :] = (255, 64, 64, 178)  # a translucent red band over rows 20-23
    mask = figures.canvas_mask(rgba, 28, 28)
    assert mask.shape == (28, 28) and set(np.unique(mask)) == {0.0, 1.0}
    assert mask[20:24].all() and not mask[:20].any() and not mask[24:].any()
    assert figures.canvas_mask(rgba, 64, 64)[46:54].all()  # another image size (DeepFloyd's 64)


def test_enlarged_background_is_nearest_neighbour():
    img = np.zeros((1, 2, 2), np.float32)
    img[0, 0, 0] = 1.0
    big = np.asarray(figures.enlarged(img, 20))
    assert big.shape == (20, 20) and big[:10, :10].min() == 255 and big[10:, :].max() == 0
