"""A1.8-A1.9 Optical illusions from noise estimates: visual anagrams (one image, two readings
under a flip or a 90 degree turn) and hybrid images (one class from far, another up close).
DDPM convention: x_0 clean, t counts down. Both are ordinary models ``(x_t, t, cond) -> eps``
wrapped around the CFG-guided model, sampled by the usual iterative loop."""

import streamlit as st
import torch

from dashboard import backends, cache, figures, ui
from engine.illusions import get_view, viewing_distance

st.title("Illusions")
st.markdown(
    "A diffusion model only ever answers one question: *what noise is in this image?* Combine "
    "its answers for two classes in a clever way at every step and the loop paints one image "
    "with two readings."
)
active, model = ui.part_a()
if active.pack is not None:
    pack = active.pack
    s_idx, s_seed = backends.pack_seed(pack, "a5_pack_seed")
    fig = backends.pack_figure(pack, "anagram")
    if fig is not None:
        a = fig.arrays
        size = a["images"].shape[-1]
        p1, p2 = fig.meta.get("prompts", ("?", "?"))
        st.subheader("Visual anagram")
        ui.image(
            figures.labeled_row(
                [a["images"][s_idx][0], a["flipped"][s_idx][0]],
                ["as is", fig.meta.get("view", "view")],
                scale=max(2, 160 // size),
            ),
            caption=f"as is: “{p1}”; after the {fig.meta.get('view')}: “{p2}” · seed {s_seed}",
            download=f"pack_anagram_seed{s_seed}",
            key="a5_dl_pack_anagram",
        )
    fig = backends.pack_figure(pack, "hybrid")
    if fig is not None:
        a = fig.arrays
        size = a["images"].shape[-1]
        far, near = fig.meta.get("prompts_far_near", ("?", "?"))
        st.subheader("Hybrid image")
        ui.default("a5_pack_distance", 1.0)
        distance = float(
            st.slider("Viewing distance (1 = close)", 1.0, 6.0, step=0.5, key="a5_pack_distance")
        )
        seen = viewing_distance(torch.as_tensor(a["images"][s_idx].copy()), distance).numpy()
        ui.image(
            figures.grid(list(seen), ncols=1, scale=max(2, 160 // size)),
            caption=f"from far: “{far}”; up close: “{near}” · distance {distance:g} · seed {s_seed}",
            download=f"pack_hybrid_seed{s_seed}",
            key="a5_dl_pack_hybrid",
        )
    st.stop()

key = cache.model_key(active)
seed = ui.seed()
spec = model.spec
text = spec.conditioning == "text"
sc = ui.scale_for(spec.image_size, 6)
options = backends.prompt_options(model) if text else list(range(10))


def cond_select(label: str, key: str, default, preferred=()):
    """A class (built-in) or a stored prompt (DeepFloyd IF)."""
    if text:
        return ui.prompt_select(label, f"{key}_prompt", options, preferred)
    ui.default(key, default)
    return int(st.selectbox(label, list(range(10)), key=key))


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
        up = cond_select(
            "Upright: c₁", "a5_up", 6, ("an oil painting of people around a campfire", "a high quality photo")
        )
    with c2:
        down = cond_select(
            "Under the view: c₂", "a5_down", 9, ("an oil painting of an old man", "a high quality photo")
        )
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
    st.caption(
        f"Now showing: {'prompt' if text else 'class'} {down if flipped else up} "
        f"({'after' if flipped else 'before'} the view). Seed {seed}, stride {stride}, γ = {gamma:g}."
    )
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
        far = cond_select("From far", "a5_far", 1, ("a lithograph of a skull", "a high quality photo"))
    with c2:
        near = cond_select("Up close", "a5_near", 7, ("a lithograph of waterfalls", "a high quality photo"))
    with c3:
        ui.default("a5_kernel", 33 if text else 13)
        kernel = int(
            st.select_slider(
                "Blur kernel",
                [3, 5, 7, 9, 11, 13, 15, 21, 27, 33],
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
        caption=f"Seen from distance {distance:g}: up close “{near}”, from far “{far}” · seed {seed}",
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
                f"low band of ε({far})": res.fft_low,
                f"high band of ε({near})": res.fft_high,
                "finished image": res.fft_image,
            }
        ),
        key="a5_fft",
    )
