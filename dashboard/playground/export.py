"""The playground's exports: frames of the particle animation drawn on the server as the
browser draws them (``render_frame``), and GIF, PNG and MP4 files of them. A frame is drawn
only when asked for, so a download encodes on click.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dashboard import images
from engine.toy2d.data import BOX

from .animation import field_scale, time_labels
from .sampling import Run, hue_palette
from .training import label


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))


def render_frame(runs: dict[str, Run], noise_colors: np.ndarray, prog: float, size: int = 300,
                 field: bool = True, paths: bool = True, trails: int = 150) -> np.ndarray:
    """One frame of the animation at ``prog`` in [0, 1] as an (H, W, 3) uint8 picture: the runs
    side by side, as the browser draws them (for GIF, MP4 and PNG exports)."""
    palette = [_rgb(c) for c in hue_palette()]
    font = ImageFont.load_default(12)
    tiles = []
    for run in runs.values():
        im = Image.new("RGB", (size, size + 22), "white")
        d = ImageDraw.Draw(im)
        k_all = len(run.times)
        f = prog * (k_all - 1)
        k = min(int(f), k_all - 2)
        a = f - k
        to_px = lambda p: ((p[..., 0] + BOX) / (2 * BOX) * size, (BOX - p[..., 1]) / (2 * BOX) * size)  # noqa: E731
        if field:
            g = run.field.shape[1]
            v = (1 - a) * run.field[k] + a * run.field[k + 1]
            sp = size / (g + 1)
            typical = field_scale(run.field[k:k + 2])
            scale = 0.9 * sp * ((1 - a) / typical[0] + a / typical[1])
            for r in range(g):
                for q in range(g):
                    dx, dy = v[r, q, 0] * scale, -v[r, q, 1] * scale  # clipped like the browser's
                    length = math.hypot(dx, dy)
                    if length < 0.8:
                        continue
                    if length > 1.3 * sp:
                        dx, dy = dx * 1.3 * sp / length, dy * 1.3 * sp / length
                    px, py = (q + 1) * sp, (r + 1) * sp
                    hx, hy, an = px + dx, py + dy, math.atan2(dy, dx)
                    h = min(5.0, 0.4 * math.hypot(dx, dy))
                    grey = (150, 150, 150)
                    d.line([(px, py), (hx, hy)], fill=grey, width=1)
                    d.line([(hx - h * math.cos(an - 0.45), hy - h * math.sin(an - 0.45)), (hx, hy),
                            (hx - h * math.cos(an + 0.45), hy - h * math.sin(an + 0.45))], fill=grey)
        pos = (1 - a) * run.states[k] + a * run.states[k + 1]
        if paths:  # translucent like the browser's: a wandering DDPM path must not hide the particles
            m = min(trails, pos.shape[0])
            xs, ys = to_px(np.concatenate([run.states[: k + 1, :m], pos[None, :m]]))
            ink = Image.new("L", im.size, 0)
            di = ImageDraw.Draw(ink)
            for i in range(m):
                di.line(list(zip(xs[:, i].tolist(), ys[:, i].tolist(), strict=True)), fill=80)
            im.paste((30, 30, 30), mask=ink)
        xs, ys = to_px(pos)
        for c, rgb in enumerate(palette):
            idx = np.nonzero(noise_colors == c)[0]
            pts = [(float(x), float(y)) for x, y in zip(xs[idx], ys[idx], strict=True)]
            for ox, oy in ((0, 0), (1, 0), (0, 1), (1, 1)):
                d.point([(x + ox, y + oy) for x, y in pts], fill=rgb)
        d.rectangle([0, 0, size - 1, size - 1], outline=(210, 210, 210))
        d.rectangle([1, 1, 74, 18], fill=(255, 255, 255))
        d.text((5, 3), time_labels(run, [run.times[round(f)]])[0], fill=(49, 51, 63), font=font)
        # the default font has no Greek: "DDPM (eps)"
        d.text((5, size + 4), f"{label(run.objective)}, NFE {run.nfe}".replace("ε", "eps"), fill=(49, 51, 63),
               font=font)
        tiles.append(np.asarray(im))
    gap = np.full((size + 22, 8, 3), 255, np.uint8)
    return np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)


class Frames(Sequence):
    """``count`` frames of the animation, each drawn only when asked for (downloads encode on click)."""

    def __init__(self, runs: dict[str, Run], noise_colors: np.ndarray, count: int = 48, **kw):
        self.runs, self.colors, self.count, self.kw = runs, noise_colors, count, kw

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self.count))]
        if not -self.count <= k < self.count:
            raise IndexError(k)
        return render_frame(self.runs, self.colors, (k % self.count) / max(1, self.count - 1), **self.kw)


def frames_png(runs: dict[str, Run], noise_colors: np.ndarray, progs=(0.0, 0.25, 0.5, 0.75, 1.0),
               size: int = 240) -> bytes:
    """The animation at a few moments, one row per moment, as PNG bytes."""
    rows = [render_frame(runs, noise_colors, p, size=size) for p in progs]
    return images.png(images.grid(rows, ncols=1, pad=6))


def has_mp4() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def mp4(frames: Sequence[np.ndarray], fps: int = 20) -> bytes:
    """An H.264 MP4 of the frames through imageio-ffmpeg (its bundled ffmpeg); even sizes only."""
    import imageio_ffmpeg  # optional: only where MP4 export is installed

    first = frames[0]
    h, w = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(path, (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=1, quality=7)
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f[:h, :w, :3]))
        writer.close()
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)
