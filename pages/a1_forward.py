"""A1.1 The forward process. DDPM convention: x_0 is the clean image, t counts down from 999
(pure noise) to 0 (clean): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Eq. A.2).

The scrubber computes x_t in the browser from x_0, eps and the 1000 abar values, so moving t
needs no server round trip; the exact figures below (chart marker, strip, downloads) follow the
server-side t slider."""

import numpy as np
import streamlit as st

from dashboard import alt, backends, cache, controls, figures, images, parta, ui

st.title("Forward process")
lead = ui.lead()  # presenter mode: the scrubbed x_t first, the image source beside it
with lead.intro:
    st.markdown(
        "Noising is not learned: it is a formula. Take a clean image $x_0$ (pixels in $[-1, 1]$), "
        "draw Gaussian noise $\\epsilon \\sim \\mathcal N(0, I)$ and mix them:"
    )
    st.latex(
        r"x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon, \qquad t = 0, \dots, 999"
    )
    st.markdown(
        "$\\bar\\alpha_t$ falls from 1 (clean, $t = 0$) to almost 0 (pure noise, $t = 999$) along "
        "the cosine schedule. The signal-to-noise ratio $\\bar\\alpha_t / (1 - \\bar\\alpha_t)$ drops "
        "by many orders of magnitude. Drag the slider or use the arrow keys: the picture is "
        "computed in your browser."
    )

with lead.controls:
    active = controls.status()
    if active.pack is not None:
        st.caption("The forward process needs no model, so everything below is live.")
    text_backend = active.kind in (backends.DEEPFLOYD, backends.PACK)
    SOURCES = ["MNIST test digit", "Sample photo", "Upload"]
    if text_backend:
        SOURCES = ["Sample photo", "Upload", "MNIST test digit"]
    source = (  # wrap: a column would scroll the options sideways (presenter mode at 1024 px)
        st.segmented_control("Image", **ui.linked("a1_source", SOURCES[0], SOURCES, "default"), wrap=True)
        or SOURCES[0]
    )

    x_0 = None
    name, what = "image", "the image"  # a file name's stem; what x_0 shows, in words (alt text)
    if source == "MNIST test digit":
        index = controls.digit_picker("a1_index", 0)
        x_0, label = cache.mnist_digit(index)
        name, what = f"mnist_{index}", f"test digit #{index} (a {label})"
        st.caption(f"Test digit #{index}, a {label}.")
    elif source == "Sample photo":
        names = cache.photo_names()
        if not names:
            ui.error_box(
                "No sample photos found in cache/datasets/photos.", "git checkout -- cache/datasets/photos"
            )
        else:
            pick = st.selectbox("Photo (64×64)", **ui.linked("a1_photo", names[0], names, "index"))
            x_0 = cache.photo(pick)
            name, what = pick, f"the photo {pick}"
    else:
        x_0 = controls.uploaded("a1_upload", 64, "RGB", mnist_style=False)
        name, what = "upload", "your uploaded image"

if x_0 is None:
    st.stop()

seed = ui.seed()
abar = cache.alphas_cumprod()
eps = cache.noise_like(tuple(x_0.shape), seed)
size = x_0.shape[-1]
view_scale = max(2, (252 if ui.presenter() else 196) // size)

ui.default("a1_t", 500)
t = min(max(int(st.session_state["a1_t"]), 0), 999)  # a stale or forged state must not crash
st.session_state["a1_t"] = t
lead.figure.iframe(
    figures.forward_scrubber_html(x_0 * 2 - 1, eps, abar, t, view_scale, label=what),
    height=size * view_scale + 110,
)

st.subheader("The schedule at one t")
st.caption(
    "This slider runs on the server: it moves the chart's marker, sets the exact x_t you "
    "can download and where the scrubber above starts."
)
t = int(st.slider("t", **ui.linked("a1_t", 500, min_value=0, max_value=999)))
left, right = st.columns([3, 2])
with left:
    st.markdown(f"ᾱ_t = {abar[t]:.4f}, SNR_t = ᾱ_t / (1 − ᾱ_t) = {abar[t] / (1 - abar[t]):.3g}")
    ui.plot(figures.schedule_figure(abar, t), key="a1_schedule")
with right:
    x_t = parta.forward_image(x_0, eps, float(abar[t]))
    st.markdown(f"x_t at t = {t}")
    ui.image(x_t, scale_by=view_scale, download=f"x_t_{name}_t{t}_seed{seed}", key="a1_dl_xt",
             alt=alt.noisy(what, t, float(abar[t])))

st.subheader("The spec's strip: t = 250, 500, 750")
strip_ts = [0, 250, 500, 750]
frames = [x_0 if s == 0 else parta.forward_image(x_0, eps, float(abar[s])) for s in strip_ts]
ui.image(
    images.labeled_row(frames, ["x_0"] + [f"t = {s}" for s in strip_ts[1:]], scale=view_scale // 2 + 1),
    download=f"forward_strip_{name}_seed{seed}",
    key="a1_dl_strip",
    alt=f"Left to right: {what}, then x_t at "
    + ", ".join(f"t = {s} ({alt.level(float(abar[s]))})" for s in strip_ts[1:]),
)
anim_ts = np.linspace(0, 999, 41).astype(int)
ui.gif_download(
    [parta.forward_image(x_0, eps, float(abar[s])) for s in anim_ts],
    "GIF: t from 0 to 999",
    f"forward_{name}_seed{seed}",
    scale_by=max(2, 112 // size),
    key="a1_gif",
)
st.caption(f"Same ε everywhere (seed {seed}; change it in the sidebar).")
