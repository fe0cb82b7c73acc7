"""Security. The server config, no unpickling anywhere in the repository, and no
user-supplied name that becomes a path outside cache/. Results: docs/hardening.md."""

from __future__ import annotations

import ast
import hashlib
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAVERSALS = [
    "../../etc/passwd",
    "..",
    "../cache",
    "a/../../..",
    "/etc/passwd",
    "~/.ssh/id_rsa",
    "..\\..\\windows",
    "cache/../../etc",
    "%2e%2e/%2e%2e/etc",
    "name\0.png",
]


def python_files() -> list[Path]:
    skip = {".git", "cache", "artifacts", ".venv", "venv", "node_modules", "__pycache__"}
    return sorted(p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts))


# ----------------------------------------------------------------------------- configuration


def test_streamlit_config_is_locked_down():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server, browser, client = cfg["server"], cfg["browser"], cfg["client"]
    assert server["address"] == "127.0.0.1"  # loopback by default: a room goes through a proxy
    assert server["enableXsrfProtection"] is True
    assert 1 <= server["maxUploadSize"] <= 10
    assert server.get("runOnSave", False) is False and server.get("fileWatcherType") == "none"
    assert browser["gatherUsageStats"] is False
    assert client["showErrorDetails"] in ("none", "type", False)  # never full tracebacks to users
    assert client.get("toolbarMode") in ("viewer", "minimal")
    from dashboard.uploads import MAX_BYTES

    assert server["maxUploadSize"] * 1024 * 1024 == MAX_BYTES


