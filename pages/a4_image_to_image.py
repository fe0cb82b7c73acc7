"""A1.7 Image-to-image: SDEdit (noise a real image to timesteps[i_start], denoise it back),
inpainting (RePaint) and class-conditional editing. DDPM convention: x_0 clean, t counts down;
a small i_start means a large t, so more noise and a bigger edit."""

import numpy as np
import streamlit as st

from dashboard import backends, cache, controls, images, ui
from dashboard.settings import DDPM_GUIDANCE, GAMMA_RANGE, SDEDIT_I_STARTS

st.title("Image-to-image")
lead = ui.lead()  # presenter mode: the edits first, the source and the edit beside them
with lead.intro:
    st.markdown(
        "**SDEdit** (A1.7): add noise to a real image up to $t = $ `timesteps[i_start]` with the "
        "forward process, then run the iterative loop from there. Noise hides the details; the "
        "model fills them back in with what *it* finds likely, so the result moves toward the "
        "digits it knows. Small $i_{start}$ = lots of noise = big edit; large $i_{start}$ stays "
        "close to the original."
    )
    st.latex(
        r"x_t = \sqrt{\bar\alpha_t}\,x_{\text{orig}} + \sqrt{1-\bar\alpha_t}\,\epsilon,\quad "
        r"t = \texttt{timesteps}[i_{start}] \;\longrightarrow\; \text{denoise to } t = 0"
    )
explain = lead.intro if ui.presenter() else lead.controls  # where an edit's own explanation goes

with lead.controls:
    active, backend = controls.part_a("a4")
    key = active.key
    seed = controls.seed(backend, "a4")
    spec = backend.spec
    size = spec.image_size
    text = spec.conditioning == "text"

    SOURCES = ["MNIST test digit", "Drawing", "Upload"]
    x_0, known_label, name = None, None, "image"
    source = None
    if text:
        x_0, name = controls.photo_source("a4", size, backend)
        known_label = "a high quality photo"
    else:
        source = st.segmented_control(  # wrap: a column would scroll the options sideways
            "Source image", **ui.linked("a4_source", SOURCES[0], SOURCES, "default"), wrap=True
        )
        source = source or SOURCES[0]
    if source == "MNIST test digit":
        index = controls.digit_picker("a4_index", 18)  # a 3
        x_0, known_label = cache.mnist_digit(index)
        name = f"mnist_{index}"
    elif source == "Drawing":
        st.caption("Draw a digit on the black square (white ink, like MNIST); the edits start from it.")
        px = 252 if ui.presenter() else 280  # presenter mode: fits the control column at 1024 px
        drawn = images.canvas_drawing(controls.canvas("a4_canvas", px), size)
        if drawn is None:
            st.caption("Nothing drawn yet, so the lab uses this 7 until you draw.")
            drawn = images.strokes_image([(9, 6, 19, 6), (19, 6, 12, 23)], 2.5, size)
        x_0 = drawn[None]
        name = "drawing"
    elif source == "Upload":
        x_0 = controls.uploaded(
            "a4_upload",
            size,
            "L" if spec.channels == 1 else "RGB",
            hint="Choose a file: a photo of a digit written on paper works well. It becomes "
            f"{size}×{size} gray, light strokes on dark like MNIST.",
        )
        name = "upload"
    if x_0 is None:
        st.stop()
    src_key = ui.slug(source or "photo")

    sc = ui.scale_for(size, 5)
    with ui.secondary("Sampler settings"):
        a, b = st.columns(2) if not ui.presenter() else (st.container(),) * 2  # a narrow column: stacked
        with a:
            stride = int(
                controls.pick(
                    "Stride",
                    "a4_stride",
                    [10, 20, 30, 40],
                    30,
                    backend.allowed("stride"),
                    help="SDEdit's i_start counts steps on this strided grid.",
                )
            )
        with b:
            gamma = float(
                controls.pick(
                    "CFG scale γ (when a class is set)",
                    "a4_gamma",
                    None,
                    DDPM_GUIDANCE,
                    backend.allowed("gamma"),
                    widget=controls.slider(*GAMMA_RANGE),
                    help=f"The course samples with γ = {DDPM_GUIDANCE:g} from A1.6 on "
                    "(SDEdit, inpainting, edits).",
                )
            )

    MODES = ["SDEdit sweep", "Inpainting", "Change the prompt" if text else "Change the class"]
    modes = [m for m in MODES if backend.allowed("edit_mode") is None or m in backend.allowed("edit_mode")]
    if not modes:
        st.stop()
    current = st.session_state.get("a4_mode", modes[0])
    if current not in modes:  # "Change the class" <-> "Change the prompt" when the backend changes
        renamed = [m for m in modes if m.startswith("Change") and current.startswith("Change")]
        st.session_state["a4_mode"] = (renamed or modes)[0]
    edit = ui.linked("a4_mode", modes[0], modes, "default")
    mode = st.segmented_control("Edit", **edit, wrap=True) or modes[0]

