"""Pictures for every page, Part A and Part B: numpy in, uint8 arrays, PNG, GIF or data URIs out.

Images are float arrays in [0, 1] shaped (H, W), (C, H, W) or (H, W, C), or uint8. They leave as
PNG (lossless: JPEG smears noise), upscaled with nearest neighbour so a 28x28 digit stays crisp
on a projector, and a row or grid of images is composed into one picture. No Streamlit here.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont


def to_uint8(img) -> np.ndarray:
    """Float [0, 1] (tensor or array; (H, W), (C, H, W), (H, W, C)) -> uint8 HxW or HxWx3.
    Values outside [0, 1] are clipped, NaN shows black."""
    if hasattr(img, "detach"):
        img = img.detach().float().cpu().numpy()
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype == np.uint8:
        return a
    a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def upscale(img, scale: int) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor: uint8 out."""
    a = to_uint8(img)
    if scale <= 1:
        return a
    return np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)


def _as_rgb(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a


def grid(images: Sequence, ncols: int | None = None, scale: int = 1, pad: int = 2,
         pad_value: int = 255) -> np.ndarray:
    """Compose images (all the same size) into one uint8 picture, row-major, ``pad`` pixels of
    ``pad_value`` (white) between cells after upscaling; an empty last cell is padding too.
    Gray stays gray unless colours mix."""
    tiles = [upscale(im, scale) for im in images]
    if not tiles:
        raise ValueError("grid needs at least one image")
    if any(t.shape[:2] != tiles[0].shape[:2] for t in tiles):
        raise ValueError("grid images must share one size")
    if any(t.ndim == 3 for t in tiles):
        tiles = [_as_rgb(t) for t in tiles]
    n = len(tiles)
    ncols = max(1, min(ncols or n, n))
    nrows = -(-n // ncols)
    h, w = tiles[0].shape[:2]
    shape = (nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad) + tiles[0].shape[2:]
    out = np.full(shape, pad_value, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, ncols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tile
    return out


def table(cells: np.ndarray, scale: int = 1, pad: int = 2) -> np.ndarray:
    """A (rows, cols, H, W) array of gray images as one uint8 picture, laid out as it is."""
    rows, cols = cells.shape[:2]
    return grid(list(np.asarray(cells).reshape(rows * cols, *cells.shape[2:])), cols, scale, pad)


def digit_columns(images: np.ndarray, per_digit: int) -> np.ndarray:
    """(10 * per_digit, H, W) grouped by digit -> (per_digit, 10, H, W): one column per digit."""
    a = np.asarray(images)
    return a.reshape(10, per_digit, *a.shape[1:]).swapaxes(0, 1)


def labeled_row(images: Sequence, labels: Sequence[str], scale: int = 4, pad: int = 4) -> np.ndarray:
    """One row of images with a small text label under each (for the PNG download)."""
    row = _as_rgb(grid(images, len(images), scale, pad))
    h, w = row.shape[:2]
    cell = (w - (len(images) - 1) * pad) // len(images)
    font = _label_font(cell, labels)
    canvas = Image.new("RGB", (w, h + font.size + 6), "white")
    canvas.paste(Image.fromarray(row), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, text in enumerate(labels):
        draw.text((k * (cell + pad) + 2, h + 3), str(text), fill="black", font=font)
    return np.asarray(canvas)


def _label_font(cell: int, labels: Sequence[str]) -> ImageFont.FreeTypeFont:
    """Pillow's built-in font, as large as the widest label allows in a ``cell`` (readable on a
    projector: up to 1/7 of the tile, never below 10 px)."""
    size = max(10, cell // 7)
    while size > 10:
        font = ImageFont.load_default(size)
        if max((font.getlength(str(t)) for t in labels), default=0) <= cell - 4:
            return font
        size -= 1
    return ImageFont.load_default(size)


def png(img, scale: int = 1) -> bytes:
    """PNG bytes of one image (or an already composed grid), nearest-neighbour upscaled."""
    buf = io.BytesIO()
    Image.fromarray(upscale(img, scale)).save(buf, format="PNG")
    return buf.getvalue()


def data_uri(img, scale: int = 1) -> str:
    """A PNG data URI: how Plotly animation frames carry crisp pixels to the browser."""
    return "data:image/png;base64," + base64.b64encode(png(img, scale)).decode()


def gif(frames: Sequence, scale: int = 4, duration_ms: int = 80, hold_last_ms: int = 800,
        captions: Sequence[str] | None = None) -> bytes:
    """An animated GIF (loops forever) from frames of one size, the last frame lingering; an
    optional caption strip under each frame."""
    ims = []
    for k, f in enumerate(frames):
        im = Image.fromarray(upscale(f, scale)).convert("RGB")
        if captions is not None:
            canvas = Image.new("RGB", (im.width, im.height + 16), "white")
            canvas.paste(im, (0, 0))
            ImageDraw.Draw(canvas).text((4, im.height + 2), captions[k], fill="black")
            im = canvas
        ims.append(im)
    if not ims:
        raise ValueError("gif needs at least one frame")
    durations = [duration_ms] * (len(ims) - 1) + [max(duration_ms, hold_last_ms)]
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=durations, loop=0)
    return buf.getvalue()


def side_by_side(*frames: np.ndarray, gap: int = 4) -> np.ndarray:
    """uint8 frames of one height joined left to right with white gaps."""
    tiles = [to_uint8(f) for f in frames]
    sep = np.full((tiles[0].shape[0], gap) + tiles[0].shape[2:], 255, np.uint8)
    return np.concatenate([t for pair in zip(tiles, [sep] * len(tiles), strict=True) for t in pair][:-1], 1)


def normalize(x) -> np.ndarray:
    """Min-max to [0, 1] for showing noise, FFT magnitudes and other unbounded maps."""
    a = np.asarray(x, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    return np.zeros_like(a) if hi - lo < 1e-12 else (a - lo) / (hi - lo)


# ----------------------------------------------------------------------------- drawing canvas


def canvas_drawing(rgba: np.ndarray | None, size: int = 28) -> np.ndarray | None:
    """A white-on-black canvas (H, W, 4) uint8 as a ``size`` x ``size`` gray image in [0, 1]
    (box-averaged like MNIST's antialiasing), or None when nothing is drawn on it."""
    if rgba is None or rgba.ndim != 3 or rgba.shape[-1] != 4:
        return None
    gray = rgba[..., :3].astype(np.float32).max(-1) * (rgba[..., 3].astype(np.float32) / 255.0)
    if gray.max() < 32:  # blank, or a stray dot
        return None
    small = Image.fromarray(gray.clip(0, 255).astype(np.uint8)).resize((size, size), Image.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def canvas_colour(rgba: np.ndarray | None, size: int, background: str = "#87ceeb") -> np.ndarray | None:
    """A colour drawing (H, W, 4) uint8, composited over the ``background`` colour, as a (3,
    ``size``, ``size``) image in [0, 1] (box-averaged); None when nothing is drawn."""
    if rgba is None or rgba.ndim != 3 or rgba.shape[-1] != 4:
        return None
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    bg = np.array(ImageColor.getrgb(background)[:3], np.float32)
    rgb = rgba[..., :3].astype(np.float32) * alpha + bg * (1 - alpha)
    if np.abs(rgb - bg).max() < 32:  # blank, or a stray dot
        return None
    small = Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).resize((size, size), Image.BOX)
    return np.asarray(small, dtype=np.float32).transpose(2, 0, 1) / 255.0


def sketch(size: int) -> np.ndarray:
    """A child's drawing (sky, sun, green hill, a red house) as (3, size, size) in [0, 1]: what
    the Drawing source starts from until someone draws."""
    from PIL import ImageDraw

    n = 256
    img = Image.new("RGB", (n, n), (135, 206, 235))
    d = ImageDraw.Draw(img)
    d.ellipse((170, 20, 230, 80), fill=(255, 215, 0))
    d.ellipse((-80, 150, 340, 420), fill=(60, 160, 60))
    d.rectangle((70, 120, 150, 190), fill=(200, 40, 40))
    d.polygon([(60, 122), (110, 75), (160, 122)], fill=(120, 60, 30))
    d.rectangle((100, 150, 122, 190), fill=(90, 50, 20))
    small = img.resize((size, size), Image.BOX)
    return np.asarray(small, dtype=np.float32).transpose(2, 0, 1) / 255.0


def enlarged(img, px: int) -> Image.Image:
    """An image ((C, H, W) or (H, W) in [0, 1]) as a ``px`` x ``px`` PIL image, nearest
    neighbour: the background to paint a mask on."""
    return Image.fromarray(to_uint8(img)).resize((px, px), Image.NEAREST)


def canvas_mask(rgba: np.ndarray | None, height: int, width: int, cover: float = 0.25) -> np.ndarray | None:
    """The painted part of a canvas (H, W, 4) as an inpainting mask (height, width) of 0/1:
    a pixel is 1 where at least ``cover`` of its area is painted. None when nothing is."""
    if rgba is None or rgba.ndim != 3 or rgba.shape[-1] != 4:
        return None
    small = Image.fromarray(rgba[..., 3]).resize((width, height), Image.BOX)
    mask = (np.asarray(small, dtype=np.float32) / 255.0 >= cover).astype(np.float32)
    return mask if mask.any() else None


def strokes_image(
    strokes: Sequence[tuple[float, float, float, float]],
    width: float = 2.5,
    size: int = 28,
    supersample: int = 8,
) -> np.ndarray:
    """A white-on-black drawing (like MNIST) from line strokes (x0, y0, x1, y1) in pixel
    coordinates of a ``size`` x ``size`` canvas, antialiased by drawing large and shrinking."""
    big = size * supersample
    im = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(im)
    r = width * supersample / 2
    for x0, y0, x1, y1 in strokes:
        p0 = (x0 * supersample, y0 * supersample)
        p1 = (x1 * supersample, y1 * supersample)
        draw.line([p0, p1], fill=255, width=max(1, int(2 * r)))
        for x, y in (p0, p1):  # round caps
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    small = im.resize((size, size), Image.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0
