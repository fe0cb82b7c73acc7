"""The dashboard's browser code as real files: the HTML, JavaScript and CSS that Python modules
send to the browser, read once per process and filled in at run time (an editor, a linter and a
reader see them as what they are, not as Python strings).

- ``forward_scrubber.html`` + ``.js``: the Forward page's t scrubber (``figures.forward_scrubber_html``).
- ``playground_animation.html`` + ``.js``: the 2D playground's particles (``playground.animation``).
- ``presenter_keys.js``, installed by ``presenter_keys.html``, and ``presenter.css``: presenter
  mode (``ui.presenter_keys``, ``ui.page_css``).
- ``a11y.css``: every page's focus rings, text colours and reflow (``ui.page_css``).
- ``nav.js`` + ``nav.css``: the sidebar's page links as a navigation landmark (``app.sidebar_nav``).
- ``common.js``: what every page above shares (the app's theme, the ``aria-live`` announcer); see
  ``docs/accessibility.md``.

A template marks each place to fill as ``__NAME__``; a page's ``<script>`` holds ``__SCRIPT__``,
where ``common.js`` and its own ``.js`` file go (an iframe's ``srcdoc`` cannot load files of its own).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent


@cache
def read(name: str) -> str:
    """The text of the file ``name`` in this folder (read once per process)."""
    return (HERE / name).read_text(encoding="utf-8")


def fill(name: str, **values: str) -> str:
    """The template ``name`` with each ``__KEY__`` replaced by ``values[KEY]``, in the order given
    (put our own code before data, so nothing in the data is taken for a placeholder)."""
    text = read(name)
    for key, value in values.items():
        text = text.replace(f"__{key}__", value)
    return text


def page(name: str, **values: str) -> str:
    """A self-contained HTML page: ``name``.html with ``common.js`` and ``name``.js in its
    ``__SCRIPT__``, then ``values`` filled in."""
    return fill(f"{name}.html", SCRIPT=read("common.js") + read(f"{name}.js"), **values)
