"""A1.8-A1.9 Optical illusions from noise estimates: visual anagrams (one image, two readings
under a flip or a 90 degree turn) and hybrid images (one class from far, another up close).
DDPM convention: x_0 clean, t counts down. Both are ordinary models ``(x_t, t, cond) -> eps``
wrapped around the CFG-guided model, sampled by the usual iterative loop."""

import streamlit as st

from dashboard import backends, cache, controls, figures, images, parta, ui

st.title("Illusions")
st.markdown(
    "A diffusion model only ever answers one question: *what noise is in this image?* Combine "
    "its answers for two classes in a clever way at every step and the loop paints one image "
    "with two readings."
)
active, backend = controls.part_a("a5")
key = active.key
seed = controls.seed(backend, "a5")
spec = backend.spec
text = spec.conditioning == "text"
sc = ui.scale_for(spec.image_size, 6)
options = backends.prompt_options(spec) if text else list(range(10))


def cond_select(label: str, key: str, default, preferred=(), allowed=None):
    """A class (built-in) or a stored prompt (DeepFloyd IF, or the pack's)."""
    if allowed:
        return controls.pick(label, f"{key}_prompt", allowed, allowed[0], allowed)
    if text:
        return controls.prompt_select(label, f"{key}_prompt", options, preferred)
    ui.default(key, default)
    return int(st.selectbox(label, list(range(10)), key=key))


KINDS = ["Visual anagram", "Hybrid image"]
ui.default("a5_kind", KINDS[0])
kind = st.segmented_control("Illusion", KINDS, key="a5_kind") or KINDS[0]

with ui.secondary("Sampler settings"):
    a, b, c = st.columns(3)
    with a:
        stride = int(
            controls.pick("Stride", "a5_stride", [10, 20, 30, 50, 100], 30, backend.allowed("stride"))
        )
    with b:
        gamma = float(
            controls.pick(
                "CFG scale γ",
                "a5_gamma",
                None,
                5.0,
                backend.allowed("gamma"),
                widget=controls.slider(0.0, 10.0, 0.5),
            )
        )
    with c:
        count = int(
            controls.pick(
                "Images", "a5_count", None, 4, backend.allowed("count"), widget=controls.number(1, 8)
            )
        )


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
    pair = backend.allowed("anagram_prompts")
    c1, c2, c3 = st.columns(3)
    with c1:
        up = cond_select(
            "Upright: c₁",
            "a5_up",
            6,
            ("an oil painting of people around a campfire", "a high quality photo"),
            pair and pair[:1],
        )
    with c2:
        down = cond_select(
            "Under the view: c₂",
            "a5_down",
            9,
            ("an oil painting of an old man", "a high quality photo"),
            pair and pair[1:],
        )
    with c3:
        view = controls.pick(
            "View f",
            "a5_view",
            ["flip", "rot90"],
            "flip",
            backend.allowed("view"),
            widget=st.radio,
            horizontal=True,
            format_func=lambda v: {"flip": "flip upside down", "rot90": "turn 90°"}[v],
        )
    shown = controls.answer(
        cache.anagram, key, up, down, view, count, seed, stride, gamma, label="Sampling a visual anagram…"
    )
    if shown is not None:
        ui.default("a5_flipped", False)
        flipped = st.toggle("Apply the view (flip / turn the pictures)", key="a5_flipped")
        st.caption(
            f"Now showing: {'prompt' if text else 'class'} {down if flipped else up} "
            f"({'after' if flipped else 'before'} the view). Seed {seed}, stride {stride}, γ = {gamma:g}."
        )
        viewed = parta.viewed(shown, view)
        ui.image(images.grid(list(viewed if flipped else shown), ncols=len(shown), scale=sc + 2))
        st.markdown("Both ways, side by side (each pair: as is, then after the view):")
        ui.image(
            images.grid(
                [im for pair_ in zip(shown, viewed, strict=True) for im in pair_],
                ncols=2 * len(shown),
                scale=max(2, sc - 2),
            ),
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
    pair, blur = backend.allowed("hybrid_prompts"), backend.allowed("hybrid_blur")
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        far = cond_select(
            "From far", "a5_far", 1, ("a lithograph of a skull", "a high quality photo"), pair and pair[:1]
        )
    with c2:
        near = cond_select(
            "Up close",
            "a5_near",
            7,
            ("a lithograph of waterfalls", "a high quality photo"),
            pair and pair[1:],
        )
    with c3:
        kernel = int(
            controls.pick(
                "Blur kernel",
                "a5_kernel",
                [3, 5, 7, 9, 11, 13, 15, 21, 27, 33],
                33 if text else 13,
                blur and [blur[0][0]],
                help="The spec uses 33 at 64 px; 13 covers a 28 px digit.",
            )
        )
    with c4:
        sigma = float(
            controls.pick(
                "Blur σ", "a5_sigma", None, 2.0, blur and [blur[0][1]], widget=controls.slider(0.5, 5.0, 0.25)
            )
        )
    res = controls.answer(
        cache.hybrid,
        key,
        far,
        near,
        kernel,
        sigma,
        count,
        seed,
        stride,
        gamma,
        label="Sampling a hybrid image…",
    )
    if res is not None:
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
        ui.image(
            images.grid(
                list(parta.viewed(res.images, distance=distance)), ncols=len(res.images), scale=sc + 2
            ),
            caption=f"Seen from distance {distance:g}: up close “{near}”, from far “{far}” · seed {seed}",
            download=f"hybrid_{far}_{near}_d{distance:g}_seed{seed}",
            key="a5_dl_hybrid",
        )
        maps = {"finished image": res.fft_image}
        if res.fft_low is not None:
            st.markdown(
                f"**Frequency views** (centred |FFT|, low frequencies in the middle) of the two halves "
                f"of the noise estimate at t = {res.band_t}, and of the finished image."
            )
            maps = {f"low band of ε({far})": res.fft_low, f"high band of ε({near})": res.fft_high} | maps
        else:
            st.markdown(
                "**Frequency view** (centred |FFT|) of the finished image; the pack keeps no noise estimates."
            )
        ui.plot(figures.fft_pair_figure(maps), key="a5_fft")
