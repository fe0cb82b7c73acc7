"""The DeepFloyd IF and precomputed-pack backends of the Part A pages, under AppTest.

No real weights here: a tiny random IF-layout stage I (16x16, T5 width 24, built as in
test_deepfloyd.py) is saved in diffusers' layout and chosen through the same session-state keys
the sidebar writes (backend, df_model, df_embeds_path, df_allow_cpu). Its prompt embeddings are
imported from a stand-in prompt_embeds_dict.pth. A pack is made from it with
``engine.precompute.precompute_pack`` (a reduced figure set) and browsed; a corrupted copy is refused.
Failures (no GPU, missing folder, gated model) must show the engine's message and fall back.
"""

from __future__ import annotations

import shutil
import types
import warnings
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from engine.deepfloyd import model as df
from engine.deepfloyd import weights as dfw
from engine.precompute import precompute_pack
from tests.support.helpers import image_ids, ok
from tests.support.helpers import page as run_page
from tests.support.tiny_if import build_tiny_if, write_embeds

pytestmark = [pytest.mark.filterwarnings("ignore::engine.deepfloyd.model.SlowOnCPUWarning"),
              pytest.mark.usefixtures("one_thread_module")]
ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"
PACK_FIGURES = ("samples", "forward", "iterative", "cfg", "sdedit", "anagram", "hybrid", "part0")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny model folder, embeddings file, an embedding store and a packs folder, all in tmp."""
    root = tmp_path_factory.mktemp("df-pages")
    folder = build_tiny_if(root / "tiny-if", with_text_encoder=True)  # T5 for a typed prompt
    embeds = write_embeds(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("DIFFLAB_EMBEDDINGS_DIR", str(root / "embeddings"))
    mp.setenv("DIFFLAB_PACKS_DIR", str(root / "packs"))
    yield types.SimpleNamespace(root=root, folder=folder, embeds=embeds)
    mp.undo()


@pytest.fixture(scope="module")
def pack_dir(env):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", df.SlowOnCPUWarning)
        adapter = df.load_deepfloyd(env.folder, device="cpu", embeddings_dir=env.root / "pack-emb")
    adapter.embeddings.import_file(env.embeds)
    pack = precompute_pack(
        adapter, env.root / "packs" / "tiny", ["a high quality photo"], [0, 1], PACK_FIGURES, stride=45
    )
    return pack.path


def deepfloyd_state(env, **extra) -> dict:
    return {
        "backend": "deepfloyd",
        "df_model": str(env.folder),
        "df_embeds_path": str(env.embeds),
        "df_allow_cpu": True,
    } | extra


def page(name: str, **state) -> AppTest:
    return run_page(name, 120, **state)


def image_captions(at: AppTest) -> str:
    return " ".join(im.proto.imgs[0].caption for im in at.image)


def texts(at: AppTest) -> str:
    parts = [e.value for kind in (at.info, at.warning, at.caption, at.markdown, at.subheader) for e in kind]
    return " ".join(str(p) for p in parts)


def fell_back(at: AppTest, message: str) -> None:
    """The page ran, showed the engine's message as an error and said it falls back."""
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert message in errors, errors
    assert "Traceback" not in errors
    assert any("Falling back to the built-in backend" in w.value for w in at.warning)


# ----------------------------------------------------------------------------- DeepFloyd IF


PAGE_STATE = {
    "a0_text_to_image.py": {"a0_stride": 333, "a0_count": 1},
    "a1_forward.py": {},
    "a2_denoising.py": {"a2_stride": 100, "a2_curve": False},
    "a3_sampling.py": {"a3_stride": 100, "a3_sweep_count": 1},
    "a4_image_to_image.py": {"a4_stride": 40},
    "a5_illusions.py": {"a5_stride": 100, "a5_count": 1},
    "home.py": {},
}


