"""Bad inputs: a corpus of bad and odd inputs, generated here (no binary fixtures), each run
through the upload validator (dashboard/uploads.py), the Forward page's real upload widget under
AppTest (streamlit 1.67's AppTest drives ``st.file_uploader``; the browser test covers the
widget in Chromium), the display helper, checkpoints, packs and the CLI. Every case must end in
a clear message or a sensible conversion, and the app must keep running. Results: docs/hardening.md.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dashboard import images
from dashboard.uploads import MAX_BYTES, UploadError, load_image

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- the corpus


def enc(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def noise_rgb(w=64, h=64, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def png_claiming(width: int, height: int) -> bytes:
    """A ~70-byte PNG whose IHDR (with a valid CRC) claims width x height pixels."""
    raw = enc(Image.new("L", (8, 8)))
    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    ihdr = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return raw[:8] + ihdr + raw[8 + 25 :]


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 255, 255), (0, 0, 0), (255, 0, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    return buf.getvalue()


def exif_rotated() -> bytes:
    a = np.zeros((20, 40, 3), dtype=np.uint8)
    a[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    return enc(Image.fromarray(a), "JPEG", exif=exif.tobytes(), quality=95)


def rgba_transparent() -> bytes:
    a = np.zeros((32, 32, 4), dtype=np.uint8)
    a[..., 0] = 255
    a[8:24, 8:24, 3] = 255  # an opaque red square on a transparent field
    return enc(Image.fromarray(a, "RGBA"))


def palette_with_trns() -> bytes:
    im = noise_rgb(32, 32).convert("P", palette=Image.ADAPTIVE, colors=16)
    return enc(im, transparency=0)


def float_tiff_with_nan() -> bytes:
    a = np.random.default_rng(1).random((32, 32)).astype(np.float32) * 4 - 1
    a[0, 0], a[1, 1], a[2, 2] = np.nan, np.inf, -np.inf
    return enc(Image.fromarray(a, "F"), "TIFF")


def multipage_tiff() -> bytes:
    pages = [Image.new("L", (32, 32), v) for v in (200, 10, 90)]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    return buf.getvalue()


def bad_crc_png() -> bytes:
    data = bytearray(enc(noise_rgb(16, 16)))
    data[29] ^= 0xFF  # IHDR's CRC
    return bytes(data)


def gif_bomb() -> bytes:
    data = bytearray(enc(Image.new("L", (16, 16)), "GIF"))
    data[6:10] = b"\xff\xff\xff\xff"  # logical screen 65535 x 65535
    return bytes(data)


OK, ERR = "ok", "error"
# name -> (file name the browser would send, bytes factory, expected outcome, message or note regex)
CORPUS: dict[str, tuple[str, object, str, str]] = {
    "zero-byte file": ("empty.png", lambda: b"", ERR, "empty"),
    "truncated PNG": ("cut.png", lambda: enc(noise_rgb())[:400], ERR, "truncated|damaged"),
    "truncated JPEG": ("cut.jpg", lambda: enc(noise_rgb(), "JPEG")[:600], ERR, "truncated|damaged"),
    "PNG with a broken CRC": ("crc.png", bad_crc_png, ERR, "damaged|truncated|not an image"),
    "text file named .png": ("notes.png", lambda: b"just some notes\n" * 20, ERR, "not an image"),
    "HTML file": (
        "page.png",
        lambda: b"<!doctype html><html><script>alert(1)</script></html>",
        ERR,
        "not an image",
    ),
    "SVG file": (
        "vector.svg",
        lambda: (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
            b'<rect width="64" height="64"/></svg>'
        ),
        ERR,
        "not an image",
    ),
    "EPS (Ghostscript) file": (
        "art.eps",
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n",
        ERR,
        "not an image",
    ),
    "PDF file": ("doc.pdf", lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF", ERR, "not an image"),
    "PNG bomb (header 60000x60000)": (
        "bomb.png",
        lambda: png_claiming(60000, 60000),
        ERR,
        "too large|megapixels",
    ),
    "GIF bomb (65535x65535 screen)": ("bomb.gif", gif_bomb, ERR, "too large|megapixels"),
    "real 10000x10000 PNG": (
        "huge.png",
        lambda: enc(Image.new("L", (10000, 10000), 128)),
        ERR,
        "too large|megapixels",
    ),
    "1x1 image": ("dot.png", lambda: enc(Image.new("RGB", (1, 1))), ERR, "at least"),
    "file over the 10 MB limit": ("big.bmp", lambda: b"BM" + b"\0" * (MAX_BYTES + 1), ERR, "MB"),
    "CMYK JPEG": ("cmyk.jpg", lambda: enc(Image.new("CMYK", (48, 32), (0, 255, 255, 0)), "JPEG"), OK, "CMYK"),
    "16-bit PNG": (
        "deep.png",
        lambda: enc(Image.fromarray(np.arange(1024, dtype=np.uint16).reshape(32, 32) * 64)),
        OK,
        "16-bit",
    ),
    "RGBA with transparency": ("alpha.png", rgba_transparent, OK, "transparent"),
    "palette PNG": (
        "pal.png",
        lambda: enc(noise_rgb(32, 32).convert("P", palette=Image.ADAPTIVE, colors=8)),
        OK,
        "",
    ),
    "palette PNG with tRNS": ("paltrns.png", palette_with_trns, OK, ""),
    "gray + alpha (LA) PNG": (
        "la.png",
        lambda: enc(Image.new("LA", (32, 32), (200, 100))),
        OK,
        "transparent",
    ),
    "1-bit PNG": ("bits.png", lambda: enc(Image.new("1", (32, 32), 1)), OK, ""),
    "animated GIF": ("anim.gif", animated_gif, OK, "first frame"),
    "EXIF-rotated JPEG": ("rot.jpg", exif_rotated, OK, "EXIF"),
    "grayscale PNG": ("gray.png", lambda: enc(Image.new("L", (40, 40), 77)), OK, ""),
    "TIFF": ("photo.tif", lambda: enc(noise_rgb(), "TIFF"), OK, ""),
    "multi-page TIFF": ("pages.tif", multipage_tiff, OK, "first frame"),
    "float TIFF with NaN and inf": ("nan.tif", float_tiff_with_nan, OK, "NaN"),
    "all-NaN float TIFF": (
        "allnan.tif",
        lambda: enc(Image.fromarray(np.full((16, 16), np.nan, np.float32), "F"), "TIFF"),
        ERR,
        "NaN",
    ),
    "WebP": ("pic.webp", lambda: enc(noise_rgb(), "WEBP"), OK, ""),
    "BMP": ("pic.bmp", lambda: enc(noise_rgb(), "BMP"), OK, ""),
    "JPEG named .png": ("liar.png", lambda: enc(noise_rgb(), "JPEG"), OK, ""),
    "JPEG with trailing garbage": ("tail.jpg", lambda: enc(noise_rgb(), "JPEG") + b"\0garbage" * 100, OK, ""),
    "panorama 4000x100": ("pano.jpg", lambda: enc(noise_rgb(4000, 100), "JPEG"), OK, "square"),
    "12 MP phone-size JPEG": (
        "phone.jpg",
        lambda: enc(Image.new("RGB", (4000, 3000), (10, 120, 200)), "JPEG"),
        OK,
        "",
    ),
}

_BYTES: dict[str, bytes] = {}


def data_of(case: str) -> bytes:
    if case not in _BYTES:
        _BYTES[case] = CORPUS[case][1]()
    return _BYTES[case]


def test_the_corpus_is_big_enough():
    assert len(CORPUS) >= 25
    assert sum(1 for c in CORPUS.values() if c[2] == ERR) >= 10


@pytest.mark.parametrize("case", list(CORPUS))
def test_upload_validator(case):
    _, _, expected, pattern = CORPUS[case]
    data = data_of(case)
    for size, mode, mnist in ((64, "RGB", False), (28, "L", True)):
        if expected == ERR:
            with pytest.raises(UploadError, match=f"(?i){pattern}"):
                load_image(data, size, mode, mnist_style=mnist)
            continue
        r = load_image(data, size, mode, mnist_style=mnist)
        assert r.image.shape == ((3 if mode == "RGB" else 1), size, size)
        assert r.image.dtype == np.float32 and np.isfinite(r.image).all()
        assert r.image.min() >= 0.0 and r.image.max() <= 1.0
        if pattern:
            assert any(re.search(pattern, n) for n in r.notes), (case, r.notes)


def test_validator_size_check_is_its_own():
    """The server's maxUploadSize stops big files in the browser; the validator checks again
    (AppTest, scripts and other callers bypass the server)."""
    with pytest.raises(UploadError, match="limit is 10 MB"):
        load_image(b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_BYTES)
    load_image(enc(noise_rgb()) + b"\0" * 100)  # small trailing junk is fine


def test_forward_page_upload_path_keeps_running(tmp_path, monkeypatch):
    """One AppTest session receives the whole corpus through the page's file_uploader, one file
    after another: errors are error boxes, conversions show images, no exception ever."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(tmp_path))  # the Forward page needs no model
    at = AppTest.from_file(str(ROOT / "pages" / "a1_forward.py"), default_timeout=60)
    at.session_state["a1_source"] = "Upload"
    at.run()
    assert not at.exception
    assert any("Choose a file" in i.value for i in at.info)
    for case, (fname, _, expected, _) in CORPUS.items():
        mime = "image/png" if fname.endswith(".png") else "application/octet-stream"
        at.file_uploader(key="a1_upload").set_value((fname, data_of(case), mime))
        at.run()
        assert not at.exception, (case, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        if expected == ERR:
            assert errors and errors[0].startswith("Could not use this file"), (case, errors)
            assert not at.image, case
        else:
            assert not errors, (case, errors)
            assert len(at.image) >= 2, case  # x_t and the strip
    at.file_uploader(key="a1_upload").set_value(None)
    at.run()
    assert not at.exception


# ----------------------------------------------------------------------------- arrays to display


@pytest.mark.parametrize(
    "arr",
    [
        np.full((3, 8, 8), np.nan, np.float32),
        np.array([[np.inf, -np.inf], [np.nan, 0.5]], np.float32),
        np.full((8, 8, 1), 1e30, np.float64),
        torch.full((1, 8, 8), float("nan")),
    ],
    ids=["all-nan", "inf-mix", "huge", "nan-tensor"],
)
def test_display_helper_never_breaks_on_nan_or_inf(arr):
    data = images.png(arr, scale=2)
    with Image.open(io.BytesIO(data)) as im:
        px = np.asarray(im)
    assert px.dtype == np.uint8 and px.shape[0] in (16, 4)


def _write_pack(
    root: Path, array: np.ndarray, *, bad_checksum=False, rel="figures/forward.safetensors"
) -> Path:
    """A minimal hand-made pack (one "forward" figure) to exercise ``open_pack``'s checks."""
    import hashlib

    from safetensors.numpy import save

    from engine.packs import MANIFEST, PACK_VERSION

    arrays = {
        "photo": array,
        "noisy": np.zeros((1, 3, 3, 8, 8), np.float32),
        "timesteps": np.array([250, 500, 750]),
    }
    blob = save(arrays)
    (root / "figures").mkdir(parents=True, exist_ok=True)
    (root / "figures" / "forward.safetensors").write_bytes(blob)
    digest = hashlib.sha256(blob).hexdigest()
    manifest = {
        "pack_version": PACK_VERSION,
        "created": "now",
        "model": {"id": "test"},
        "versions": {},
        "settings": {},
        "figures": {
            "forward": {
                "file": rel,
                "meta": {},
                "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            }
        },
        "files": {rel: {"bytes": len(blob), "sha256": ("0" * 64) if bad_checksum else digest}},
    }
    (root / MANIFEST).write_text(json.dumps(manifest))
    return root


def test_pack_nan_array_and_bad_checksum_are_refused(tmp_path):
    from engine.packs import PackError, open_pack

    good = np.random.default_rng(0).random((1, 3, 8, 8)).astype(np.float32)
    assert open_pack(_write_pack(tmp_path / "good", good)).figure("forward")
    bad = good.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(PackError, match="NaN"):
        open_pack(_write_pack(tmp_path / "nan", bad))
    with pytest.raises(PackError, match="checksum"):
        open_pack(_write_pack(tmp_path / "sum", good, bad_checksum=True))


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """A valid model.safetensors of an untrained D=8 ddpm-class (no training needed)."""
    from dataclasses import replace

    from engine.checkpoints import save_weights
    from engine.config import PRESETS, build_model

    cfg = replace(PRESETS["ddpm-class"], num_hiddens=8)
    path = tmp_path_factory.mktemp("w") / "ddpm-class" / "model.safetensors"
    save_weights(path, build_model(cfg), cfg, {"manifest": {}})
    return path


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "executed"))


