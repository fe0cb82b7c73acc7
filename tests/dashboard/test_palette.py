"""Issue 20, item 2: chart colours readable on a projector and for colour-blind students.

Every series colour holds 3:1 (WCAG 1.4.11, graphical objects) against white and against
Streamlit's dark background; the six stay apart (CAM02-UCS distance ≥ 10) seen normally and under
full protan, deutan and tritan simulation (Machado et al. 2009, ``colorspacious``); and a chart's
series differ by dash or marker as well, so colour is never the only channel (WCAG 1.4.1).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dashboard import curves, palette

cs = pytest.importorskip("colorspacious", reason="pip install -r requirements-test.txt")

DARK_BG = "#0e1117"  # Streamlit's dark theme background
D3 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")  # Plotly's default six


def rgb(h: str) -> np.ndarray:
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)]) / 255


def luminance(h: str) -> float:
    c = rgb(h)
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def closest_pair(colours) -> float:
    """Smallest CAM02-UCS distance between two colours, normally and under each deficiency."""
    views = [None, "protanomaly", "deuteranomaly", "tritanomaly"]
    worst = np.inf

    def simulate(h: str, kind: str) -> np.ndarray:
        cvd = {"name": "sRGB1+CVD", "cvd_type": kind, "severity": 100}
        return np.clip(cs.cspace_convert(rgb(h), cvd, "sRGB1"), 0, 1)

    for kind in views:
        seen = [rgb(h) if kind is None else simulate(h, kind) for h in colours]
        ucs = [cs.cspace_convert(c, "sRGB1", "CAM02-UCS") for c in seen]
        worst = min(worst, min(np.linalg.norm(a - b) for a, b in itertools.combinations(ucs, 2)))
    return float(worst)


def test_series_colours_hold_3_to_1_on_light_and_dark():
    for h in palette.SERIES:
        assert contrast(h, "#ffffff") >= 3.0 and contrast(h, DARK_BG) >= 3.0, h


def test_series_colours_stay_apart_under_colour_vision_deficiencies():
    assert closest_pair(palette.SERIES) >= 10.0
    assert closest_pair(palette.SERIES[:3]) >= 20.0  # most charts have two or three series
    assert closest_pair(D3) < 5.0  # what the test guards against: Plotly's default six do not


def test_series_differ_by_more_than_colour():
    styles = [(palette.line(i)["dash"], palette.marker(i)["symbol"]) for i in range(len(palette.SERIES))]
    assert len({d for d, _ in styles}) == len(styles) and len({s for _, s in styles}) == len(styles)
    n = 40
    logs = [curves.Curve(f"run {k}", np.arange(n), np.arange(n) / 4, np.linspace(1, 0.1, n) * (k + 1),
                         np.full(n, 1e-3)) for k in range(3)]
    shown = [t for t in curves.loss_figure(logs).data if t.showlegend is not False]
    assert len(shown) == 3 and len({t.line.dash for t in shown}) == 3