@pytest.mark.parametrize("name", list(PAGE_STATE))
def test_part_a_pages_run_on_deepfloyd(env, name):
    at = page(name, **deepfloyd_state(env, **PAGE_STATE[name]))
    ok(at)
    assert "Falling back" not in texts(at)
    if name not in ("home.py", "a1_forward.py"):
        assert at.image, name


def test_prompts_replace_classes_and_null_prompt_is_offered(env):
    at = page("a2_denoising.py", **deepfloyd_state(env, a2_stride=100, a2_curve=False))
    ok(at)
    box = at.selectbox(key="a2_prompt")
    assert box.value == "a high quality photo"
    assert "(no prompt: the null branch)" in box.options
    before = image_ids(at)
    box.set_value("").run()  # the null prompt: CFG's unconditional branch
    ok(at)
    assert image_ids(at)[3] != before[3]  # one-step x0_hat changes with the condition
    at = page("a3_sampling.py", **deepfloyd_state(env, a3_stride=100, a3_sweep_count=1))
    assert at.multiselect(key="a3_prompts").value == ["a high quality photo"]


def test_illusions_default_to_the_course_prompts(env):
    at = page("a5_illusions.py", **deepfloyd_state(env, a5_stride=100, a5_count=1))
    ok(at)
    assert at.selectbox(key="a5_up_prompt").value == "an oil painting of people around a campfire"
    assert at.selectbox(key="a5_down_prompt").value == "an oil painting of an old man"
    at.session_state["a5_kind"] = "Hybrid image"
    at.run()
    ok(at)
    assert at.selectbox(key="a5_far_prompt").value == "a lithograph of a skull"
    assert at.selectbox(key="a5_near_prompt").value == "a lithograph of waterfalls"
    assert at.select_slider(key="a5_kernel").value == 33


def test_text_to_image_seed_changes_the_picture_and_is_shown(env):
    a = page("a0_text_to_image.py", **deepfloyd_state(env, a0_stride=333, a0_count=1, seed=1))
    b = page("a0_text_to_image.py", **deepfloyd_state(env, a0_stride=333, a0_count=1, seed=2))
    ok(a)
    assert image_ids(a)[0] != image_ids(b)[0]
    assert "seed 1" in texts(a) + " ".join(im.proto.imgs[0].caption for im in a.image)
    assert "Stage II" in texts(a) and ("needs" in texts(a) or torch.cuda.is_available())


def test_app_entrypoint_with_deepfloyd(env):
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    for k, v in deepfloyd_state(env).items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("DeepFloyd IF" in s.value for s in at.sidebar.success)
    assert at.sidebar.text_input(key="df_model").value == str(env.folder)


# ----------------------------------------------------------------------------- failures


def test_no_gpu_no_weights_shows_the_message_and_falls_back(env):
    """What every user without a GPU sees: the default Hub id, no CPU opt-in."""
    state = {"backend": "deepfloyd"}
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for name in ("home.py", "a1_forward.py"):
        at = page(name, **state)
        fell_back(at, "DeepFloyd IF needs a GPU here and none is available")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["backend"] = "deepfloyd"
    at.run()
    assert not at.exception
    assert any("Using the built-in MNIST DDPM" in w.value for w in at.sidebar.warning)


def test_missing_folder_shows_the_message_and_falls_back(env):
    at = page("a1_forward.py", **deepfloyd_state(env, df_model=str(env.root / "nowhere")))
    fell_back(at, "does not exist")


def test_gated_model_shows_the_licence_message(env, monkeypatch):
    from huggingface_hub import errors as hf

    def gated(repo_id, **kwargs):
        raise hf.GatedRepoError("403 gated", response=types.SimpleNamespace(headers={}, request=None))

    monkeypatch.setattr(dfw, "_snapshot_download", gated)
    monkeypatch.setattr(dfw, "_has_token", lambda: True)
    at = page("a1_forward.py", **deepfloyd_state(env, df_model="DeepFloyd/IF-I-XL-v1.0", df_embeds_path=""))
    fell_back(at, "has not accepted the DeepFloyd IF licence")


