"""The 2D playground page (``pages/b4_playground.py``) without Streamlit, one module per part:

- ``data``: the user's points (picker sources, a drawing on the canvas, an uploaded CSV);
- ``training``: one press of Train (``Trained``, ``train_models``) and the memo of what the page
  computes from those models;
- ``sampling``: what the page samples from them (``simulate``, ``nfe_sweep``, ``cfg_samples``);
- ``figures``: its Plotly figures and the comparison table;
- ``animation``: the particle animation drawn in the browser (its HTML and JS are
  ``dashboard/web/playground_animation.*``);
- ``export``: frames drawn on the server, as GIF, PNG and MP4.

Flow matching (Part B): x_0 is noise, x_1 data, t runs 0 -> 1. DDPM (Part A): x_0 is data, t
counts down 990 -> 0. The animation shows every run against its *progress* from noise (0) to
data (1), so the two conventions line up; each panel also prints its own t.

The page imports this package only; the names below are its interface.
"""

from engine.toy2d.train import OBJECTIVES

from .animation import QRANGE, animation_height, animation_html, field_scale, layout
from .data import (
    CANVAS_PX,
    DATASETS,
    PEN_COLORS,
    SOURCES,
    UPLOAD_HELP,
    PointCloud,
    PointsError,
    data_key,
    load_csv,
    points_from_canvas,
    preview,
)
from .export import Frames, frames_png, has_mp4, mp4, render_frame
from .figures import (
    CLASS_COLORS,
    METHOD_COLORS,
    density_pair,
    density_row,
    loss_figure,
    metrics_rows,
    nfe_figure,
    points_figure,
    scatter_grid,
)
from .sampling import (
    FEW_STEPS,
    GAMMAS,
    HUES,
    SAMPLING,
    Density,
    Run,
    arrow_grid,
    cfg_samples,
    held_out_class,
    hue_index,
    hue_palette,
    learned_density,
    needed_nfe,
    nfe_sweep,
    simulate,
)
from .training import SHORT, Memo, Trained, label, order, train_models

__all__ = [
    "CANVAS_PX", "CLASS_COLORS", "DATASETS", "FEW_STEPS", "GAMMAS", "HUES", "METHOD_COLORS", "OBJECTIVES",
    "PEN_COLORS", "QRANGE", "SAMPLING", "SHORT", "SOURCES", "UPLOAD_HELP", "Density", "Frames", "Memo",
    "PointCloud", "PointsError", "Run", "Trained", "animation_height", "animation_html", "arrow_grid",
    "cfg_samples", "data_key", "density_pair", "density_row", "field_scale", "frames_png", "has_mp4",
    "held_out_class", "hue_index", "hue_palette", "label", "layout", "learned_density", "load_csv",
    "loss_figure", "metrics_rows", "mp4", "needed_nfe", "nfe_figure", "nfe_sweep", "order", "points_figure",
    "points_from_canvas", "preview", "render_frame", "scatter_grid", "simulate", "train_models",
]
