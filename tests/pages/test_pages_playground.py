"""The 2D playground page under AppTest (on its own, no sidebar), and what it computes and draws
without Streamlit (``dashboard.playground``): drawn points, the animation's HTML, the exports.

Training runs for real at 250 steps per objective (a few seconds on one thread).
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard import playground as pg
from engine.toy2d.density import uniform_log_density

PAGE = Path(__file__).resolve().parents[2] / "pages" / "b4_playground.py"
FAST = 250


def app(**state) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.session_state["b4_steps"] = FAST
    for k, v in state.items():
        at.session_state[k] = v
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def iframes(at: AppTest) -> list[str]:
    """The HTML of the page's st.iframe blocks."""
    return [el.proto.srcdoc for el in at.get("iframe")]


def table(at: AppTest):
    return at.dataframe[0].value.set_index("objective")


@pytest.fixture(scope="module")
def trained_moons():
    """The page after Train on two moons, all four objectives and the class model for CFG."""
    at = app()
    at.run()
    at.button(key="b4_train").click()
    at.run()
    return at


# ----------------------------------------------------------------------------- the page


def test_page_before_training_shows_the_data_and_waits():
    at = app()
    at.run()
    ok(at)
    assert at.title[0].value == "2D playground"
    assert any("Press **Train**" in i.value for i in at.info)
    assert any("two moons: 2000 points" in c.value for c in at.caption)
    assert not iframes(at) and not at.dataframe  # nothing sampled before training


def test_train_then_watch_compare_guide_and_export(trained_moons):
    at = trained_moons
    ok(at)
    assert any(c.value.startswith("Trained on two moons") for c in at.caption)
    rows = table(at)
    assert list(rows.index) == [pg.label(o) for o in ("fm", "reflow", "ot-fm", "ddpm")]
    assert rows.loc[pg.label("reflow"), "straightness"] < rows.loc[pg.label("fm"), "straightness"]
    assert rows.loc[pg.label("ddpm"), "straightness"] > 2  # the course's loop adds noise: it wanders
    assert (rows["MMD"] < 1.0).all() and (rows["NFE"] == [50, 50, 50, 33]).all()
    html = iframes(at)
    assert len(html) == 1 and "window.__frameTimes" in html[0]
    data = json.loads(re.search(r"const D = (\{.*?\});\n", html[0]).group(1).replace("<\\/", "</"))
    assert [p["k"] for p in data["panels"]] == [51, 51, 51, 34] and data["n"] == 2000
    assert [h.value for h in at.header] == ["1 · The data", "2 · From noise to data", "3 · Fewer steps",
                                            "4 · Classifier-free guidance in 2D",
                                            "5 · The density it learned", "6 · Export"]
    assert not any("CFG needs" in i.value for i in at.info)  # the CFG densities are shown
    metrics = {m.label: m.value for m in at.metric}
    held = float(metrics["Mean log-density, held-out data"].split()[0])
    uniform = float(metrics["Mean log-density, uniform points"].split()[0])
    assert held > uniform_log_density() > uniform  # the data beats a uniform density, uniform points lose
    assert 0.9 < float(metrics["Mass inside the box"]) <= 1.01
    keys = {el.proto.id for el in at.get("download_button")}
    assert len(keys) >= 2  # GIF and PNG (and MP4 where imageio-ffmpeg is installed)


def test_a_rerun_reuses_the_trained_models(trained_moons):
    at = trained_moons
    before = table(at)
    at.select_slider(key="b4_flow_steps").set_value(5)
    at.run()
    ok(at)
    after = table(at)
    assert (after["NFE"] == [5, 5, 5, 33]).all()
    assert after.loc[pg.label("ddpm"), "MMD"] == before.loc[pg.label("ddpm"), "MMD"]  # same model, same noise
    assert any(c.value.startswith("Trained on two moons") for c in at.caption)


def test_another_point_set_says_the_models_are_stale(trained_moons):
    at = trained_moons
    at.segmented_control(key="b4_source").set_value("spirals")
    at.run()
    ok(at)
    assert any("trained on another point set" in w.value for w in at.warning)
    assert at.dataframe  # the old results stay until Train


def test_unlabelled_set_has_no_cfg():
    at = app(b4_source="checkerboard", b4_objectives=["fm"])
    at.run()
    assert at.toggle(key="b4_conditional").disabled
    at.button(key="b4_train").click()
    at.run()
    ok(at)
    assert list(table(at).index) == [pg.label("fm")]
    assert any("CFG needs the class-conditioned flow" in i.value for i in at.info)