def _bad_checkpoints(folder: Path, good: Path) -> dict[str, Path]:
    from safetensors.torch import load_file, save_file

    out = {}
    data = good.read_bytes()
    out["truncated safetensors"] = folder / "trunc.safetensors"
    out["truncated safetensors"].write_bytes(data[: len(data) // 2])
    out["zero-byte checkpoint"] = folder / "empty.safetensors"
    out["zero-byte checkpoint"].write_bytes(b"")
    out["pickle disguised as a checkpoint"] = folder / "evil.safetensors"
    out["pickle disguised as a checkpoint"].write_bytes(pickle.dumps({"w": _Evil(str(folder / "MARKER"))}))
    out["torch.save zip disguised"] = folder / "zip.safetensors"
    torch.save({"w": _Evil(str(folder / "MARKER"))}, out["torch.save zip disguised"])
    tensors = load_file(str(good))
    from safetensors import safe_open

    with safe_open(str(good), "pt") as f:
        meta = f.metadata()
    k = next(k for k in tensors if tensors[k].ndim == 4)
    tensors[k] = torch.zeros(*tensors[k].shape[:-1], tensors[k].shape[-1] + 1)
    out["wrong shapes"] = folder / "shape.safetensors"
    save_file(tensors, str(out["wrong shapes"]), metadata=meta)
    out["no config in header"] = folder / "noconf.safetensors"
    save_file({"x": torch.zeros(2)}, str(out["no config in header"]))
    out["header length lies"] = folder / "liar.safetensors"
    out["header length lies"].write_bytes(struct.pack("<Q", 2**40) + data[8:])
    nan = load_file(str(good))
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in nan.items()}
    out["NaN weights"] = folder / "nan.safetensors"
    save_file(nan, str(out["NaN weights"]), metadata=meta)
    return out


def test_bad_checkpoints_are_clear_errors_and_never_execute(tmp_path, tiny_weights):
    from engine.checkpoints import CheckpointError, load_weights

    cases = _bad_checkpoints(tmp_path, tiny_weights)
    for name, path in cases.items():
        if name == "NaN weights":
            continue
        with pytest.raises(CheckpointError) as info:
            load_weights(path)
        assert str(path) in str(info.value), name
    assert not (tmp_path / "MARKER").exists()
    # NaN weights load (they are well-formed); sampling through the display path stays finite
    model, _, _ = load_weights(cases["NaN weights"])
    assert not torch.isfinite(next(model.parameters())).any()


@pytest.mark.parametrize(
    "bad", ["truncated safetensors", "pickle disguised as a checkpoint", "wrong shapes", "NaN weights"]
)
def test_sampling_page_with_a_bad_model_file_shows_a_message(bad, tmp_path, tiny_weights, monkeypatch):
    """The models folder holds a damaged ddpm-class: the Sampling page says so, never a trace."""
    from streamlit.testing.v1 import AppTest

    src = _bad_checkpoints(tmp_path, tiny_weights)[bad]
    (tmp_path / "models" / "ddpm-class").mkdir(parents=True)
    (tmp_path / "models" / "ddpm-class" / "model.safetensors").write_bytes(src.read_bytes())
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(tmp_path / "models"))
    at = AppTest.from_file(str(ROOT / "pages" / "a3_sampling.py"), default_timeout=60)
    for k, v in {"a3_classes": [1], "a3_stride": 300, "a3_sweep_count": 1}.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not (tmp_path / "MARKER").exists()
    if bad == "NaN weights":  # a well-formed file: the page runs and shows (black) images
        assert at.image
    else:
        assert any("model.safetensors" in e.value for e in at.error), [e.value for e in at.error]