no_class = "no class"


def class_select(label: str, key: str, default, allowed=None):
    """A class (built-in) or a stored prompt (DeepFloyd IF; "" = none), or None."""
    if allowed:
        return controls.pick(label, f"{key}_prompt", allowed, allowed[0], allowed)
    if text:
        p = controls.prompt_select(
            label, f"{key}_prompt", backends.prompt_options(spec), (default,), allow_null=True
        )
        return p or None
    choices = [no_class] + list(range(10))
    v = st.selectbox(label, **ui.linked(key, default, choices, "index"))
    return None if v == no_class else int(v)


def sdedit_row(cond, g: float, file: str, dl_key: str):
    """The spec's SDEdit sweep (i_start 1, 3, 5, 7, 10, 20), then the original."""
    res = controls.answer(cache.sdedit, key, x_0, cond, seed, stride, g, SDEDIT_I_STARTS, label="SDEdit…")
    if res is None:
        return None
    edits, ts = res
    starts = SDEDIT_I_STARTS[: len(edits)]
    labels = [f"i={i} t={t}" for i, t in zip(starts, ts, strict=False)] + ["original"]
    what = f"SDEdit of the {name.replace('_', ' ')} image, left to right from i_start = " + ", ".join(
        map(str, starts)) + " (more noise to less, so less to more of the original kept), then the original"
    tiles = list(edits) + [x_0]
    if not ui.presenter():
        ui.image(images.labeled_row(tiles, labels, scale=sc), download=file, key=dl_key, alt=what)
        return edits, ts, starts
    # presenter mode: rows of four beside the controls, tiles big enough for a room (white fills
    # the last row and parts the rows); the download stays the spec's one row
    rows = [
        images.labeled_row(tiles[k : k + 4], labels[k : k + 4], scale=sc) for k in range(0, len(tiles), 4)
    ]
    width = rows[0].shape[1]
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    ui.image(np.concatenate(rows), alt=what)
    ui.download_png(images.labeled_row(tiles, labels, scale=sc), file, key=dl_key)
    return edits, ts, starts


if mode == "SDEdit sweep":
    with lead.controls:
        # one key per source: a drawing must not inherit the MNIST digit's class as its condition
        cond = class_select(
            "Condition",
            f"a4_cond_{src_key}",
            known_label if known_label is not None else no_class,
            backend.allowed("sdedit_prompt"),
        )
    g = gamma if cond is not None else 0.0
    with lead.figure:
        done = sdedit_row(cond, g, f"sdedit_{name}_seed{seed}", "a4_dl_sdedit")
        if done is not None:
            edits, ts, starts = done
            st.caption(
                f"{len(edits)} edits, i_start = "
                + ", ".join(str(i) for i in starts)
                + " (t = "
                + ", ".join(str(t) for t in ts)
                + f"), then the original. Seed {seed}."
            )
