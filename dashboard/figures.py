"""Pure figure builders: numpy in, PNG / GIF bytes, Plotly figures or HTML out. No Streamlit.

Images are float arrays in [0, 1] shaped (H, W), (C, H, W) or (H, W, C), or uint8. They leave
as PNG (lossless: JPEG smears noise), upscaled with nearest neighbour so a 28x28 digit stays
crisp on a projector, and a row or grid of images is composed into one picture.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

# Plotly's modebar camera button downloads the chart as a PNG, in the browser.
PLOTLY_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2},
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}


PALETTE = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def to_uint8(img) -> np.ndarray:
    """Float [0, 1] (tensor or array; (H, W), (C, H, W), (H, W, C)) -> uint8 HxW or HxWx3."""
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


def grid(
    images: Sequence, ncols: int | None = None, scale: int = 1, pad: int = 2, pad_value: int = 255
) -> np.ndarray:
    """Compose images (all the same size) into one uint8 picture, row-major, ``pad`` pixels
    of ``pad_value`` between cells (after upscaling). Gray stays gray unless colours mix."""
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


def gif(frames: Sequence, scale: int = 4, duration_ms: int = 80, hold_last_ms: int = 800) -> bytes:
    """An animated GIF (loops forever) from frames of one size; the last frame lingers."""
    ims = [Image.fromarray(upscale(f, scale)).convert("RGB") for f in frames]
    if not ims:
        raise ValueError("gif needs at least one frame")
    durations = [duration_ms] * (len(ims) - 1) + [hold_last_ms]
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=durations, loop=0)
    return buf.getvalue()


def to_unit(x) -> np.ndarray:
    """Model pixels in [-1, 1] -> display values in [0, 1] (clipped)."""
    return np.clip((np.asarray(x, dtype=np.float32) + 1) / 2, 0, 1)


def normalize(x) -> np.ndarray:
    """Min-max to [0, 1] for showing noise, FFT magnitudes and other unbounded maps."""
    a = np.asarray(x, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    return np.zeros_like(a) if hi - lo < 1e-12 else (a - lo) / (hi - lo)


# ----------------------------------------------------------------------------- Plotly charts


def schedule_figure(alphas_cumprod, t: int | None = None, height: int = 320) -> go.Figure:
    """abar_t (left axis, linear) and SNR_t = abar_t / (1 - abar_t) (right axis, log) vs t,
    with a marker at ``t``."""
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    ts = np.arange(abar.shape[0])
    snr = abar / np.clip(1 - abar, 1e-300, None)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ts, y=abar, name="ᾱ_t", line={"color": "#1f77b4"}))
    fig.add_trace(go.Scatter(x=ts, y=snr, name="SNR_t (log)", yaxis="y2", line={"color": "#d62728"}))
    if t is not None:
        t = int(t)
        fig.add_vline(x=t, line={"color": "gray", "dash": "dot"})
        fig.add_trace(
            go.Scatter(
                x=[t],
                y=[abar[t]],
                mode="markers",
                name=f"t = {t}",
                marker={"size": 11, "color": "#1f77b4", "line": {"color": "black", "width": 1}},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[t],
                y=[snr[t]],
                mode="markers",
                yaxis="y2",
                showlegend=False,
                marker={"size": 11, "color": "#d62728", "line": {"color": "black", "width": 1}},
            )
        )
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 60, "t": 30, "b": 40},
        xaxis={"title": "t", "range": [0, abar.shape[0] - 1]},
        yaxis={"title": "ᾱ_t", "range": [0, 1.02]},
        yaxis2={
            "title": "SNR_t",
            "type": "log",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "dtick": 3,
            "exponentformat": "power",
        },
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )
    return fig


def metric_vs_t_figure(
    ts: Sequence[int],
    series: dict[str, Sequence[float]],
    metric: str = "PSNR (dB)",
    mark_t: int | None = None,
    height: int = 320,
) -> go.Figure:
    """One line per method (e.g. blur, one-step, iterative) of a quality metric vs t."""
    fig = go.Figure()
    for k, (name, values) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(
                x=list(ts),
                y=list(values),
                mode="lines+markers",
                name=name,
                line={"color": PALETTE[k % len(PALETTE)]},
            )
        )
    if mark_t is not None:
        fig.add_vline(x=int(mark_t), line={"color": "gray", "dash": "dot"})
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
        xaxis={"title": "t (more noise →)"},
        yaxis={"title": metric},
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )
    return fig


# ----------------------------------------------------------------------------- forward scrubber


def _b64_float32(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def forward_scrubber_html(x_0, eps, alphas_cumprod, t: int = 500, scale: int = 6) -> str:
    """A self-contained HTML/JS block: an <input type=range> over t and two canvases showing
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Eq. A.2) and eps, recomputed in the browser
    on every input event (no server round trip). x_0 and eps are (C, H, W) float in [-1, 1]
    model units (C = 1 or 3); abar has one value per t. The last draw's latency in ms is kept
    in ``window.scrubLatencies`` so a browser test can measure it."""
    x_0 = np.asarray(x_0, dtype=np.float32)
    eps = np.asarray(eps, dtype=np.float32)
    if x_0.ndim == 2:
        x_0, eps = x_0[None], eps[None]
    if x_0.shape != eps.shape or x_0.ndim != 3:
        raise ValueError(f"x_0 {x_0.shape} and eps {eps.shape} must both be (C, H, W)")
    c, h, w = x_0.shape
    abar = [float(v) for v in np.asarray(alphas_cumprod, dtype=np.float64)]
    tmax = len(abar) - 1
    t = int(min(max(t, 0), tmax))
    data = json.dumps(
        {
            "c": c,
            "h": h,
            "w": w,
            "scale": int(scale),
            "t": t,
            "abar": abar,
            "x0": _b64_float32(x_0),
            "eps": _b64_float32(eps),
        }
    )
    return (
        _SCRUBBER_TEMPLATE.replace("__DATA__", data).replace("__TMAX__", str(tmax)).replace("__T__", str(t))
    )


_SCRUBBER_TEMPLATE = """<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;font-family:"Source Sans Pro",sans-serif;color:#31333f}
.row{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}
figure{margin:0;text-align:center} figcaption{font-size:14px;margin-top:2px}
canvas{image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #ddd}
#t{width:min(640px,95vw);accent-color:#ff4b4b} .lbl{font-size:16px;margin:4px 0 8px}
button{font-size:13px;margin-left:8px}
</style></head><body>
<div class="lbl"><label for="t">t = <b id="tv">__T__</b></label>
 &nbsp; ᾱ<sub>t</sub> = <span id="ab"></span> &nbsp; √ᾱ<sub>t</sub> = <span id="sa"></span>
 &nbsp; √(1−ᾱ<sub>t</sub>) = <span id="sn"></span>
 <button id="dl" title="Download the x_t shown as PNG">PNG</button></div>
<input id="t" type="range" min="0" max="__TMAX__" step="1" value="__T__" aria-label="t">
<div class="row"><figure><canvas id="xt"></canvas><figcaption>x<sub>t</sub></figcaption></figure>
<figure><canvas id="ep"></canvas><figcaption>ε (the noise, fixed by the seed)</figcaption></figure></div>
<script>
const D = __DATA__;
function f32(b64){const s=atob(b64);const u=new Uint8Array(s.length);
 for(let i=0;i<s.length;i++)u[i]=s.charCodeAt(i);return new Float32Array(u.buffer);}
const x0=f32(D.x0), eps=f32(D.eps), n=D.h*D.w;
function setup(cv){cv.width=D.w;cv.height=D.h;cv.style.width=(D.w*D.scale)+"px";
 cv.style.height=(D.h*D.scale)+"px";return cv.getContext("2d");}
const cx=setup(document.getElementById("xt")), ce=setup(document.getElementById("ep"));
const img=cx.createImageData(D.w,D.h);
function paint(ctx,im,get){const p=im.data;
 for(let i=0;i<n;i++){for(let k=0;k<3;k++){const ch=D.c===3?k:0;let v=(get(ch*n+i)+1)*127.5;
  p[4*i+k]=v<0?0:v>255?255:v;}p[4*i+3]=255;}
 ctx.putImageData(im,0,0);}
const slider=document.getElementById("t");
window.scrubLatencies=[];let tKey=null;
slider.addEventListener("keydown",()=>{tKey=performance.now();});
function draw(){const t=+slider.value,a=D.abar[t],s=Math.sqrt(a),r=Math.sqrt(1-a);
 paint(cx,img,i=>s*x0[i]+r*eps[i]);
 document.getElementById("tv").textContent=t;document.getElementById("ab").textContent=a.toFixed(4);
 document.getElementById("sa").textContent=s.toFixed(3);document.getElementById("sn").textContent=r.toFixed(3);
 if(tKey!==null){window.scrubLatencies.push(performance.now()-tKey);tKey=null;}}
slider.addEventListener("input",draw);
paint(ce,ce.createImageData(D.w,D.h),i=>eps[i]/3);
draw();
document.getElementById("dl").addEventListener("click",()=>{const big=document.createElement("canvas");
 big.width=D.w*D.scale;big.height=D.h*D.scale;const g=big.getContext("2d");g.imageSmoothingEnabled=false;
 g.drawImage(document.getElementById("xt"),0,0,big.width,big.height);const a=document.createElement("a");
 a.href=big.toDataURL("image/png");a.download="x_t_"+slider.value+".png";a.click();});
</script></body></html>"""


def fft_pair_figure(magnitudes: dict[str, np.ndarray], height: int = 300) -> go.Figure:
    """Side-by-side heatmaps of log(1 + |FFT|) maps (centred: low frequencies in the middle)."""
    from plotly.subplots import make_subplots

    names = list(magnitudes)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
    for k, name in enumerate(names):
        fig.add_trace(
            go.Heatmap(z=np.asarray(magnitudes[name])[::-1], colorscale="Viridis", showscale=False),
            row=1,
            col=k + 1,
        )
        fig.update_xaxes(showticklabels=False, row=1, col=k + 1)
        fig.update_yaxes(showticklabels=False, scaleanchor=f"x{k + 1 if k else ''}", row=1, col=k + 1)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


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
