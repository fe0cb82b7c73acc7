"""Upload validation (dashboard/uploads.py) on generated files: every odd case either becomes
a clean (C, size, size) float image in [0, 1] or a clear UploadError, never a crash."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dashboard.uploads import MAX_PIXELS, UploadError, load_image


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def digit_like(mode: str = "L", size=(40, 40), dark_on_light=False) -> Image.Image:
    a = np.zeros(size[::-1], dtype=np.uint8)
    a[8:32, 18:22] = 255  # a vertical bar: a "1"
    if dark_on_light:
        a = 255 - a
    return Image.fromarray(a, "L").convert(mode)


def check(result, channels: int, size: int):
    assert result.image.shape == (channels, size, size)
    assert result.image.dtype == np.float32
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0


def test_plain_png_gray_and_rgb():
    data = encode(digit_like("L"))
    check(load_image(data, 28, "L"), 1, 28)
    check(load_image(data, 64, "RGB"), 3, 64)


def test_mnist_style_inverts_dark_on_light_drawings():
    r = load_image(encode(digit_like("L", dark_on_light=True)), 28, "L")
    assert r.image[0, 0, 0] < 0.1 and r.image[0, 14, 14] > 0.5
    assert any("inverted" in n for n in r.notes)


@pytest.mark.parametrize("text", [b"", b"hello, not an image", b"%PDF-1.4\n%%EOF", b"\x89PNG\r\n\x1a\n"])
def test_not_an_image(text):
    with pytest.raises(UploadError):
        load_image(text)


def test_extension_is_irrelevant_content_decides():
    # JPEG bytes (whatever the file was called) are read as JPEG
    r = load_image(encode(digit_like("RGB"), "JPEG"), 28, "L")
    assert r.format == "JPEG"


def test_truncated_png():
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(UploadError, match="truncated|damaged"):
        load_image(data[: len(data) // 2], 28)


def _png_with_size(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims width x height (a decompression bomb)."""
    raw = encode(Image.new("L", (8, 8)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return raw[:8] + patched + raw[8 + 25 :]


@pytest.mark.parametrize("side", [6000, 20000, 60000])
def test_decompression_bomb_refused(side):
    assert side * side > MAX_PIXELS
    with pytest.raises(UploadError, match="too large|megapixels"):
        load_image(_png_with_size(side, side), 28)


def test_tiny_image_refused():
    with pytest.raises(UploadError, match="at least"):
        load_image(encode(Image.new("L", (4, 4))), 28)


def test_cmyk_jpeg():
    im = Image.new("CMYK", (50, 30), (0, 255, 255, 0))  # red
    r = load_image(encode(im, "JPEG"), 32, "RGB", mnist_style=False)
    check(r, 3, 32)
    assert r.image[0].mean() > 0.8 and r.image[1].mean() < 0.2
    assert any("CMYK" in n for n in r.notes)
    assert any("square" in n for n in r.notes)


def test_16bit_png():
    a = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    im = Image.fromarray(a)
    assert im.mode.startswith("I")
    r = load_image(encode(im), 28, "L", mnist_style=False)
    check(r, 1, 28)
    assert r.image.max() > 0.9 and r.image.min() < 0.1


def test_rgba_on_black_for_mnist_and_white_for_photos():
    im = Image.new("RGBA", (32, 32), (255, 255, 255, 0))  # fully transparent
    assert load_image(encode(im), 28, "L").image.max() < 0.01
    assert load_image(encode(im), 28, "RGB", mnist_style=False).image.min() > 0.99


def test_palette_and_1bit():
    pal = digit_like("RGB").convert("P", palette=Image.ADAPTIVE, colors=4)
    check(load_image(encode(pal), 28, "L"), 1, 28)
    check(load_image(encode(digit_like("1")), 28, "L"), 1, 28)


def test_animated_gif_first_frame():
    frames = [Image.new("L", (32, 32), v) for v in (255, 0, 128)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    r = load_image(buf.getvalue(), 28, "L", mnist_style=False)
    assert r.image.mean() > 0.95
    assert any("first frame" in n for n in r.notes)


def test_exif_rotation_applied():
    a = np.zeros((20, 40), dtype=np.uint8)  # wide; white on the left half
    a[:, :20] = 255
    im = Image.fromarray(a, "L")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    r = load_image(encode(im, "JPEG", exif=exif.tobytes(), quality=100), 28, "L", mnist_style=False)
    assert any("EXIF" in n for n in r.notes)
    # after rotating 90 degrees clockwise, the white half is on top
    assert r.image[0, :10].mean() > 0.8 and r.image[0, -10:].mean() < 0.2


def test_float_tiff():
    im = Image.fromarray(np.linspace(-3, 5, 16 * 16, dtype=np.float32).reshape(16, 16), "F")
    check(load_image(encode(im, "TIFF"), 28, "L", mnist_style=False), 1, 28)


def test_oversized_file_refused():
    with pytest.raises(UploadError, match="MB"):
        load_image(b"\0" * (11 * 1024 * 1024))
