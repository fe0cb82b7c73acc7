"""A1.8-A1.9 Optical illusions from noise estimates: visual anagrams (one image, two readings
under a flip or a 90 degree turn) and hybrid images (one class from far, another up close).
DDPM convention: x_0 clean, t counts down. Both are ordinary models ``(x_t, t, cond) -> eps``
wrapped around the CFG-guided model, sampled by the usual iterative loop."""

import streamlit as st
import torch

from dashboard import cache, figures, ui
from engine.illusions import get_view, viewing_distance

st.title("Illusions")
st.markdown(
    "A diffusion model only ever answers one question: *what noise is in this image?* Combine "
    "its answers for two classes in a clever way at every step and the loop paints one image "
    "with two readings."
)
model = ui.model_or_stop()
key = cache.model_key()
seed = ui.seed()
sc = ui.scale(6)

KINDS = ["Visual anagram", "Hybrid image"]
ui.default("a5_kind", KINDS[0])
kind = st.segmented_control("Illusion", KINDS, key="a5_kind") or KINDS[0]

with ui.secondary("Sampler settings"):
    a, b, c = st.columns(3)
    with a:
        ui.default("a5_stride", 30)
        stride = int(st.select_slider("Stride", [10, 20, 30, 50, 100], key="a5_stride"))
    with b:
        ui.default("a5_gamma", 5.0)
        gamma = float(st.slider("CFG scale γ", 0.0, 10.0, step=0.5, key="a5_gamma"))
    with c:
        ui.default("a5_count", 4)
        count = int(st.number_input("Images", 1, 8, key="a5_count"))


if kind == "Visual anagram":
    st.markdown(
        "**Visual anagrams** (A1.8, Geng et al. 2024). At every step, estimate the noise for "
        "class $c_1$ on $x_t$, and for class $c_2$ on the flipped image; flip that estimate "
        "back and average:"
    )
    st.latex(
        r"\hat\epsilon = \tfrac12\big(\epsilon_\theta(x_t, t, c_1) + "
        r"f^{-1}\big(\epsilon_\theta(f(x_t), t, c_2)\big)\big)"
    )
    st.markdown("The finished image reads as $c_1$ as is and as $c_2$ after the view $f$.")
    c1, c2, c3 = st.columns(3)
    with c1:
        ui.default("a5_up", 6)
        up = int(st.selectbox("Upright class c₁", list(range(10)), key="a5_up"))
    with c2:
        ui.default("a5_down", 9)
        down = int(st.selectbox("Under the view, class c₂", list(range(10)), key="a5_down"))
    with c3:
        ui.default("a5_view", "flip")
        view = st.radio(
            "View f",
            ["flip", "rot90"],
            key="a5_view",
            horizontal=True,
            format_func=lambda v: {"flip": "flip upside down", "rot90": "turn 90°"}[v],
        )
    images = cache.anagram(key, up, down, view, count, seed, stride, gamma)
    ui.default("a5_flipped", False)
    flipped = st.toggle("Apply the view (flip / turn the pictures)", key="a5_flipped")
    v = get_view(view)
    shown = [v.apply(torch.as_tensor(im)).numpy() for im in images] if flipped else list(images)
    st.caption(f"Now showing: class {down if flipped else up} ({'after' if flipped else 'before'} the view).")
    ui.image(figures.grid(shown, ncols=count, scale=sc + 2))
    both = [img for im in images for img in (im, v.apply(torch.as_tensor(im)).numpy())]
    st.markdown("Both ways, side by side (each pair: as is, then after the view):")
    ui.image(
        figures.grid(both, ncols=2 * count, scale=max(2, sc - 2)),
        download=f"anagram_{up}_{down}_{view}_seed{seed}",
        key="a5_dl_anagram",
    )
else:
    st.markdown(
        "**Hybrid images** (A1.9). Low frequencies carry what you see from far away, high "
        "frequencies what you see up close. Build the noise estimate from the low band of one "
        "class and the high band of another:"
    )
    st.latex(
        r"\hat\epsilon = \mathrm{lowpass}\big(\epsilon_\theta(x_t, t, c_{far})\big) + "
        r"\mathrm{highpass}\big(\epsilon_\theta(x_t, t, c_{near})\big)"
    )
    st.markdown("lowpass is a Gaussian blur; highpass = the estimate minus its blur.")
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        ui.default("a5_far", 1)
        far = int(st.selectbox("From far: class", list(range(10)), key="a5_far"))
    with c2:
        ui.default("a5_near", 7)
        near = int(st.selectbox("Up close: class", list(range(10)), key="a5_near"))
    with c3:
        ui.default("a5_kernel", 13)
        kernel = int(
            st.select_slider(
                "Blur kernel",
                [3, 5, 7, 9, 11, 13, 15, 21, 27],
                key="a5_kernel",
                help="The spec uses 33 at 64 px; 13 covers a 28 px digit.",
            )
        )
    with c4:
        ui.default("a5_sigma", 2.0)
        sigma = float(st.slider("Blur σ", 0.5, 5.0, step=0.25, key="a5_sigma"))
    res = cache.hybrid(key, far, near, kernel, sigma, count, seed, stride, gamma)
    ui.default("a5_distance", 1.0)
    distance = float(
        st.slider(
            "Viewing distance (1 = close)",
            1.0,
            6.0,
            step=0.5,
            key="a5_distance",
            help="Simulated by blurring and shrinking: far away, only the low band survives.",
        )
    )
    seen = viewing_distance(torch.as_tensor(res.images), distance).numpy()
    ui.image(
        figures.grid(list(seen), ncols=count, scale=sc + 2),
        caption=f"Seen from distance {distance:g}: up close a {near}, from far a {far}",
        download=f"hybrid_{far}_{near}_d{distance:g}_seed{seed}",
        key="a5_dl_hybrid",
    )
    st.markdown(
        f"**Frequency views** (centred |FFT|, low frequencies in the middle) of the two halves "
        f"of the noise estimate at t = {res.band_t}, and of the finished image."
    )
    ui.plot(
        figures.fft_pair_figure(
            {
                f"low band of ε(class {far})": res.fft_low,
                f"high band of ε(class {near})": res.fft_high,
                "finished image": res.fft_image,
            }
        ),
        key="a5_fft",
    )
