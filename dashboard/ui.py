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
    st.plotly_chart(
        fig,
        config={
            **figures.PLOTLY_CONFIG,
            "toImageButtonOptions": {
                **figures.PLOTLY_CONFIG["toImageButtonOptions"],
                "filename": filename or slug(key or "chart"),
            },
        },
        key=key,
    )


def model_or_stop(backend=None):
    """The active Part A model (``backend``: a key, a ``backends.Active`` or None for the
    sidebar's), or a clear message with the command that fixes it (and the rest of the page
    is skipped). Never a stack trace."""
    from dashboard import backends, cache
    from engine.checkpoints import CheckpointError
    from engine.deepfloyd import DeepFloydError
    from engine.models import ModelNotFound

    try:
        if isinstance(backend, backends.Active):
            return cache.part_a_model(backend.backend, backend.df)
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
    except DeepFloydError as e:
        error_box(f"DeepFloyd IF is not available: {e}")
        st.stop()
    except CheckpointError as e:  # a truncated, foreign or mismatched model file: say which
        error_box(
            f"The model file cannot be used: {e}. Restore the shipped copy or retrain it.",
            "python -m engine train ddpm-class --out cache/models/ddpm-class",
        )
        st.stop()


def part_a():
    """What a Part A page runs on: ``(active, model)``. Shows why the sidebar's backend could
    not be used (and that the page falls back to the built-in one), or the pack's label; the
    model is None for a pack (the page shows its arrays)."""
    from dashboard import cache

    active = cache.active()
    from dashboard.backends import show_status

    show_status(active)
    if active.backend == "pack":
        return active, None
    return active, model_or_stop(active)


def scale_for(size: int, base: int = 6) -> int:
    """``scale(base)`` for a 28x28 digit, adjusted so a ``size`` px image shows as big."""
    return max(1, round(scale(base) * 28 / size))


def photo_source(prefix: str, size: int, label: str = "Source image") -> tuple:
    """A 64x64-style RGB image for the text-conditioned backend: a shipped sample photo or an
    upload, at ``size`` px. Returns (x_0 (3, size, size) in [0, 1] or None, name)."""
    from dashboard import cache
    from dashboard.uploads import UploadError, load_image

    sources = ["Sample photo", "Upload"]
    default(f"{prefix}_rgb_source", sources[0])
    source = st.segmented_control(label, sources, key=f"{prefix}_rgb_source") or sources[0]
    if source == "Sample photo":
        names = cache.photo_names()
        if not names:
            error_box(
                "No sample photos found in cache/datasets/photos.", "git checkout -- cache/datasets/photos"
            )
            return None, "photo"
        default(f"{prefix}_photo", "camera" if "camera" in names else names[0])
        pick = st.selectbox(f"Photo ({size}×{size})", names, key=f"{prefix}_photo")
        return cache.photo(pick, size), pick
    up = st.file_uploader(
        "An image (PNG, JPEG, GIF, BMP, WebP, TIFF; up to 10 MB)", key=f"{prefix}_rgb_upload"
    )
    if up is None:
        st.info(f"Choose a file. It is shrunk and center-cropped to {size}×{size}.")
        return None, "upload"
    try:
        result = load_image(up.getvalue(), size=size, mode="RGB", mnist_style=False)
    except UploadError as e:
        error_box(f"Could not use this file: {e}", "upload a PNG or JPEG photo")
        return None, "upload"
    if result.notes:
        st.caption("Converted: " + "; ".join(result.notes) + ".")
    return result.image, "upload"


def prompt_select(label: str, key: str, prompts: list[str], preferred=(), allow_null: bool = False) -> str:
    """A prompt from the stored embeddings; the first of ``preferred`` that is stored is the
    default. With ``allow_null``, "" (the null prompt, CFG's unconditional branch) is offered."""
    from dashboard.backends import prompt_label

    options = ([""] if allow_null else []) + list(prompts)
    first = next((p for p in preferred if p in options), options[0] if options else "")
    default(key, first)
    if st.session_state[key] not in options:
        st.session_state[key] = first
    return st.selectbox(label, options, key=key, format_func=prompt_label)


def presenter_css() -> None:
    """Presenter mode: larger text for a 1280x720 projector."""
    if presenter():
        st.markdown(
            "<style>.stMainBlockContainer{padding-top:2rem;max-width:100%}"
            ".stMainBlockContainer [data-testid='stMarkdown'] :is(p,li){font-size:1.15rem}"
            ".stMainBlockContainer [data-testid='stWidgetLabel'] p{font-size:1.05rem}</style>",
            unsafe_allow_html=True,
        )


def digit_picker(key: str, default_index: int = 0, label: str = "MNIST test digit (index)") -> int:
    default(key, default_index)
    return int(st.number_input(label, min_value=0, max_value=9999, step=1, key=key))


def canvas(key: str, size_px: int, *, background=None, stroke: str = "#ffffff", width: int = 24,
           background_color: str = "#000000") -> np.ndarray | None:
    """A freehand drawing canvas (streamlit-drawable-canvas); its pixels (H, W, 4) uint8 once
    something is drawn, else None. ``background`` (a PIL image) is shown under the strokes and is
    not part of the returned pixels. None too where the component cannot load."""
    try:
        from streamlit_drawable_canvas import st_canvas

        st.html('<div style="height: 1.6rem"></div>')  # room for the canvas's floating toolbar
        result = st_canvas(
            stroke_width=width, stroke_color=stroke, background_color=background_color,
            background_image=background, width=size_px, height=size_px, drawing_mode="freedraw",
            return_image_data=True, key=key,
        )
        return result.image_data
    except Exception as e:  # noqa: BLE001 -- a missing or broken component must not end the page
        st.caption(f"The drawing canvas is not available here ({type(e).__name__}).")
        return None
