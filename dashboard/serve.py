"""Start the dashboard: ``python -m dashboard.serve [streamlit options]`` is ``streamlit run
dashboard/app.py [options]`` with the modules every page imports (torch, Plotly, the engine and
the dashboard's own) imported before the server listens.

A Streamlit server imports a page's modules during the first visitor's first view; those imports
cost about 1.4 CPU-s on a 2-core laptop, which would land on whoever opens the app first. Paying
them at start-up keeps every first view light (docs/performance.md). ``streamlit run
dashboard/app.py`` still works: it only pays the imports on the first view instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().with_name("app.py")


def preload() -> None:
    """Import what the pages import (nothing runs; Streamlit's caches stay empty)."""
    import importlib

    importlib.import_module("engine")  # first: it sets the OpenMP environment before torch loads
    import plotly.graph_objects  # noqa: F401
    import torch  # noqa: F401

    from dashboard import backends, cache, cache_partb, controls, curves, figures, images, ui  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    root = str(APP.parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    preload()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
