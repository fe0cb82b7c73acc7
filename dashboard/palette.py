"""The charts' series styles: colours that stay apart under colour-vision deficiencies, each paired
with a dash and a marker so that colour is never the only channel (WCAG 1.4.1, 1.4.11).

``SERIES`` was chosen by measurement (tests/dashboard/test_palette.py recomputes it): from common
chart palettes (D3, Okabe-Ito, Paul Tol) only colours with at least 3:1 contrast on both white
and Streamlit's dark background (#0e1117) qualify, a narrow band of lightness; among those, a
greedy search starting from Okabe-Ito blue and vermillion maximised the smallest CAM02-UCS
distance between any two colours, seen normally and under full protan, deutan and tritan
simulation (Machado et al. 2009, via ``colorspacious``). The six below keep at least 10 apart
in all four views (the first two 49, the first three 21); D3's default six come to 1.6.
"""

from __future__ import annotations

SERIES = ("#0072B2", "#D55E00", "#7f7f7f", "#8c564b", "#CC79A7", "#AA3377")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross")  # all drawn by Scattergl too


def color(i: int) -> str:
    return SERIES[i % len(SERIES)]


def line(i: int, **style) -> dict:
    """Plotly ``line`` of series ``i``: its colour and dash (plus ``style``, e.g. width)."""
    return {"color": color(i), "dash": DASHES[i % len(DASHES)], **style}


def marker(i: int, **style) -> dict:
    """Plotly ``marker`` of series ``i``: its colour and symbol (plus ``style``)."""
    return {"color": color(i), "symbol": SYMBOLS[i % len(SYMBOLS)], **style}