def test_bad_embeddings_file_falls_back(env):
    at = page("home.py", **deepfloyd_state(env, df_embeds_path=str(env.root / "no-such.pth")))
    fell_back(at, "prompt embeddings file not found")


# ----------------------------------------------------------------------------- packs


@pytest.mark.parametrize("name", list(PAGE_STATE))
def test_pack_pages_browse_without_a_model(env, pack_dir, name):
    at = page(name, backend="pack", pack_path="tiny")
    ok(at)
    body = texts(at)
    assert "Precomputed by" in body and "a high quality photo" in body
    if name not in ("home.py",):
        assert at.image, name


def test_pack_is_limited_to_its_seeds_and_figures(env, pack_dir):
    at = page("a3_sampling.py", backend="pack", pack_path=str(pack_dir))  # absolute path works too
    ok(at)
    seeds = at.selectbox(key="a3_pack_seed")
    assert seeds.options == ["0", "1"]
    before = image_ids(at)
    seeds.set_value(1).run()
    ok(at)
    assert image_ids(at)[0] != before[0]
    at = page("a2_denoising.py", backend="pack", pack_path="tiny")
    ok(at)
    assert "has no “one_step” figure" in texts(at)
    at = page("a4_image_to_image.py", backend="pack", pack_path="tiny")
    assert "has no “inpaint” figure" in texts(at)


def test_corrupted_pack_is_refused(env, pack_dir):
    bad = pack_dir.parent / "bad"
    shutil.copytree(pack_dir, bad)
    f = bad / "figures" / "samples.safetensors"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    at = page("a3_sampling.py", backend="pack", pack_path="bad")
    fell_back(at, "checksum mismatch")
    at = page("home.py", backend="pack", pack_path="missing-pack")
    fell_back(at, "is not an artifact pack")


# ----------------------------------------------------------------------------- Part 0


def test_part0_grid_three_prompts_two_step_counts(env):
    at = page("a0_text_to_image.py", **deepfloyd_state(env, **PAGE_STATE["a0_text_to_image.py"]))
    ok(at)
    assert at.multiselect(key="a0_grid_prompts").value == [
        "an oil painting of a snowy mountain village", "a man wearing a hat", "a rocket ship"
    ]
    before = len(at.image)
    at.toggle(key="a0_grid").set_value(True).run()
    ok(at)
    assert len(at.image) == before + 1
    assert "Columns: 20 steps, 50 steps" in image_captions(at)


def test_pack_shows_its_part0_grid(env, pack_dir):
    at = page("a0_text_to_image.py", backend="pack", pack_path="tiny")
    ok(at)
    assert "Columns: 20 steps, 50 steps" in image_captions(at)


def test_typed_prompt_is_encoded_with_t5_once_and_selected(env):
    at = page("a0_text_to_image.py", **deepfloyd_state(env, **PAGE_STATE["a0_text_to_image.py"]))
    ok(at)
    assert "a cat" not in at.selectbox(key="a0_prompt").options
    at.text_input(key="a0_prompt_typed").input("a  cat ")
    next(b for b in at.button if b.label == "Encode with T5 and use it").click().run()
    ok(at)
    assert at.selectbox(key="a0_prompt").value == "a cat"
    assert "“a cat”" in image_captions(at)
    assert any((env.root / "embeddings").rglob("*")), "the embedding was not stored"


def test_drawing_canvas_on_the_colour_model(env):
    """A1.7.1 hand-drawn input on DeepFloyd: a colour canvas; until one draws, a built-in sketch
    is edited (AppTest cannot draw)."""
    at = page("a4_image_to_image.py", **deepfloyd_state(env, a4_stride=100, a4_rgb_source="Drawing"))
    ok(at)
    assert any("Nothing drawn yet" in c.value for c in at.caption)
    assert at.color_picker(key="a4_rgb_canvas_ink").value == "#c82828"
    assert at.image, "no SDEdit row from the sketch"
