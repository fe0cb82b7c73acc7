"""Small shared UI helpers: presenter mode, images as PNG, downloads, errors as messages.

Pages must run on their own (AppTest runs them one by one), so everything here reads the
sidebar's choices with ``st.session_state.get(..., default)``.
"""

from __future__ import annotations

import re

import numpy as np
import streamlit as st

from dashboard import figures

SEED_DEFAULT = 0
PERSISTED = "_ui_default_keys"  # session-state keys whose widgets got their default via default()


def presenter() -> bool:
    """Presenter mode (sidebar toggle): bigger images, fewer secondary controls."""
    return bool(st.session_state.get("presenter", False))


def seed() -> int:
    """The sidebar's seed (``st.session_state["seed"]``), 0 when the sidebar has not run."""
    try:
        return int(st.session_state.get("seed", SEED_DEFAULT))
    except (TypeError, ValueError):
        return SEED_DEFAULT


def to_uint8(img) -> np.ndarray:
    """(H, W), (C, H, W) or (H, W, C) float in [0, 1] (tensor or array) -> uint8 HxW or HxWx3."""
    return figures.to_uint8(img)


def png_bytes(img, scale: int = 1) -> bytes:
    """PNG (lossless: JPEG ruins noise images), upscaled with nearest neighbour."""
    return figures.png(img, scale)


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


def secondary(label: str = "More controls"):
    """A container for secondary controls: open normally, collapsed in presenter mode (the
    widgets keep their values)."""
    return st.expander(label, expanded=not presenter())


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "figure"


def image(
    img, caption: str | None = None, scale_by: int = 1, download: str | None = None, key: str | None = None
) -> None:
    """Show an image (already a composed grid or one image) as a nearest-neighbour PNG, with
    an optional PNG download button named ``download``."""
    data = png_bytes(img, scale_by)
    st.image(data, caption=caption, output_format="PNG")
    if download:
        st.download_button(
            "PNG",
            data,
            file_name=f"{slug(download)}.png",
            mime="image/png",
            icon=":material/download:",
            key=key or f"dl_{slug(download)}",
            on_click="ignore",
        )


def download_png(img, name: str, key: str | None = None, label: str = "PNG") -> None:
    """Only the download button for a PNG of ``img`` (a composed figure)."""
    st.download_button(
        label,
        lambda: png_bytes(img),  # deferred: encoded only when clicked
        file_name=f"{slug(name)}.png",
        mime="image/png",
        icon=":material/download:",
        key=key or f"dl_{slug(name)}",
        on_click="ignore",
    )


def gif_download(frames, label: str, file_name: str, scale_by: int = 4, key: str | None = None) -> None:
    """A GIF download, encoded only when clicked (deferred download)."""
    st.download_button(
        label,
        lambda: figures.gif(frames, scale_by),
        file_name=f"{slug(file_name)}.gif",
        mime="image/gif",
        icon=":material/animation:",
        key=key or f"gif_{slug(file_name)}",
        on_click="ignore",
    )


def plot(fig, key: str | None = None) -> None:
    """A Plotly chart; its modebar camera button saves it as PNG."""
    st.plotly_chart(
        fig,
        config={
            **figures.PLOTLY_CONFIG,
            "toImageButtonOptions": {
                **figures.PLOTLY_CONFIG["toImageButtonOptions"],
                "filename": slug(key or "chart"),
            },
        },
        key=key,
    )


def model_or_stop(backend: str | None = None):
    """The active Part A model, or a clear message with the command that trains it (and the
    rest of the page is skipped). Never a stack trace."""
    from dashboard import cache
    from engine.models import ModelNotFound

    try:
        return cache.part_a_model(backend)
    except ModelNotFound as e:
        text = str(e)
        message, _, fix = text.partition("Train it with: ")
        error_box(
            "The model this page needs is not trained yet. "
            + message.strip()
            + " Training the full model takes a while on a CPU; a shipped copy normally lives in "
            "cache/models/.",
            fix.strip() or None,
        )
        st.stop()


def presenter_css() -> None:
    """Presenter mode: larger text for a 1280x720 projector."""
    if presenter():
        st.markdown(
            "<style>.stMainBlockContainer{padding-top:2rem;max-width:100%}"
            "p,li,label,.stMarkdown{font-size:1.15rem}</style>",
            unsafe_allow_html=True,
        )


def digit_picker(key: str, default_index: int = 0, label: str = "MNIST test digit (index)") -> int:
    default(key, default_index)
    return int(st.number_input(label, min_value=0, max_value=9999, step=1, key=key))