def test_server_binds_loopback_by_default():
    """What streamlit itself reads from the repository's config (run from the repo root)."""
    import os
    import subprocess
    import sys

    code = (
        "from streamlit import config; "
        "print(config.get_option('server.address'), config.get_option('server.enableXsrfProtection'), "
        "config.get_option('server.maxUploadSize'), config.get_option('client.showErrorDetails'))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.split() == ["127.0.0.1", "True", "10", "type"], out


# ----------------------------------------------------------------------------- no unpickling


def _call_name(node: ast.Call) -> str:
    f = node.func
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def _kw(node: ast.Call, name: str):
    for k in node.keywords:
        if k.arg == name:
            return k.value
    return None


def test_no_unsafe_deserialisation_anywhere():
    bad = []
    for path in python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module in ("pickle", "cPickle", "dill", "joblib")
                and any(a.name in ("load", "loads", "Unpickler") for a in node.names)
            ):
                bad.append(f"{path}:{node.lineno} from {node.module} import load")
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            where = f"{path.relative_to(ROOT)}:{node.lineno} {name}"
            if name == "torch.load" or name.endswith(".torch.load"):
                wo = _kw(node, "weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    bad.append(where + " without weights_only=True")
            if name in (
                "pickle.load",
                "pickle.loads",
                "pickle.Unpickler",
                "cPickle.load",
                "dill.load",
                "dill.loads",
                "joblib.load",
                "marshal.loads",
                "shelve.open",
                "yaml.load",
                "yaml.unsafe_load",
                "pd.read_pickle",
                "pandas.read_pickle",
            ):
                bad.append(where)
            if name in ("np.load", "numpy.load"):
                ap = _kw(node, "allow_pickle")
                if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                    bad.append(where + " with allow_pickle")
            if isinstance(node.func, ast.Name) and name in ("eval", "exec"):
                bad.append(where)
    # test_checkpoints proves its disguised pickle is live by unpickling a probe of its own; the
    # Check-your-code child runs a student's file by design, in its limited process (never the server)
    allowed = {"tests/engine/test_checkpoints.py torch.load without weights_only=True",
               "engine/check/child.py exec"}
    bad = [b for b in bad if " ".join(b.split(" ", 1)[0].split(":")[:1] + b.split(" ", 1)[1:]) not in allowed]
    assert not bad, bad


def test_the_scan_catches_what_it_should(tmp_path):
    """The scanner above is not vacuous: it flags each forbidden form."""
    src = (
        "import torch, pickle, numpy as np\ntorch.load('x')\ntorch.load('x', weights_only=False)\n"
        "pickle.loads(b'')\nnp.load('x', allow_pickle=True)\ntorch.load('x', weights_only=True)\n"
    )
    tree = ast.parse(src)
    names = [_call_name(n) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert names.count("torch.load") == 3 and "pickle.loads" in names and "np.load" in names


def test_torch_load_is_only_reached_with_weights_only():
    """The one torch.load (DeepFloyd embeddings import) refuses a pickle that executes code."""
    import pickle

    import torch

    from engine.deepfloyd.model import EmbeddingStore

    marker = Path(__file__).parent / ".hardening_marker_should_not_exist"

    class Evil:
        def __reduce__(self):
            return (Path.write_text, (marker, "executed"))

    path = Path(pytest.importorskip("tempfile").mkdtemp()) / "prompt_embeds_dict.pth"
    torch.save({"a prompt": Evil()}, path)
    store_cls = EmbeddingStore
    store = store_cls.__new__(store_cls)
    with pytest.raises(Exception, match="cannot read prompt embeddings"):
        store_cls.import_file(store, path)
    path.write_bytes(pickle.dumps({"p": Evil()}))
    with pytest.raises(Exception, match="cannot read prompt embeddings"):
        store_cls.import_file(store, path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- user strings -> paths


@pytest.mark.parametrize("name", TRAVERSALS)
def test_model_names_are_a_closed_list(name):
    from engine.adapters import ModelNotFound, load_builtin, model_path

    with pytest.raises(ValueError, match="unknown model"):
        model_path(name)
    with pytest.raises((ValueError, ModelNotFound)):
        load_builtin(name)


@pytest.mark.parametrize("name", TRAVERSALS)
def test_photo_names_are_a_closed_list(name):
    from engine.data import load_photo

    with pytest.raises(ValueError, match="unknown sample photo"):
        load_photo(name)


@pytest.mark.parametrize("name", TRAVERSALS)
def test_run_ids_stay_in_the_runs_folder(name, tmp_path):
    from dashboard import jobs

    with pytest.raises(jobs.JobError):
        jobs.run_path(name, tmp_path)
    try:
        safe = jobs.sanitize_run_id(name)
    except jobs.JobError:
        return
    assert "/" not in safe and ".." not in safe and "\0" not in safe
    assert jobs.run_path(safe, tmp_path).parent == tmp_path.resolve()


@pytest.mark.parametrize("name", [t for t in TRAVERSALS if not t.startswith(("/", "~"))])
def test_pack_names_stay_in_the_packs_folder(name, tmp_path, monkeypatch):
    from dashboard import backends
    from engine.packs import PackError

    monkeypatch.setenv("DIFFLAB_PACKS_DIR", str(tmp_path / "packs"))
    try:
        p = backends.pack_path(name)
    except PackError as e:
        assert "inside" in str(e)
        return
    # names that are not traversal once parsed (e.g. "%2e%2e" is a literal folder name)
    assert (tmp_path / "packs") in p.parents


def test_pack_manifest_cannot_point_outside_the_pack(tmp_path):
    """A hand-edited manifest whose "files" name /etc/passwd or ../secret (with matching
    checksums) is refused before anything is read."""
    from engine.packs import MANIFEST, PACK_VERSION, PackError, open_pack

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"top secret")
    info = {"bytes": 10, "sha256": hashlib.sha256(b"top secret").hexdigest()}
    pack = tmp_path / "pack"
    (pack / "figures").mkdir(parents=True)
    (pack / "figures" / "link").symlink_to(secret)
    for rel in (str(secret), "../secret.bin", "figures/link"):
        manifest = {
            "pack_version": PACK_VERSION,
            "created": "",
            "model": {},
            "versions": {},
            "settings": {},
            "figures": {},
            "files": {rel: info},
        }
        (pack / MANIFEST).write_text(json.dumps(manifest))
        with pytest.raises(PackError, match="outside the pack"):
            open_pack(pack)


def test_upload_names_never_become_paths(tmp_path, monkeypatch):
    """The Forward page reads only the bytes of an upload; a hostile file name is ignored and
    nothing is written anywhere."""
    import io
    import os

    from PIL import Image
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, "PNG")
    at = AppTest.from_file(str(ROOT / "pages" / "a1_forward.py"), default_timeout=60)
    at.session_state["a1_source"] = "Upload"
    at.run()
    before = sorted(os.listdir(tmp_path))
    for name in ("../../etc/passwd", "/tmp/owned.png", "..\\x.png", "a\nb.png"):
        at.file_uploader(key="a1_upload").set_value((name, buf.getvalue(), "image/png"))
        at.run()
        assert not at.exception and not at.error and at.image
    assert sorted(os.listdir(tmp_path)) == before
    assert not Path("/tmp/owned.png").exists()


def test_download_names_are_slugs():
    from dashboard.ui import slug

    for text in TRAVERSALS:
        s = slug(text)
        assert "/" not in s and "\\" not in s and ".." not in s and "\0" not in s, (text, s)


def test_embedding_uploads_are_stored_under_a_digest_name(tmp_path, monkeypatch):
    """The DeepFloyd embeddings upload is saved as cache/embeddings/uploads/<sha256[:16]>.pth:
    the browser's file name only picks the suffix."""
    import streamlit as st

    from dashboard import backends

    monkeypatch.setenv("DIFFLAB_EMBEDDINGS_DIR", str(tmp_path / "emb"))

    class Upload:
        name = "../../../../etc/cron.d/evil.safetensors"

        def getvalue(self):
            return b"payload"

    monkeypatch.setattr(st, "session_state", {"df_embeds_upload": Upload()})
    path, _ = backends._embeddings_file()
    p = Path(path)
    assert p.parent == tmp_path / "emb" / "uploads"
    assert p.name == hashlib.sha256(b"payload").hexdigest()[:16] + ".safetensors"
    assert [q.name for q in (tmp_path / "emb" / "uploads").iterdir()] == [p.name]
