"""Part A pages under AppTest: each runs on its own (no entrypoint, no sidebar), without an
exception, and its main widgets do what they say. Small strides and few digits keep it quick.

Models: conftest's ``page_models``: the shipped ``cache/models/<name>`` where trained, else a tiny
one trained here (poor pictures, right shapes)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.parta import VIEWS
from tests.support.helpers import image_ids, ok, page

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"
PART_A = [
    "home.py",
    "a1_forward.py",
    "a2_denoising.py",
    "a3_sampling.py",
    "a4_image_to_image.py",
    "a5_illusions.py",
]


@pytest.fixture(scope="module")
def models_dir(page_models):
    root = page_models
    old = os.environ.get("DIFFLAB_MODELS_DIR")
    os.environ["DIFFLAB_MODELS_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("DIFFLAB_MODELS_DIR", None)
    else:
        os.environ["DIFFLAB_MODELS_DIR"] = old


def test_pages_never_import_the_entrypoint():
    for name in PART_A:
        tree = ast.parse((PAGES / name).read_text())
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "dashboard.app" not in mods, name
        assert not any("manual_seed" in line for line in (PAGES / name).read_text().splitlines()), name


def test_pages_talk_to_the_dashboard_only():
    """pages -> dashboard -> engine: a page never imports the engine (or torch) itself."""
    for page_file in sorted(PAGES.glob("*.py")):
        tree = ast.parse(page_file.read_text())
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m.split(".")[0] for m in mods if m} & {"engine", "torch"}, (page_file.name, mods)


def test_app_entrypoint_with_sidebar(models_dir):
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    ok(at)
    assert at.sidebar.number_input(key="seed").value == 0
    assert at.sidebar.toggle(key="presenter").value is False
    assert any("Diffusion Lab" in t.value for t in at.title)


def test_home(models_dir):
    at = page("home.py")
    ok(at)
    heads = [h.value for h in at.subheader]
    assert {"Deliverables (Part A)", "Deliverables (Part B)", "Models"} <= set(heads)
    body = "\n".join(m.value for m in at.markdown)  # page run alone: links become plain lines
    assert "B2.6b Without the LR scheduler" in body and "B1.2.3 Denoising pure noise" in body
    table = at.dataframe[0].value
    assert "ddpm-class" in set(table["model"])
    # the "how good is this model" column: a line from quality.json, or that it is not measured
    quality = dict(zip(table["model"], table["quality"], strict=True))
    line = quality["ddpm-class"]
    assert line == "not measured yet" or "classified as the asked digit" in line


def test_forward_t_slider_changes_the_image(models_dir):
    at = page("a1_forward.py")
    ok(at)
    before = image_ids(at)
    assert 'value="500"' in at.get("iframe")[0].proto.srcdoc
    at.slider(key="a1_t").set_value(250).run()
    ok(at)
    after = image_ids(at)
    assert after[0] != before[0]  # x_t at t
    assert after[1] == before[1]  # the t = 250/500/750 strip does not depend on t
    assert 'value="250"' in at.get("iframe")[0].proto.srcdoc
    assert len(at.get("plotly_chart")) == 1
    at.session_state["a1_source"] = "Sample photo"
    at.run()
    ok(at)


def test_forward_seed_changes_the_noise(models_dir):
    a = image_ids(page("a1_forward.py", seed=1))
    b = image_ids(page("a1_forward.py", seed=2))
    assert a[0] != b[0]


def test_denoising_compared(models_dir):
    at = page("a2_denoising.py", a2_stride=100, a2_curve=False)
    ok(at)
    captions = " ".join(c for im in at.image for c in im.proto.imgs[0].caption.split("\n") if c) + " ".join(
        str(im.proto) for im in at.image
    )
    assert captions.count("PSNR") >= 4 and "SSIM" in captions
    before = image_ids(at)
    at.radio(key="a2_t").set_value(250).run()
    ok(at)
    assert image_ids(at)[1] != before[1]  # the noisy image
    at.toggle(key="a2_curve").set_value(True).run()
    ok(at)
    fig = at.get("plotly_chart")[0]
    assert "iterative" in fig.proto.spec


def test_sampling_gamma_changes_samples(models_dir):
    at = page("a3_sampling.py", a3_classes=[1, 7], a3_stride=100, a3_gamma=7.0, a3_sweep_count=1)
    ok(at)
    before = image_ids(at)
    at.slider(key="a3_gamma").set_value(0.0).run()
    ok(at)
    assert image_ids(at)[0] != before[0]
    # the scrubber picks a step of the same trajectory
    last = image_ids(at)
    at.slider(key="a3_step").set_value(0).run()
    ok(at)
    now = image_ids(at)
    assert now[0] == last[0] and now[1] != last[1]
    # the same classes from the one-step model: one network evaluation
    caption = next(img.caption for el in at.get("image") for img in el.proto.imgs
                   if img.caption.startswith("flow-class-reflow: 1 · 7"))
    assert "1 network evaluation," in caption


def test_image_to_image_sweep_has_six_results(models_dir):
    at = page("a4_image_to_image.py", a4_stride=40)
    ok(at)
    assert any(c.value.startswith("6 edits, i_start = 1, 3, 5, 7, 10, 20") for c in at.caption)
    at.session_state["a4_mode"] = "Inpainting"
    at.run()
    ok(at)
    at.session_state["a4_mask_kind"] = "Paint it"  # AppTest cannot paint: the page asks for it
    at.run()
    ok(at)
    assert any("Nothing painted yet" in i.value for i in at.info)
    at.session_state["a4_mask_kind"] = "Rectangle"
    at.session_state["a4_mode"] = "Change the class"
    at.session_state["a4_source"] = "Drawing"
    at.run()
    ok(at)
    assert any("toward class 8" in c.value for c in at.caption)
    assert any("Nothing drawn yet" in c.value for c in at.caption)  # the default 7 until one draws


def test_illusions(models_dir):
    at = page("a5_illusions.py", a5_stride=100, a5_count=1)
    ok(at)
    before = image_ids(at)
    at.radio(key="a5_show").set_value(1).run()  # show the images under the second view
    ok(at)
    assert image_ids(at)[0] != before[0]
    assert len(at.get("plotly_chart")) == 1  # the view turning, playable in the page
    assert any("GIF" in b.label for b in at.get("download_button"))
    at.session_state["a5_kind"] = "Hybrid image"
    at.run()
    ok(at)
    near = image_ids(at)
    at.slider(key="a5_distance").set_value(4.0).run()
    ok(at)
    assert image_ids(at)[0] != near[0]
    assert len(at.get("plotly_chart")) == 1


def test_illusions_three_and_four_views(models_dir):
    at = page("a5_illusions.py", a5_stride=100, a5_count=1, a5_views=3)
    ok(at)
    assert [s.value for s in at.selectbox if s.key in ("a5_view", "a5_v3")] == ["rot180", "rot90"]
    assert at.selectbox(key="a5_animate").options == ["turn 180°", "turn 90° left"]
    at.selectbox(key="a5_v3").set_value("jigsaw").run()
    ok(at)
    assert at.radio(key="a5_show").options[2] == "jigsaw: shuffle and turn 4×4 pieces → 1"
    at.session_state["a5_views"] = 4
    at.run()
    ok(at)
    assert len([s for s in at.selectbox if s.key.startswith("a5_v")]) == 3  # views 2, 3 and 4
    assert at.radio(key="a5_show").options == [
        "as is → 6",
        "turn 180° → 9",
        "jigsaw: shuffle and turn 4×4 pieces → 1",  # the user's choice for view 3 stays
        "turn 90° right → 7",
    ]


@pytest.mark.parametrize("name, prefix", [("a4_image_to_image.py", "a4"), ("a5_illusions.py", "a5")])
def test_cfg_scale_defaults_to_the_courses_seven(models_dir, name, prefix):
    """A1.6 on (SDEdit, inpainting, edits, anagrams, hybrids) the course samples with γ = 7."""
    at = page(name, **{f"{prefix}_stride": 100, f"{prefix}_count": 1})
    ok(at)
    assert at.slider(key=f"{prefix}_gamma").value == 7.0


def test_illusions_offer_every_orthogonal_view(models_dir):
    at = page("a5_illusions.py", a5_stride=100, a5_count=1)
    ok(at)
    offered = at.selectbox(key="a5_view").options
    names = ["flip", "rot90", "rot180", "rot270", "negate", "skew", "inner_circle", "patches", "jigsaw"]
    assert offered == [VIEWS[n].label for n in names], offered


@pytest.mark.parametrize(
    "name", ["a2_denoising.py", "a3_sampling.py", "a4_image_to_image.py", "a5_illusions.py"]
)
def test_missing_model_shows_the_fix(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(tmp_path))
    at = AppTest.from_file(str(PAGES / name), default_timeout=60).run()
    assert not at.exception
    assert any("python -m engine train ddpm-class" in e.value for e in at.error)


def test_missing_model_home_and_forward_still_work(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(tmp_path))
    for name in ("home.py", "a1_forward.py"):
        ok(AppTest.from_file(str(PAGES / name), default_timeout=60).run())


def test_app_keeps_page_settings_across_navigation(models_dir):
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()
    at.switch_page("../pages/a5_illusions.py")
    at.session_state["a5_stride"] = 100
    at.session_state["a5_count"] = 1
    at.run()
    ok(at)
    at.select_slider(key="a5_stride").set_value(50).run()
    at.switch_page("../pages/home.py").run()
    ok(at)
    at.switch_page("../pages/a5_illusions.py").run()
    ok(at)
    assert at.select_slider(key="a5_stride").value == 50
    assert at.sidebar.number_input(key="seed").value == 0
