"""Page controls that know what the models can do: the Part A backend a page runs on (and its
limits, when a precomputed pack answers), the model a Part B section needs, image sources,
prompt and class pickers, the drawing canvas. Everything a user can get wrong ends in a clear
message, never a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st

from dashboard import backends, cache, images, ui
from dashboard.pack import NotInPack
from dashboard.partb import model_folder, models_dir
from dashboard.settings import COURSE_DDPM_STEPS, FAST_STEP_CHOICES, STRIDE, STRIDE_CHOICES
from dashboard.uploads import UploadError, load_image
from engine.adapters import ModelNotFound
from engine.checkpoints import CheckpointError


def status() -> backends.Active:
    """The backend the sidebar asked for, at the top of a Part A page: why it could not be used
    (the page then runs on the built-in one) or what the pack is."""
    active = backends.resolve()
    if active.error:
        st.error(active.error)
        st.warning(
            f"Falling back to the built-in backend ({backends.CHOICES['mnist']}): "
            "this page shows MNIST digits."
        )
    for note in active.notes:
        st.caption(note)
    if active.pack is not None:
        st.info(backends.pack_label(active.pack), icon=":material/inventory_2:")
    return active


def part_a(page: str):
    """What a Part A page runs on: ``(active, backend)``, after ``status``, and the figures of
    ``page`` a pack lacks. When the built-in model is missing, says how to train it and stops."""
    active = status()
    try:
        backend = active.backend
    except ModelNotFound as e:
        ui.error_box(
            f"The model this page needs is not trained yet. {e.reason} Training the full model takes a "
            "while on a CPU; a shipped copy normally lives in cache/models/.",
            e.fix or None,
        )
        st.stop()
    except CheckpointError as e:  # a truncated, foreign or mismatched model file: say which
        ui.error_box(
            f"The model file cannot be used: {e}. Restore the shipped copy or retrain it.",
            "python -m engine train ddpm-class --out cache/models/ddpm-class",
        )
        st.stop()
    for note in backend.notes(page):
        st.info(note)
    return active, backend


def answer(fn: Callable, *args, label: str = "Computing…"):
    """A cached Part A result with a progress bar, or None after saying what the pack lacks."""
    try:
        return ui.run_with_progress(fn, *args, label=label)
    except NotInPack as e:
        st.info(f"Not in this pack: {e}.")
        return None


def seed(backend, prefix: str) -> int:
    """The sidebar's seed; with a pack, a picker limited to the pack's seeds."""
    seeds = backend.allowed("seed")
    if seeds is None:
        return ui.seed()
    if len(seeds) == 1:
        st.caption(f"Seed {seeds[0]} (the only one in this pack).")
        return seeds[0]
    key = f"{prefix}_pack_seed"
    if st.session_state.get(key) not in seeds:
        st.session_state[key] = seeds[0]
    return int(st.selectbox("Seed (from the pack)", **ui.linked(key, seeds[0], list(seeds), "index")))


# what each widget calls its starting value (the rest, sliders and number inputs: "value")
DEFAULT_ARG = {st.radio: "index", st.selectbox: "index", st.segmented_control: "default", st.pills: "default"}


def pick(label: str, key: str, options: Sequence, default, allowed: Sequence | None, widget=None, **kwargs):
    """A control offering ``options`` (through ``widget``, default a select slider), or, where
    the backend holds only ``allowed`` values, a select box over those (a caption when there
    is one). Returns the chosen value. The value lives in the page's URL (``?key=value``), so
    a link reproduces the view."""
    if allowed is not None:
        allowed = list(allowed)
        if len(allowed) == 1:
            st.caption(f"{label}: {fmt(allowed[0], kwargs.get('format_func'))} (from the pack)")
            return allowed[0]
        if st.session_state.get(key) not in allowed:
            st.session_state[key] = allowed[0]
        fmt_ = kwargs.get("format_func", str)
        return st.selectbox(label, **ui.linked(key, allowed[0], allowed, "index", format_func=fmt_))
    if options is None:  # a range, ``slider`` or ``number``: the widget holds its own domain
        return widget(label, key, default, **kwargs)
    widget = widget or st.select_slider
    arg = DEFAULT_ARG.get(widget, "value")
    labels = {"format_func": kwargs.pop("format_func")} if "format_func" in kwargs else {}
    return widget(label, **ui.linked(key, default, options, arg, **labels), **kwargs)


def slider(lo: float, hi: float, step: float):
    """A ``pick`` widget (with ``options`` None): a slider from ``lo`` to ``hi``."""
    return lambda label, key, default, **kw: st.slider(
        label, **ui.linked(key, default, min_value=lo, max_value=hi, step=step), **kw
    )


def number(lo: int, hi: int):
    """A ``pick`` widget (with ``options`` None): a whole number from ``lo`` to ``hi``."""
    return lambda label, key, default, **kw: st.number_input(
        label, **ui.linked(key, default, min_value=lo, max_value=hi), **kw
    )


def fmt(value, format_func=None) -> str:
    return (
        format_func(value)
        if format_func is not None
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


SAMPLER_LABELS = {
    "ddpm": "DDPM, strided (the course)",
    "ddim": "DDIM",
    "dpmpp-2m": "DPM-Solver++(2M)",
    "euler": "Euler (the course)",
    "midpoint": "midpoint",
    "heun": "Heun",
    "rk4": "RK4",
}


# diffusers' schedulers are imported on first use only: they bring torch._dynamo (~1.5 s, 172 MB)
DIFFUSERS_NOTE = ("The first DDIM or DPM-Solver++ run on this server loads diffusers' schedulers "
                  "(a few seconds, once).")


def diffusion_sampler(prefix: str, backend, strides=STRIDE_CHOICES) -> tuple[str, int, int | None]:
    """The sampler of a diffusion page: the course's strided loop (stride), or DDIM /
    DPM-Solver++ (steps). Returns (sampler, stride, steps or None)."""
    sampler = pick(
        "Sampler",
        f"{prefix}_sampler",
        ["ddpm", "ddim", "dpmpp-2m"],
        "ddpm",
        backend.allowed("sampler"),
        widget=st.radio,
        horizontal=True,
        format_func=SAMPLER_LABELS.get,
        help=f"The course's loop takes {COURSE_DDPM_STEPS} steps at stride {STRIDE}; DDIM and "
        "DPM-Solver++ solve the same model's ODE in fewer (see the Fewer steps page). " + DIFFUSERS_NOTE,
    )
    if sampler == "ddpm":
        stride = int(
            pick(
                "Stride (timesteps skipped per step)",
                f"{prefix}_stride",
                list(strides),
                STRIDE,
                backend.allowed("stride"),
            )
        )
        return sampler, stride, None
    steps = int(pick("Steps", f"{prefix}_steps", list(FAST_STEP_CHOICES), 10, None))
    return sampler, STRIDE, steps


def prompt_select(
    label: str, key: str, prompts: Sequence[str], preferred=(), allow_null: bool = False
) -> str:
    """A prompt from the stored embeddings; the first of ``preferred`` that is stored is the
    default. With ``allow_null``, "" (the null prompt, CFG's unconditional branch) is offered."""
    options = ([""] if allow_null else []) + list(prompts)
    first = next((p for p in preferred if p in options), options[0] if options else "")
    if st.session_state.get(key, first) not in options:
        st.session_state[key] = first
    return st.selectbox(
        label, **ui.linked(key, first, options, "index", format_func=backends.prompt_label)
    )


def typed_prompt(active: backends.Active, key: str) -> None:
    """With DeepFloyd loaded: type a new prompt, encode it once with T5 (in a status box) into
    the embedding store, and select it in the prompt box ``key``. Stored prompts never rerun T5."""
    from engine.deepfloyd.model import DeepFloydError, encode_with_t5

    if active.model is None or active.kind != backends.DEEPFLOYD:
        return
    with st.popover("Type a new prompt", icon=":material/edit:"):
        with st.form(f"{key}_typed_form", border=False):
            text = st.text_input(
                "Prompt", key=f"{key}_typed", max_chars=300, placeholder="an oil painting of a lighthouse"
            )
            go = st.form_submit_button("Encode with T5 and use it", type="primary")
        st.caption(
            "T5-XXL runs once per new prompt (about 9 GB of weights: loaded for this, then freed; "
            "minutes on a CPU). The embedding is kept in the store, so the prompt is instant later."
        )
    text = " ".join(str(text or "").split())
    if not go or not text:
        return
    model = active.model
    if text not in model.embeddings:
        cfg = backends.deepfloyd_config()
        with st.status(f"Encoding “{text}” with T5…", expanded=True) as box:
            st.write(f"Loading the T5 tokenizer and encoder of `{model.model_id}`…")
            try:
                encode_with_t5(model.model_id, [text], model.embeddings, offline=cfg.offline)
            except DeepFloydError as e:
                box.update(label="T5 could not encode the prompt", state="error")
                ui.error_box(f"The prompt could not be encoded: {e}")
                return
            st.write(f"Stored in `{model.embeddings.folder}`; T5 is freed.")
            box.update(label=f"Encoded “{text}”", state="complete", expanded=False)
    st.session_state[key] = text
    st.rerun()


def photo_source(prefix: str, size: int, backend, label: str = "Source image") -> tuple:
    """A 64x64-style RGB image for the text-conditioned backend: a shipped sample photo, a colour
    drawing (A1.7.1's hand-drawn input) or an upload, at ``size`` px. Returns (x_0 (3, size, size)
    in [0, 1] or None, name)."""
    sources = list(backend.allowed("source") or ["Sample photo", "Drawing", "Upload"])
    if st.session_state.get(f"{prefix}_rgb_source", sources[0]) not in sources:
        st.session_state[f"{prefix}_rgb_source"] = sources[0]
    linked = ui.linked(f"{prefix}_rgb_source", sources[0], sources, "default")
    source = st.segmented_control(label, **linked, wrap=True) or sources[0]
    if source == "Sample photo":
        names = list(backend.allowed("photo") or cache.photo_names())
        if not names:
            ui.error_box(
                "No sample photos found in cache/datasets/photos.", "git checkout -- cache/datasets/photos"
            )
            return None, "photo"
        pick_ = pick(
            f"Photo ({size}×{size})",
            f"{prefix}_photo",
            names,
            "camera" if "camera" in names else names[0],
            backend.allowed("photo"),
            widget=st.selectbox,
        )
        return cache.photo(pick_, size), pick_
    if source == "Drawing":
        return colour_drawing(f"{prefix}_rgb_canvas", size), "drawing"
    return uploaded(f"{prefix}_rgb_upload", size, "RGB", mnist_style=False), "upload"


def uploaded(key: str, size: int, mode: str, mnist_style: bool | None = None, hint: str | None = None):
    """An uploaded image (C, size, size) in [0, 1], checked by content; None (with a message)
    until a usable file is chosen."""
    up = st.file_uploader("An image (PNG, JPEG, GIF, BMP, WebP, TIFF; up to 10 MB)", key=key)
    if up is None:
        st.info(hint or f"Choose a file. It is shrunk and center-cropped to {size}×{size}.")
        return None
    try:
        result = load_image(up.getvalue(), size=size, mode=mode, mnist_style=mnist_style)
    except UploadError as e:
        ui.error_box(f"Could not use this file: {e}", "upload a PNG or JPEG photo")
        return None
    if result.notes:
        st.caption("Converted: " + "; ".join(result.notes) + ".")
    return result.image


def digit_picker(key: str, default_index: int = 0, label: str = "MNIST test digit (index)") -> int:
    return int(st.number_input(label, **ui.linked(key, default_index, min_value=0, max_value=9999, step=1)))


def canvas(
    key: str,
    size_px: int,
    *,
    background=None,
    stroke: str = "#ffffff",
    width: int = 24,
    background_color: str = "#000000",
) -> np.ndarray | None:
    """A freehand drawing canvas (streamlit-drawable-canvas); its pixels (H, W, 4) uint8 once
    something is drawn, else None. ``background`` (a PIL image) is shown under the strokes and is
    not part of the returned pixels. None too where the component cannot load."""
    try:
        from streamlit_drawable_canvas import st_canvas

        st.html('<div style="height: 1.6rem"></div>')  # room for the canvas's floating toolbar
        result = st_canvas(
            stroke_width=width,
            stroke_color=stroke,
            background_color=background_color,
            background_image=background,
            width=size_px,
            height=size_px,
            drawing_mode="freedraw",
            return_image_data=True,
            key=key,
        )
        return result.image_data
    except Exception as e:  # noqa: BLE001 -- a missing or broken component must not end the page
        st.caption(f"The drawing canvas is not available here ({type(e).__name__}).")
        return None


def colour_drawing(key: str, size: int) -> np.ndarray:
    """A1.7.1 on a colour model: draw with any colour on a sky-blue square; the drawing, shrunk
    to ``size`` x ``size`` (3, size, size) in [0, 1]. Until something is drawn, a built-in sketch."""
    sky = "#87ceeb"
    a, b = st.columns([1, 3])
    with a:
        ink = st.color_picker("Ink", "#c82828", key=f"{key}_ink")
        width = st.slider("Brush", 2, 40, 14, key=f"{key}_brush")
    with b:
        drawn = images.canvas_colour(
            canvas(key, 320, stroke=ink, width=width, background_color=sky), size, sky
        )
    if drawn is None:
        st.caption("Nothing drawn yet, so the lab uses this sketch (a house on a hill) until you draw.")
        return images.sketch(size)
    st.caption(f"Your drawing, shrunk to {size}×{size}: the edits start from it.")
    return drawn


def stage2(key, stage1, prompt: str, seed: int) -> None:
    """DeepFloyd IF stage II on demand (display only): needs its weights and a GPU."""
    import torch

    from engine.deepfloyd.model import DeepFloydError

    if not torch.cuda.is_available():
        st.info(
            "Stage II needs the DeepFloyd/IF-II-L-v1.0 weights and a GPU; this machine has no GPU, so "
            "only stage I is shown."
        )
    elif st.button("Upscale with stage II", key="a0_stage2"):
        try:
            big = cache.stage2_upscale(key, stage1, prompt, seed)
            ui.image(
                images.grid(list(big), ncols=len(big)), caption=f"stage II, seed {seed}", key="a0_dl_stage2"
            )
        except DeepFloydError as e:
            ui.error_box(f"Stage II is not available: {e}")


# ----------------------------------------------------------------------------- Part B models


def require_model(name: str):
    """The built-in model ``name`` (``cache.LoadedModel``), or None after showing what is
    missing and the command that fixes it."""
    fix = f"python -m engine train {name} --out {model_folder(name)}"
    try:
        return cache.load_model(name, str(models_dir()))
    except ModelNotFound:
        ui.error_box(f"The **{name}** model is not trained yet (looked in `{model_folder(name)}`).", fix)
    except CheckpointError as e:
        ui.error_box(f"The **{name}** model file could not be read: {e}", fix)
    return None


def show_missing(names: Sequence[str]) -> bool:
    """Shows a fix message for every missing model; True when all are present."""
    return all([require_model(n) is not None for n in names])