elif mode == "Inpainting":
    explain.markdown(
        "Start from noise and, after **every** step, put the known pixels back at the current "
        "noise level (RePaint): $x_t \\leftarrow m\\,x_t + (1 - m)\\,"
        "\\mathrm{forward}(x_{orig}, t)$. The model only invents where $m = 1$."
    )
    with lead.controls:
        fixed_region = backend.allowed("inpaint_region")
        kinds = ["Rectangle"] if fixed_region else ["Rectangle", "Paint it"]
        mask = ui.linked("a4_mask_kind", "Rectangle", kinds, "default")
        mask_kind = st.segmented_control("Mask", **mask, wrap=True) or "Rectangle"
        if fixed_region:
            region = fixed_region[0]
            st.caption(
                f"The pack's rectangle: rows {region[0]}–{region[2]}, columns {region[1]}–{region[3]}."
            )
        elif mask_kind == "Paint it":
            # presenter mode: the room watches the painting where the result will show
            with lead.figure if ui.presenter() else lead.controls:
                st.caption("Paint over the part the model should fill in.")
                px = size * max(1, 280 // size)  # whole canvas pixels per image pixel
                painted = controls.canvas(
                    f"a4_mask_canvas_{name}_{size}",
                    px,
                    background=images.enlarged(x_0, px),
                    stroke="rgba(255, 64, 64, 0.7)",
                    width=max(8, px // 10),
                    background_color="",
                )
                region = images.canvas_mask(painted, size, size)
                if region is None:
                    st.info("Nothing painted yet: paint the region to fill in, or choose Rectangle.")
                    st.stop()
        else:
            cols = st.columns(4) if not ui.presenter() else [*st.columns(2), *st.columns(2)]  # 2x2: narrow
            rect = []
            box = (0, size // 4, size // 2, 3 * size // 4) if text else (14, 0, size, size)
            for j, (lab, v) in enumerate(zip(("top", "left", "bottom", "right"), box, strict=True)):
                with cols[j]:
                    rkey = f"a4_r{j}" if not text else f"a4_r{j}_{size}"
                    rect.append(st.slider(lab, **ui.linked(rkey, v, min_value=0, max_value=size)))
            top, left, bottom, right = rect
            if not (top < bottom and left < right):
                ui.error_box("The rectangle is empty: top must be above bottom and left before right.")
                st.stop()
            region = (top, left, bottom, right)
        cond = class_select(
            "Condition",
            f"a4_inpaint_cond_{src_key}",
            known_label if known_label is not None else no_class,
            backend.allowed("sdedit_prompt"),
        )
    g = gamma if cond is not None else 0.0
    with lead.figure:
        res = controls.answer(cache.inpaint, key, x_0, region, cond, seed, stride, g, label="Inpainting…")
        if res is not None:
            result, mask = res
            ui.image(
                images.labeled_row(
                    [x_0, mask, x_0 * (1 - mask), result], ["original", "mask", "kept", "inpainted"], scale=sc
                ),
                caption=f"seed {seed}, stride {stride}",
                alt=f"Inpainting the {name.replace('_', ' ')} image, left to right: the original, the mask "
                f"(white: regenerated), the part kept, the inpainted result (seed {seed}, stride {stride})",
                download=f"inpaint_{name}_seed{seed}",
                key="a4_dl_inpaint",
            )
else:
    explain.markdown(
        "SDEdit with **another** prompt as the condition (the course's text-conditional "
        "image-to-image): noise hides the old picture, and the guided loop steers what comes "
        "back toward the prompt."
        if text
        else "SDEdit with **another** class as the condition (the course's text-conditional "
        "image-to-image, with a class instead of a prompt): noise hides the old digit, and the "
        "guided loop steers what comes back toward the new class."
    )
    with lead.controls:
        target = class_select(
            "Turn it into", "a4_target", "a rocket ship" if text else 8, backend.allowed("edit_prompt")
        )
    with lead.figure:
        done = sdedit_row(target, gamma, f"class_edit_{name}_to_{target}_seed{seed}", "a4_dl_classedit")
        if done is not None:
            what = f"the prompt “{target}”" if text else f"class {target}"
            st.caption(f"{len(done[0])} edits toward {what}, γ = {gamma:g}, seed {seed}.")
