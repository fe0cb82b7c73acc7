"""Checkpoint files: safetensors only, atomic, and clear errors for anything else."""

import json
import os
from dataclasses import replace

import pytest
import torch

from engine import checkpoints as ckpt
from engine.checkpoints import CheckpointError, load_weights, save_weights
from engine.config import PRESETS, TrainConfig, build_model


def tensors():
    return {
        "w": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
        "steps": torch.tensor([1, 2, 3], dtype=torch.int64),
        "half": torch.ones(2, dtype=torch.float16),
    }


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "x.safetensors"
    meta = {"epoch": 3, "config": {"name": "a", "sizes": [1, 2]}, "lr": 0.1 + 0.2}
    ckpt.save_tensors(path, tensors(), meta)
    loaded, loaded_meta = ckpt.load_tensors(path)
    assert loaded.keys() == tensors().keys()
    for k, v in tensors().items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v)
    assert loaded_meta == meta
    # nothing but the file itself is left behind in the folder
    assert [p.name for p in path.parent.iterdir()] == ["x.safetensors"]


def test_atomic_write_replaces_whole_files(tmp_path):
    path = tmp_path / "f.txt"
    ckpt.atomic_write_text(path, "old contents, longer")
    ckpt.atomic_write_text(path, "new")
    assert path.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "x.safetensors"
    ckpt.save_tensors(path, tensors())
    before = path.read_bytes()

    def crash(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_tensors(path, {"w": torch.zeros(1)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]  # no temporary file left


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_tensors(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0.5, 0.9, 10])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / "x.safetensors"
    ckpt.save_tensors(path, tensors(), {"a": 1})
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)] if keep < 1 else data[:keep])
    with pytest.raises(CheckpointError, match="corrupt or not a safetensors file") as err:
        ckpt.load_tensors(path)
    assert str(path) in str(err.value)


def test_garbage_and_empty_files(tmp_path):
    for content in (b"", b"hello world" * 10, b"\xff" * 64):
        path = tmp_path / "x.safetensors"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="corrupt or not a safetensors file"):
            ckpt.load_tensors(path)


class Marker:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        # unpickling calls pathlib.Path(marker).touch() -- a visible side effect
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_pickle_disguised_as_safetensors_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "PWNED"
    models = tmp_path / "models" / "denoiser"
    models.mkdir(parents=True)
    path = models / "model.safetensors"
    torch.save({"state": Marker(marker), "w": torch.zeros(2)}, path)
    # prove the payload is live: unpickling it the unsafe way does create the marker
    probe = tmp_path / "probe.pt"
    torch.save(Marker(tmp_path / "PROBE"), probe)
    torch.load(probe, weights_only=False)
    assert (tmp_path / "PROBE").exists()

    with pytest.raises(CheckpointError, match="not a safetensors file"):
        ckpt.load_tensors(path)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_weights(path)
    from engine.adapters import load_builtin

    with pytest.raises(CheckpointError):
        load_builtin("denoiser", tmp_path / "models")
    assert not marker.exists()


def test_bad_metadata_json(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "x.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"meta": "{not json"})
    with pytest.raises(CheckpointError, match="metadata is not valid JSON"):
        ckpt.load_tensors(path)


def small(name="denoiser", **kw) -> TrainConfig:
    return replace(PRESETS[name], **({"num_hiddens": 4} | kw))


def test_weights_round_trip(tmp_path):
    cfg = small("flow-class")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    path = tmp_path / "model.safetensors"
    save_weights(path, model, cfg, {"manifest": {"steps": 5}})
    loaded, loaded_cfg, meta = load_weights(path)
    assert loaded_cfg == cfg and meta["manifest"] == {"steps": 5}
    assert not loaded.training
    for k, v in model.state_dict().items():
        w = loaded.state_dict()[k]
        assert w.dtype == v.dtype
        if v.is_floating_point():  # shipped in float16
            torch.testing.assert_close(w, v.half().float())
        else:
            assert torch.equal(w, v)


def test_wrong_shapes_name_the_tensor(tmp_path):
    model = build_model(small(num_hiddens=4))
    state = {k: v.clone() for k, v in build_model(small()).state_dict().items()}
    state["head.weight"] = torch.zeros(1, 5, 3, 3)
    with pytest.raises(
        CheckpointError, match=r"shape of head\.weight: file \(1, 5, 3, 3\) vs model \(1, 4, 3, 3\)"
    ):
        ckpt.load_state_dict_checked(model, state, tmp_path / "m.safetensors")


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    model = build_model(small())
    state = dict(model.state_dict())
    state.pop("head.bias")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as err:
        ckpt.load_state_dict_checked(model, state, tmp_path / "m.safetensors")
    msg = str(err.value)
    assert "missing ['head.bias']" in msg and "unexpected ['extra.weight']" in msg and "m.safetensors" in msg


def test_weights_that_do_not_fit_their_config(tmp_path):
    path = tmp_path / "model.safetensors"
    save_weights(path, build_model(small(num_hiddens=4)), small(num_hiddens=4))
    tensors, meta = ckpt.load_tensors(path)
    meta["config"]["num_hiddens"] = 8  # the header now lies about the architecture
    ckpt.save_tensors(path, tensors, meta)
    with pytest.raises(CheckpointError, match=r"does not fit the model: .*shape of conv_in"):
        load_weights(path)


def test_file_without_config_is_not_a_model(tmp_path):
    path = tmp_path / "model.safetensors"
    ckpt.save_tensors(path, {"w": torch.zeros(1)}, {"other": 1})
    with pytest.raises(CheckpointError, match="no config"):
        load_weights(path)


def test_config_from_dict_restores_tuples_and_ignores_unknown_keys():
    cfg = small("flow-class")
    data = json.loads(json.dumps(ckpt.config_to_dict(cfg)))
    data["added_in_a_later_version"] = 1
    assert ckpt.config_from_dict(TrainConfig, data) == cfg


def test_read_meta_reads_the_header_only(tmp_path):
    """The Training lab reads a run's config from its checkpoint's header every refresh: the same
    meta as a full load, and a clear error for a file cut short."""
    path = tmp_path / "c.safetensors"
    ckpt.save_tensors(path, {"w": torch.randn(64, 64)}, {"global_step": 7, "config": {"name": "x"}})
    assert ckpt.read_meta(path) == ckpt.load_tensors(path)[1] == {"global_step": 7, "config": {"name": "x"}}
    path.write_bytes(path.read_bytes()[:5])
    with pytest.raises(CheckpointError):
        ckpt.read_meta(path)