# ----------------------------------------------------------------------------- CLI and engine ranges


@pytest.fixture
def cli(capsys):
    from engine.cli import main

    threads = torch.get_num_threads()

    def call(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    yield call
    torch.set_num_threads(threads)


CLI_CASES = {
    "guidance -1": (["sample", "--model", "ddpm-class", "--guidance", "-1", "--out", "X"], "must be >= 0"),
    "guidance inf": (["sample", "--model", "ddpm-class", "--guidance", "inf", "--out", "X"], "finite"),
    "sigma NaN (denoise)": (["denoise", "--sigma", "NaN"], "finite"),
    "sigma NaN (train)": (["train", "denoiser", "--sigma", "nan", "--out", "X"], "finite"),
    "stride 0": (["sample", "--model", "ddpm-class", "--stride", "0", "--out", "X"], "must be > 0"),
    "steps -5": (["sample", "--model", "flow-class", "--steps", "-5", "--out", "X"], "must be > 0"),
    "labels 10,11": (["sample", "--model", "flow-class", "--labels", "10,11", "--out", "X"], "digits 0-9"),
    "lr 1e999": (["train", "denoiser", "--lr", "1e999", "--out", "X"], "finite"),
    "unknown model ../../etc": (["train", "../../etc", "--out", "X"], "invalid choice"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_out_of_range_values(case, cli, tmp_path):
    args, needle = CLI_CASES[case]
    args = [str(tmp_path / "x.npz") if a == "X" else a for a in args]
    code, out, err = cli(*args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], (code, err)
    assert not any(tmp_path.iterdir())


def test_cli_huge_stride_and_missing_models(cli, tmp_path):
    """Values the parser accepts but no model exists for: one clear line, exit 1."""
    code, _, err = cli(
        "sample",
        "--model",
        "ddpm-class",
        "--stride",
        "5000",
        "--models-dir",
        tmp_path,
        "--out",
        tmp_path / "x.npz",
    )
    assert code == 1 and "python -m engine train ddpm-class" in err and "Traceback" not in err


def test_engine_t_and_i_start_ranges():
    """Where a t or an i_start is taken (the CLI takes neither: pages and the engine do)."""
    from engine.editing import sdedit
    from engine.forward import forward
    from engine.schedule import Schedule

    s = Schedule.cosine()
    for t in (1000, -1):
        with pytest.raises(ValueError, match=r"t must be in \[0, 999\]"):
            forward(torch.zeros(1, 1, 4, 4), t, s)
    with pytest.raises(ValueError, match="i_start must be in"):
        sdedit(lambda x, t, c: x, torch.zeros(1, 1, 4, 4), 99)


@pytest.mark.parametrize(
    "page,state",
    [
        ("a1_forward.py", {"a1_t": 1000}),
        ("a1_forward.py", {"seed": -5}),
        ("a1_forward.py", {"a1_index": 10**9}),
    ],
    ids=["t=1000", "seed=-5", "digit index 1e9"],
)
def test_pages_with_out_of_range_state(page, state, tmp_path, monkeypatch):
    """Session state forged out of range (as a stale session or a script could): no crash."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=60)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
