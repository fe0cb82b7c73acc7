"""Shared Streamlit rendering for every page, Part A and Part B: presenter mode, images as PNG,
downloads, charts, errors as messages, and progress bars fed by the engine's step callbacks.

Pages must run on their own (AppTest runs them one by one), so everything here reads the
sidebar's choices with ``st.session_state.get(..., default)``.
"""

from __future__ import annotations

import re
import threading
import time

import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from dashboard import figures, images

SEED_DEFAULT = 0
PERSISTED = "_ui_default_keys"  # session-state keys whose widgets got their default via default()


class Abandoned(Exception):
    """Raised inside a computation whose page run was interrupted (a widget changed)."""


def presenter() -> bool:
    """Presenter mode (sidebar toggle): bigger images, fewer secondary controls."""
    return bool(st.session_state.get("presenter", False))


def seed() -> int:
    """The sidebar's seed (``st.session_state["seed"]``), 0 when the sidebar has not run."""
    try:
        return int(st.session_state.get("seed", SEED_DEFAULT))
    except (TypeError, ValueError):
        return SEED_DEFAULT


def error_box(message: str, fix: str | None = None) -> None:
    """A user-facing error: what happened and the command or action that fixes it."""
    st.error(message + (f"\n\nFix: `{fix}`" if fix else ""))


def default(key: str, value):
    """Give a keyed widget its default through session state (tests and links can preset it),
    and re-assert its current value on every run, before the widget is created.

    Re-assigning matters when a widget was skipped for a run (an early ``st.stop()``): without
    it the browser redraws the widget at its built-in default while the server keeps the old
    value, so the page would show one value and use another."""
    st.session_state[key] = st.session_state.get(key, value)
    st.session_state.setdefault(PERSISTED, set()).add(key)
    return st.session_state[key]


def keep_page_settings() -> None:
    """Called by the entrypoint before a page runs: widgets of pages not shown in this run
    would be forgotten by Streamlit; re-asserting their keys keeps a page's settings when the
    class navigates away and back."""
    for key in st.session_state.get(PERSISTED, ()):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def scale(base: int = 6) -> int:
    """Nearest-neighbour upscale factor for 28x28 images; presenter mode enlarges."""
    return base * 3 // 2 if presenter() else base


def scale_for(size: int, base: int = 6) -> int:
    """``scale(base)`` for a 28x28 digit, adjusted so a ``size`` px image shows as big."""
    return max(1, round(scale(base) * 28 / size))


def secondary(label: str = "More controls"):
    """A container for secondary controls: open normally, collapsed in presenter mode (the
    widgets keep their values)."""
    return st.expander(label, expanded=not presenter())


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "figure"


# ----------------------------------------------------------------------------- images and downloads


def image(img, caption: str | None = None, scale_by: int = 1, download: str | None = None,
          key: str | None = None, width="content") -> None:
    """Show an image (one image or an already composed grid) as a nearest-neighbour PNG
    (st.image would pick JPEG for bytes on its own), with an optional PNG download button
    named ``download``."""
    data = images.png(img, scale_by)
    st.image(data, caption=caption, output_format="PNG", width=width)
    if download:
        _download("PNG", data, f"{slug(download)}.png", "image/png", ":material/download:",
                  key or f"dl_{slug(download)}")


def download_png(img, name: str, key: str | None = None, label: str = "PNG", scale_by: int = 1,
                 icon: str | None = ":material/download:", kind: str = "secondary") -> None:
    """Only the download button for a PNG of ``img`` (encoded when clicked)."""
    _download(label, lambda: images.png(img, scale_by), f"{slug(name)}.png", "image/png", icon,
              key or f"dl_{slug(name)}", kind)


def gif_download(frames, label: str, file_name: str, scale_by: int = 4, key: str | None = None,
                 icon: str | None = ":material/animation:", kind: str = "secondary", **gif_args) -> None:
    """A GIF download, encoded only when clicked; ``gif_args`` go to ``images.gif`` (durations,
    captions)."""
    _download(label, lambda: images.gif(frames, scale_by, **gif_args), f"{slug(file_name)}.gif", "image/gif",
              icon, key or f"gif_{slug(file_name)}", kind)


def _download(label: str, data, file_name: str, mime: str, icon, key: str, kind: str = "secondary") -> None:
    """A download button that does not rerun the page when clicked (``data``: bytes or a
    function that makes them, called on click)."""
    st.download_button(label, data, file_name=file_name, mime=mime, icon=icon, key=key, on_click="ignore",
                       type=kind)


def presenter_fonts(fig):
    """In presenter mode, chart text (ticks, axis titles, legends) large enough for the back
    row; the figure otherwise unchanged. Returns ``fig``."""
    if presenter():
        fig.update_layout(font={"size": 17}, title_font={"size": 21})
    return fig


def plot(fig, key: str | None = None, filename: str | None = None) -> None:
    """A Plotly chart (presenter-sized text in presenter mode); its modebar camera button saves
    it as ``filename``.png (default: from ``key``)."""
    presenter_fonts(fig)
    options = {**figures.PLOTLY_CONFIG["toImageButtonOptions"], "filename": filename or slug(key or "chart")}
    st.plotly_chart(fig, config={**figures.PLOTLY_CONFIG, "toImageButtonOptions": options}, key=key)


def presenter_css() -> None:
    """Presenter mode: larger text for a 1280x720 projector."""
    if presenter():
        st.markdown(
            "<style>.stMainBlockContainer{padding-top:2rem;max-width:100%}"
            ".stMainBlockContainer [data-testid='stMarkdown'] :is(p,li){font-size:1.15rem}"
            ".stMainBlockContainer [data-testid='stWidgetLabel'] p{font-size:1.05rem}</style>",
            unsafe_allow_html=True,
        )


# ----------------------------------------------------------------------------- long work


def run_with_progress(fn, *args, label: str = "Computing…", delay_s: float = 0.3):
    """``fn(*args, _progress=...)`` (a ``dashboard.cache`` function) with a progress bar fed by
    the engine's step callbacks. The work runs in a helper thread while this script updates the
    bar; a cache hit returns before ``delay_s``, so no bar flashes. When the page run is
    interrupted (a widget changed) the work stops at its next step and nothing is cached."""
    state = {"fraction": 0.0, "text": label}
    done, abandoned, out = threading.Event(), threading.Event(), {}

    def progress(fraction: float, text: str) -> None:
        if abandoned.is_set():
            raise Abandoned
        state["fraction"], state["text"] = min(max(fraction, 0.0), 1.0), text

    def work() -> None:
        try:
            out["value"] = fn(*args, _progress=progress)
        except BaseException as e:  # noqa: BLE001 -- handed to the script thread below
            out["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=work, daemon=True, name="difflab-compute")
    add_script_run_ctx(worker, get_script_run_ctx())
    worker.start()
    bar, t0 = None, time.monotonic()
    try:
        while not done.wait(0.1):
            if bar is None and time.monotonic() - t0 >= delay_s:
                bar = st.progress(0.0, text=label)
            if bar is not None:
                bar.progress(state["fraction"], text=state["text"])
    finally:
        if not done.is_set():
            abandoned.set()
    if bar is not None:
        bar.empty()
    if "error" in out:
        raise out["error"]
    return out["value"]
