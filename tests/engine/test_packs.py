"""Artifact packs: the Part A figure set through the engine, written, verified, corrupted."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from engine.deepfloyd import model as df
from engine.denoise import iterative_denoise
from engine.guidance import CFGModel
from engine.illusions import AnagramModel
from engine.packs import (
    FIGURES,
    PACK_VERSION,
    REQUIRED_ARRAYS,
    PackError,
    PackSettings,
    open_pack,
)
from engine.precompute import precompute_pack
from engine.schedule import strided_timesteps
from tests.support.tiny_if import SIZE, build_tiny_if, load_tiny, write_embeds

pytestmark = [
    pytest.mark.filterwarnings("ignore::engine.deepfloyd.model.SlowOnCPUWarning"),
    pytest.mark.usefixtures("one_thread_module"),
]
# stride 45 keeps all 23 strided timesteps the spec's SDEdit sweep (i_start up to 20) needs
FAST = {"stride": 45}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_if(tmp_path_factory.mktemp("tiny-if"))


@pytest.fixture(scope="module")
def embeds_file(tmp_path_factory):
    return write_embeds(tmp_path_factory.mktemp("embeds"))


@pytest.fixture(scope="module")
def adapter(tiny_folder, embeds_file, tmp_path_factory):
    return load_tiny(tiny_folder, embeds_file, tmp_path_factory.mktemp("emb"))


@pytest.fixture(scope="module")
def pack(adapter, tmp_path_factory):
    seen = []
    p = precompute_pack(
        adapter,
        tmp_path_factory.mktemp("packs") / "full",
        ["a high quality photo", "a rocket ship"],
        [0, 1],
        progress=lambda name, i, n: seen.append(name),
        **FAST,
    )
    assert seen == list(FIGURES)
    return p


def test_full_figure_set_round_trips(pack):
    again = open_pack(pack.path)
    assert set(again.figures) == set(FIGURES) and again.model_id == pack.model_id
    m = again.manifest
    assert m["pack_version"] == PACK_VERSION and m["settings"]["seeds"] == (0, 1)
    assert m["versions"]["torch"] == torch.__version__.split("+")[0] or m["versions"]["torch"]
    assert set(m["files"]) == {f"figures/{f}.safetensors" for f in FIGURES}
    for name in FIGURES:
        fig = again.figure(name)
        assert set(REQUIRED_ARRAYS[name]) <= set(fig.arrays)
    s = again.figure("samples").arrays
    n_steps = len(strided_timesteps(45))
    assert s["images"].shape == (2, 2, 3, SIZE, SIZE) and s["images"].dtype == np.float32
    assert s["trajectory"].shape == (2, 2, n_steps, 3, SIZE, SIZE) and s["trajectory"].dtype == np.float16
    assert again.figure("sdedit").arrays["edits"].shape == (2, 6, 3, SIZE, SIZE)
    assert list(again.figure("forward").arrays["timesteps"]) == [250, 500, 750]
    assert again.figure("anagram").meta["prompts"][1] == "an oil painting of an old man"
    grid = again.figure("part0")  # Part 0: three prompts x (20, 50) steps, per seed
    assert grid.arrays["images"].shape == (2, 3, 2, 3, SIZE, SIZE)
    assert list(grid.arrays["strides"]) == [50, 20]
    assert list(grid.meta["prompts"]) == [
        "an oil painting of a snowy mountain village",
        "a man wearing a hat",
        "a rocket ship",
    ]
    for fig in again.figures.values():
        for key, a in fig.arrays.items():
            if key not in ("timesteps", "i_starts", "strides"):
                assert a.min() >= 0 and a.max() <= 1, (fig.name, key)
    with pytest.raises(ValueError):
        s["images"][0, 0, 0, 0, 0] = 1  # read-only
    with pytest.raises(TypeError):
        again.manifest["model"]["id"] = "x"


def test_pack_uses_the_engine_algorithms(pack, adapter):
    """The anagram figure equals AnagramModel + iterative_denoise run by hand with the same seed."""
    st = pack.settings
    ts = strided_timesteps(st["stride"])
    c1, c2 = adapter.encode(list(st["anagram_prompts"])).split(1)
    guided = CFGModel(adapter, adapter.null_cond(1), st["guidance"])
    model = AnagramModel(guided, [c1, c2], ["identity", "flip"])
    g = torch.Generator().manual_seed(1)
    x = iterative_denoise(
        model, torch.randn(1, 3, SIZE, SIZE, generator=g), ts, schedule=adapter.schedule, generator=g
    ).final
    expected = ((x + 1) / 2).clamp(0, 1)
    np.testing.assert_allclose(pack.figure("anagram").arrays["images"][1], expected.numpy(), atol=1e-6)
    np.testing.assert_array_equal(
        pack.figure("anagram").arrays["flipped"][1],
        np.flip(pack.figure("anagram").arrays["images"][1], axis=-2),
    )


def test_same_seed_same_pack(adapter, tmp_path, pack):
    p = precompute_pack(
        adapter, tmp_path / "cfg", ["a high quality photo", "a rocket ship"], [0, 1], ["cfg"], **FAST
    )
    np.testing.assert_array_equal(p.figure("cfg").arrays["images"], pack.figure("cfg").arrays["images"])
    with pytest.raises(PackError, match="already exists"):
        precompute_pack(adapter, tmp_path / "cfg", figures=["cfg"], **FAST)
    p2 = precompute_pack(adapter, tmp_path / "cfg", figures=["forward"], overwrite=True, **FAST)
    assert set(p2.figures) == {"forward"} and not list(tmp_path.glob(".cfg*"))


def test_missing_embeddings_fail_before_any_work(adapter, tmp_path):
    with pytest.raises(df.EmbeddingsMissingError, match="a unicorn"):
        precompute_pack(adapter, tmp_path / "p", ["a unicorn"], figures=["samples"], **FAST)
    assert not (tmp_path / "p").exists() and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="unknown figures"):
        PackSettings(figures=("samples", "mona_lisa"))


def _copy(pack, tmp_path):
    return shutil.copytree(pack.path, tmp_path / "copy")


def test_corrupt_byte_is_detected(pack, tmp_path):
    root = _copy(pack, tmp_path)
    f = root / "figures" / "hybrid.safetensors"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(PackError, match="checksum mismatch.*hybrid"):
        open_pack(root)


def test_deleted_file_is_detected(pack, tmp_path):
    root = _copy(pack, tmp_path)
    (root / "figures" / "inpaint.safetensors").unlink()
    with pytest.raises(PackError, match="missing.*inpaint"):
        open_pack(root)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(pack_version=99), "pack version 99"),
        (lambda m: m.pop("files"), "lacks files"),
        (lambda m: m["figures"]["forward"]["arrays"]["noisy"].update(shape=[1, 2]), "manifest says"),
        (lambda m: m["figures"]["cfg"].update(file="figures/elsewhere.safetensors"), "no checksum"),
    ],
)
def test_manifest_problems(pack, tmp_path, edit, message):
    root = _copy(pack, tmp_path)
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackError, match=message):
        open_pack(root)


def test_not_a_pack(tmp_path):
    with pytest.raises(PackError, match="no manifest.json"):
        open_pack(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(PackError, match="not valid JSON"):
        open_pack(tmp_path)


def test_cli_precompute(tiny_folder, embeds_file, tmp_path, capsys):
    from engine.cli import main

    argv = [
        "precompute",
        "--backend",
        "deepfloyd",
        "--model-path",
        str(tiny_folder),
        "--prompt-embeds",
        str(embeds_file),
        "--pack",
        str(tmp_path / "pack"),
        "--figures",
        "forward,hybrid",
        "--stride",
        "200",
        "--embeddings-dir",
        str(tmp_path / "emb"),
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    assert set(open_pack(tmp_path / "pack").figures) == {"forward", "hybrid"}
    assert main(argv) == 1 and "already exists" in capsys.readouterr().err
    bad = argv[: argv.index("--figures") + 1] + ["forward,nonsense"] + argv[argv.index("--figures") + 2 :]
    assert main(bad) == 1 and "unknown figures" in capsys.readouterr().err
