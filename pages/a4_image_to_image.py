"""A1.7 Image-to-image: SDEdit (noise a real image to timesteps[i_start], denoise it back),
inpainting (RePaint) and class-conditional editing. DDPM convention: x_0 clean, t counts down;
a small i_start means a large t, so more noise and a bigger edit."""

import streamlit as st

from dashboard import backends, cache, figures, ui
from dashboard.uploads import UploadError, load_image
from engine.editing import SDEDIT_I_STARTS

st.title("Image-to-image")
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

active, model = ui.part_a()
if active.pack is not None:
    pack = active.pack
    s_idx, s_seed = backends.pack_seed(pack, "a4_pack_seed")
    for fname, title in (("sdedit", "SDEdit sweep"), ("text_edit", "Text-conditional edit")):
        fig = backends.pack_figure(pack, fname)
        if fig is None:
            continue
        a = fig.arrays
        size = a["photo"].shape[-1]
        i_starts = [int(v) for v in a["i_starts"]]
        st.subheader(f"{title}: prompt “{fig.meta.get('prompt')}”, γ = {fig.meta.get('guidance')}")
        ui.image(
            figures.labeled_row(
                [*a["edits"][s_idx], a["photo"][s_idx]],
                [f"i={i}" for i in i_starts] + ["original"],
                scale=max(2, 96 // size),
            ),
            caption=f"photo “{fig.meta.get('photo')}”, i_start = "
            + ", ".join(map(str, i_starts))
            + f", seed {s_seed}",
            download=f"pack_{fname}_seed{s_seed}",
            key=f"a4_dl_pack_{fname}",
        )
    fig = backends.pack_figure(pack, "inpaint")
    if fig is not None:
        a = fig.arrays
        size = a["photo"].shape[-1]
        mask = a["mask"]
        photo = a["photo"][s_idx]
        st.subheader(f"Inpainting: prompt “{fig.meta.get('prompt')}”")
        ui.image(
            figures.labeled_row(
                [photo, mask, photo * (1 - mask), a["images"][s_idx][0]],
                ["original", "mask", "kept", "inpainted"],
                scale=max(2, 96 // size),
            ),
            caption=f"seed {s_seed}",
            download=f"pack_inpaint_seed{s_seed}",
            key="a4_dl_pack_inpaint",
        )
    st.stop()

key = cache.model_key(active)
seed = ui.seed()
spec = model.spec
size = spec.image_size
text = spec.conditioning == "text"

SOURCES = ["MNIST test digit", "Drawing", "Upload"]
ui.default("a4_source", SOURCES[0])
x_0, known_label, name = None, None, "image"
source = None
if text:
    x_0, name = ui.photo_source("a4", size)
    known_label = "a high quality photo"
else:
    source = st.segmented_control("Source image", SOURCES, key="a4_source") or SOURCES[0]
if source == "MNIST test digit":
    index = ui.digit_picker("a4_index", 18)  # a 3
    x_0, known_label = cache.mnist_digit(index)
    name = f"mnist_{index}"
elif source == "Drawing":
    st.caption("Draw a digit on the black square (white ink, like MNIST); the edits start from it.")
    drawn = figures.canvas_drawing(ui.canvas("a4_canvas", 280), size)
    if drawn is None:
        st.caption("Nothing drawn yet, so the lab uses this 7 until you draw.")
        drawn = figures.strokes_image([(9, 6, 19, 6), (19, 6, 12, 23)], 2.5, size)
    x_0 = drawn[None]
    name = "drawing"
elif source == "Upload":
    up = st.file_uploader("An image (PNG, JPEG, GIF, BMP, WebP, TIFF; up to 10 MB)", key="a4_upload")
    if up is None:
        st.info(
            "Choose a file: a photo of a digit written on paper works well. It becomes "
            f"{size}×{size} gray, light strokes on dark like MNIST."
        )
    else:
        try:
            result = load_image(up.getvalue(), size=size, mode="L" if spec.channels == 1 else "RGB")
            x_0 = result.image
            name = "upload"
            if result.notes:
                st.caption("Converted: " + "; ".join(result.notes) + ".")
        except UploadError as e:
            ui.error_box(f"Could not use this file: {e}", "upload a PNG or JPEG image")
if x_0 is None:
    st.stop()
src_key = ui.slug(source or "photo")

sc = ui.scale_for(size, 5)
with ui.secondary("Sampler settings"):
    a, b = st.columns(2)
    with a:
        ui.default("a4_stride", 30)
        stride = int(
            st.select_slider(
                "Stride",
                [10, 20, 30, 40],
                key="a4_stride",
                help="SDEdit's i_start counts steps on this strided grid.",
            )
        )
    with b:
        ui.default("a4_gamma", 3.0)
        gamma = float(st.slider("CFG scale γ (when a class is set)", 0.0, 10.0, step=0.5, key="a4_gamma"))

MODES = ["SDEdit sweep", "Inpainting", "Change the class"]
if text:
    MODES[2] = "Change the prompt"
ui.default("a4_mode", MODES[0])
if st.session_state["a4_mode"] not in MODES:
    st.session_state["a4_mode"] = MODES[2] if st.session_state["a4_mode"].startswith("Change") else MODES[0]
mode = st.segmented_control("Edit", MODES, key="a4_mode") or MODES[0]
no_class = "no class"


def class_select(label: str, key: str, default):
    """A class (built-in) or a stored prompt (DeepFloyd IF; "" = none), or None."""
    if text:
        p = ui.prompt_select(
            label, f"{key}_prompt", backends.prompt_options(model), (default,), allow_null=True
        )
        return p or None
    ui.default(key, default)
    v = st.selectbox(label, [no_class] + list(range(10)), key=key)
    return None if v == no_class else int(v)


if mode == "SDEdit sweep":
    # one key per source: a drawing must not inherit the MNIST digit's class as its condition
    cond = class_select("Condition", f"a4_cond_{src_key}",
                        known_label if known_label is not None else no_class)
    g = gamma if cond is not None else 0.0
    edits, ts = cache.sdedit_grid(key, x_0, cond, seed, stride, g, SDEDIT_I_STARTS)
    labels = [f"i={i} t={t}" for i, t in zip(SDEDIT_I_STARTS, ts, strict=False)] + ["original"]
    ui.image(
        figures.labeled_row(list(edits) + [x_0], labels, scale=sc),
        download=f"sdedit_{name}_seed{seed}",
        key="a4_dl_sdedit",
    )
    st.caption(
        f"{len(edits)} edits, i_start = "
        + ", ".join(str(i) for i in SDEDIT_I_STARTS[: len(edits)])
        + " (t = "
        + ", ".join(str(t) for t in ts)
        + f"), then the original. Seed {seed}."
    )
elif mode == "Inpainting":
    st.markdown(
        "Start from noise and, after **every** step, put the known pixels back at the current "
        "noise level (RePaint): $x_t \\leftarrow m\\,x_t + (1 - m)\\,"
        "\\mathrm{forward}(x_{orig}, t)$. The model only invents where $m = 1$."
    )
    ui.default("a4_mask_kind", "Rectangle")
    mask_kind = st.segmented_control("Mask", ["Rectangle", "Paint it"], key="a4_mask_kind") or "Rectangle"
    if mask_kind == "Paint it":
        st.caption("Paint over the part the model should fill in.")
        px = size * max(1, 280 // size)  # whole canvas pixels per image pixel
        painted = ui.canvas(f"a4_mask_canvas_{name}_{size}", px, background=figures.enlarged(x_0, px),
                            stroke="rgba(255, 64, 64, 0.7)", width=max(8, px // 10), background_color="")
        region = figures.canvas_mask(painted, size, size)
        if region is None:
            st.info("Nothing painted yet: paint the region to fill in, or choose Rectangle.")
            st.stop()
    else:
        cols = st.columns(4)
        rect = []
        box = (0, size // 4, size // 2, 3 * size // 4) if text else (14, 0, size, size)
        for j, (lab, v) in enumerate(zip(("top", "left", "bottom", "right"), box, strict=True)):
            with cols[j]:
                rkey = f"a4_r{j}" if not text else f"a4_r{j}_{size}"
                ui.default(rkey, v)
                rect.append(st.slider(lab, 0, size, key=rkey))
        top, left, bottom, right = rect
        if not (top < bottom and left < right):
            ui.error_box("The rectangle is empty: top must be above bottom and left before right.")
            st.stop()
        region = (top, left, bottom, right)
    cond = class_select("Condition", f"a4_inpaint_cond_{src_key}",
                        known_label if known_label is not None else no_class)
    g = gamma if cond is not None else 0.0
    result, mask = cache.inpaint_result(key, x_0, region, cond, seed, stride, g)
    ui.image(
        figures.labeled_row(
            [x_0, mask, x_0 * (1 - mask), result], ["original", "mask", "kept", "inpainted"], scale=sc
        ),
        caption=f"seed {seed}, stride {stride}",
        download=f"inpaint_{name}_seed{seed}",
        key="a4_dl_inpaint",
    )
else:
    st.markdown(
        "SDEdit with **another** prompt as the condition (the course's text-conditional "
        "image-to-image): noise hides the old picture, and the guided loop steers what comes "
        "back toward the prompt."
        if text
        else "SDEdit with **another** class as the condition (the course's text-conditional "
        "image-to-image, with a class instead of a prompt): noise hides the old digit, and the "
        "guided loop steers what comes back toward the new class."
    )
    target = class_select("Turn it into", "a4_target", "a rocket ship" if text else 8)
    edits, ts = cache.sdedit_grid(key, x_0, target, seed, stride, gamma, SDEDIT_I_STARTS)
    labels = [f"i={i} t={t}" for i, t in zip(SDEDIT_I_STARTS, ts, strict=False)] + ["original"]
    ui.image(
        figures.labeled_row(list(edits) + [x_0], labels, scale=sc),
        download=f"class_edit_{name}_to_{target}_seed{seed}",
        key="a4_dl_classedit",
    )
    what = f"the prompt “{target}”" if text else f"class {target}"
    st.caption(f"{len(edits)} edits toward {what}, γ = {gamma:g}, seed {seed}.")
