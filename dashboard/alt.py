"""Text alternatives (WCAG 1.1.1): what an image or a chart shows, in words, from its data.

A screen reader reads an image's ``alt`` and a chart's ``aria-label`` instead of the picture, so
both are written from what was drawn: an image's alt from its caption and what the page knows
about it (``ui.image(..., alt=...)``); a chart's from its own traces (``chart``): its title, its
axes, and per series where it starts, where it ends and its extremes. No Streamlit here.
"""

from __future__ import annotations

import math
import re

import numpy as np
import plotly.graph_objects as go

MAX_SERIES = 6  # a summary names this many series, then says how many more there are
_MARKUP = re.compile(r"\*\*|__|`|\$|\\")


def plain(text: str) -> str:
    """Markdown / LaTeX markers out of a caption: what a screen reader should say."""
    return re.sub(r"\s+", " ", _MARKUP.sub("", text)).strip()


def image(caption: str | None, alt: str | None) -> str:
    """An image's alt: ``alt`` when the page wrote one, else its caption in plain words. An image
    with neither is a bug in the page (it would be read as nothing, or as its file name)."""
    text = plain(alt or caption or "")
    if not text:
        raise ValueError("an image needs a caption or an alt text that says what it shows")
    return text


def level(abar: float) -> str:
    """How much of x_t = sqrt(ᾱ) x_0 + sqrt(1 - ᾱ) ε is still the image, in words."""
    signal = math.sqrt(max(abar, 0.0))  # x_0's share of x_t's amplitude
    return next(w for cut, w in ((0.95, "barely touched by noise"), (0.75, "lightly noisy"),
                                 (0.45, "about half noise"), (0.15, "mostly noise"),
                                 (-1.0, "all noise to the eye")) if signal > cut)


def noisy(what: str, t: int, abar: float) -> str:
    """x_t in words: "x_t at t = 500 (ᾱ = 0.49): test digit #0 (a 7), about half noise"."""
    return f"x_t at t = {t} (ᾱ = {abar:.2f}): {what}, {level(abar)}"


def _text(title) -> str:
    return plain(re.sub(r"<[^>]+>", " ", str(getattr(title, "text", None) or "")))


def _number(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def _series(trace) -> str | None:
    """One trace in words: "loss, 100 points, from 0.31 to 0.02 (lowest 0.019 at 96)"."""
    name = plain(str(trace.name or trace.type))
    if trace.type == "histogram":
        x = np.asarray(trace.x if trace.x is not None else [], dtype=float)
        if x.size == 0:
            return None
        return (f"{name}: a histogram of {x.size} values from {_number(x.min())} to "
                f"{_number(x.max())}, mean {_number(x.mean())}")
    if trace.type not in ("scatter", "scattergl", "bar"):
        return f"{name} ({trace.type})"
    x, y = trace.x, trace.y
    if trace.type == "bar" and trace.orientation == "h":
        x, y = y, x  # the values run along x
    try:
        y = np.asarray(y if y is not None else [], dtype=float).ravel()
    except (TypeError, ValueError):
        return f"{name} ({trace.type})"
    if y.size == 0 or not np.isfinite(y).any():
        return None
    x = np.asarray(x if x is not None else np.arange(y.size), dtype=object).ravel()
    if trace.type == "bar" and x.size == y.size and y.size <= 8:  # few bars: every one
        return f"{name}: " + ", ".join(f"{plain(str(k))} {_number(v)}" for k, v in zip(x, y, strict=True))
    fin = np.isfinite(y)
    lo, hi = int(np.nanargmin(np.where(fin, y, np.nan))), int(np.nanargmax(np.where(fin, y, np.nan)))
    at = (lambda i: f" at {x[i]}") if x.size == y.size else (lambda i: "")
    if y.size == 1:
        return f"{name}: {_number(y[0])}{at(0)}"
    return (f"{name}, {y.size} points, from {_number(y[0])} to {_number(y[-1])} "
            f"(lowest {_number(y[lo])}{at(lo)}, highest {_number(y[hi])}{at(hi)})")


def chart(fig: go.Figure) -> str:
    """A chart's summary from its data: title, axes, and each series' course (first
    ``MAX_SERIES``), e.g. "Chart: loss over steps. x: step, y: MSE. train loss, 100 points, …"."""
    layout = fig.layout
    title = _text(layout.title)
    parts = [f"Chart: {title}." if title else "Chart."]
    axes = [f"{a}: {_text(getattr(layout, f'{a}axis').title)}" for a in ("x", "y")]
    axes = [a for a in axes if not a.endswith(": ")]
    if axes:
        parts.append(", ".join(axes) + ".")
    series = [s for s in map(_series, fig.data) if s]
    parts += [s + "." for s in series[:MAX_SERIES]]
    if len(series) > MAX_SERIES:
        parts.append(f"And {len(series) - MAX_SERIES} more series.")
    lines = [_text(a) for a in layout.annotations or ()]  # marked values: "blank 0.64"
    lines = [a for a in lines if a]
    if lines:
        parts.append("Marked: " + "; ".join(lines[:MAX_SERIES]) + ".")
    return " ".join(parts)