def test_reflow_alone_trains_its_flow_first():
    at = app(b4_objectives=["reflow"], b4_conditional=False)
    at.run()
    at.button(key="b4_train").click()
    at.run()
    ok(at)
    assert list(table(at).index) == [pg.label("fm"), pg.label("reflow")]


@pytest.mark.parametrize("source, message", [("draw", "nothing is drawn yet"), ("upload", "CSV file")])
def test_draw_and_upload_wait_for_points(source, message):
    at = app(b4_source=source)
    at.run()
    ok(at)
    assert any(message in i.value for i in at.info), [i.value for i in at.info]
    assert at.button(key="b4_train").disabled


# ----------------------------------------------------------------------------- without Streamlit


def canvas(strokes) -> np.ndarray:
    """A transparent 360 px canvas with opaque strokes: (colour, x0, x1, y0, y1) rectangles."""
    rgba = np.zeros((360, 360, 4), np.uint8)
    for color, x0, x1, y0, y1 in strokes:
        rgba[y0:y1, x0:x1, :3] = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
        rgba[y0:y1, x0:x1, 3] = 255
    return rgba


def test_drawn_points_and_their_classes():
    blue, red = pg.PEN_COLORS[0], pg.PEN_COLORS[1]
    cloud = pg.points_from_canvas(canvas([(blue, 20, 120, 20, 40), (red, 240, 340, 300, 330)]))
    assert cloud.num_classes == 2 and cloud.points.shape == (4000, 2)  # 5000 painted pixels, capped
    assert abs((cloud.labels == 0).float().mean().item() - 0.4) < 0.03  # a fair subset: 2000 of 5000
    top_left = cloud.points[cloud.labels == 0]
    assert (top_left[:, 0] < -1).all() and (top_left[:, 1] > 3).all()  # y points up, x to the right
    assert (cloud.points[cloud.labels == 1][:, 1] < -2.5).all()
    one = pg.points_from_canvas(canvas([(blue, 20, 300, 20, 300)]), max_points=500)
    assert one.num_classes == 0 and one.points.shape == (500, 2)


@pytest.mark.parametrize("rgba, message", [
    (None, "nothing is drawn"),
    (canvas([]), "nothing is drawn"),
    (canvas([("#1f77b4", 100, 110, 100, 110)]), "single dot"),
    (np.full((360, 360, 4), 255, np.uint8), "nothing is drawn"),  # the white paper returned as pixels
])
def test_empty_drawings_get_a_clear_message(rgba, message):
    with pytest.raises(pg.PointsError, match=message):
        pg.points_from_canvas(rgba)


def test_animation_html_and_exports(trained_moons):
    trained = trained_moons.session_state["b4_trained"]
    runs = pg.simulate(trained, 300, 0, {"fm": 4, "reflow": 4, "ot-fm": 4}, grid=5)
    colors = pg.hue_index(runs["fm"].states[0])
    assert set(colors.tolist()) <= set(range(pg.HUES)) and len(set(colors.tolist())) > 6
    html = pg.animation_html(runs, colors, size=200, columns=2)
    data = json.loads(re.search(r"const D = (\{.*?\});\n", html).group(1).replace("<\\/", "</"))
    fm = data["panels"][0]
    states = np.frombuffer(base64.b64decode(fm["states"]), "<i2").reshape(fm["k"], 300, 2)
    states = states * (pg.QRANGE / 32767)
    assert np.abs(states - runs["fm"].states).max() < 3e-4  # int16 over twice the box: 2.4e-4
    assert fm["times"][0] == "t = 0.00" and data["panels"][3]["times"][0] == "t = 990"
    assert "</script" not in html.split("<script>")[1].split("</script>")[0]
    frames = pg.Frames(runs, colors, 6, size=120)
    first, last = frames[0], frames[-1]
    assert len(frames) == 6 and first.shape == last.shape and first.shape[2] == 3
    assert not np.array_equal(first, last)
    png = Image.open(io.BytesIO(pg.frames_png(runs, colors, size=100)))
    assert png.size[1] > 5 * 100
    gif = Image.open(io.BytesIO(__import__("dashboard.images", fromlist=["gif"]).gif(frames, 1)))
    assert gif.n_frames == 6
    if pg.has_mp4():
        assert pg.mp4(frames)[4:8] == b"ftyp"
