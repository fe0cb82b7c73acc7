"""Uploaded images: validated by content (never by file name), converted to what a model eats.

Pillow decides what a file is. We accept only raster formats Pillow decodes itself (no
Ghostscript/EPS), refuse files whose header promises too many pixels (decompression bombs) before
decoding, take the first frame of animations, apply EXIF rotation, and convert CMYK, 16-bit,
float, palette and transparent images to 8-bit gray or RGB. The result is resized and
center-cropped to the model's square size. Failures raise ``UploadError`` with a sentence the
page shows as is.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
MAX_BYTES = 10 * 1024 * 1024  # matches server.maxUploadSize in .streamlit/config.toml
MAX_PIXELS = 25_000_000  # 25 MP: any phone photo; far below what a bomb unpacks to
MIN_SIDE = 8


class UploadError(ValueError):
    """The upload cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class UploadedImage:
    """``image`` is float32 (C, H, W) in [0, 1] with C = 1 (mode "L") or 3 (mode "RGB")."""

    image: np.ndarray
    original_size: tuple[int, int]
    format: str
    notes: list[str] = field(default_factory=list)


def _to_8bit(im: Image.Image, notes: list[str]) -> Image.Image:
    """Any Pillow mode -> "L", "LA", "RGB" or "RGBA" with 8 bits per channel."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float64)
        finite = np.isfinite(a)
        if not finite.all():  # float TIFFs may hold NaN/inf: they would poison min/max and the cast
            if not finite.any():
                raise UploadError("The image holds no finite pixel values (all NaN or infinite).")
            notes.append(f"{int((~finite).sum())} NaN/infinite pixels set to the image's range")
            a = np.nan_to_num(
                a, nan=float(a[finite].min()), posinf=float(a[finite].max()), neginf=float(a[finite].min())
            )
        lo, hi = float(a.min()), float(a.max())
        if mode.startswith("I;16") or (mode == "I" and hi > 255):
            a = a / 65535.0 if hi > 255 else a / 255.0
            notes.append("16-bit image reduced to 8 bits")
        elif hi > lo and (hi > 1 or lo < 0):
            a = (a - lo) / (hi - lo)
        a = np.clip(a, 0, 1)
        return Image.fromarray((a * 255 + 0.5).astype(np.uint8), "L")
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
        return im.convert("RGB")
    if mode in ("P", "PA"):
        return im.convert("RGBA")
    if mode in ("LAB", "HSV", "YCbCr"):
        return im.convert("RGB")
    try:
        return im.convert("RGBA")
    except (ValueError, OSError) as e:
        raise UploadError(f"unsupported colour mode {mode!r}") from e


def _flatten_alpha(im: Image.Image, background: int, notes: list[str]) -> Image.Image:
    if im.mode not in ("LA", "RGBA"):
        return im
    alpha = im.getchannel("A")
    if alpha.getextrema()[0] < 255:
        notes.append("transparent pixels placed on " + ("black" if background == 0 else "white"))
    base_mode = im.mode[:-1]
    base = Image.new(base_mode, im.size, (background,) * len(base_mode))
    base.paste(im.convert(im.mode[:-1]), mask=alpha)
    return base


def load_image(
    data: bytes, size: int = 28, mode: str = "L", mnist_style: bool | None = None
) -> UploadedImage:
    """Validate ``data`` (the uploaded file's bytes) and return a ``size`` x ``size`` image.

    ``mode`` is "L" (gray, one channel) or "RGB". ``mnist_style`` (default: mode == "L") puts
    transparency on black and inverts dark-on-light drawings, since MNIST digits are white
    strokes on black.
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
    mnist_style = (mode == "L") if mnist_style is None else mnist_style
    if not data:
        raise UploadError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise UploadError(
            f"The file is {len(data) / 2**20:.1f} MB ({len(data):,} bytes); "
            f"the limit is {MAX_BYTES // 2**20} MB."
        )
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise UploadError(
                "This file is not an image we can read (PNG, JPEG, GIF, BMP, WebP or TIFF)."
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError("The image is too large (too many pixels).") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise UploadError(f"The file looks like an image but is damaged ({e}).") from None
        with im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise UploadError(
                    f"The image is {w}x{h} = {w * h / 1e6:.0f} megapixels; the limit is "
                    f"{MAX_PIXELS / 1e6:.0f}. Shrink it first."
                )
            if min(w, h) < MIN_SIDE:
                raise UploadError(f"The image is {w}x{h}; it must be at least {MIN_SIDE}x{MIN_SIDE}.")
            fmt = im.format or "?"
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
                notes.append(f"animated ({im.n_frames} frames): using the first frame")
            try:
                im.load()
                im = ImageOps.exif_transpose(im) or im
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UploadError("The image is too large (too many pixels).") from None
            except (OSError, SyntaxError, ValueError, EOFError) as e:
                raise UploadError(f"The image file is truncated or damaged ({e}).") from None
            if im.size != (w, h):
                notes.append("rotated as its EXIF orientation says")
            im = _to_8bit(im, notes)
    im = _flatten_alpha(im, 0 if mnist_style else 255, notes)
    if mode == "L" and im.mode != "L":
        im = im.convert("L")
        notes.append("colour converted to gray")
    elif mode == "RGB" and im.mode != "RGB":
        im = im.convert("RGB")
    if im.width != im.height:
        notes.append("center-cropped to a square")
    im = ImageOps.fit(im, (size, size), Image.LANCZOS)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if mnist_style and mode == "L":
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        if border.mean() > 0.5:
            arr = 1.0 - arr
            notes.append("inverted: MNIST digits are light strokes on a dark background")
    arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    return UploadedImage(np.ascontiguousarray(arr), (w, h), fmt, notes)
