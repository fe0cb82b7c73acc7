"""A1.8-A1.9 Optical illusions from noise estimates: visual anagrams (one image, two readings
under a flip or a 90 degree turn) and hybrid images (one class from far, another up close).
DDPM convention: x_0 clean, t counts down. Both are ordinary models ``(x_t, t, cond) -> eps``
wrapped around the CFG-guided model, sampled by the usual iterative loop."""

import numpy as np
import streamlit as st

from dashboard import backends, cache, controls, figures, images, parta, ui
from dashboard.parta import VIEWS
from dashboard.settings import DDPM_GUIDANCE, GAMMA_RANGE, STRIDE, STRIDE_CHOICES

ANIMATION_FRAMES = 24

st.title("Illusions")
big = ui.presenter()
lead = ui.lead()  # presenter mode: the illusion first, its classes and views beside it
with lead.intro:
    st.markdown(
        "A diffusion model only ever answers one question: *what noise is in this image?* Combine "
        "its answers for two classes in a clever way at every step and the loop paints one image "
        "with two readings."
    )


def cond_select(label: str, key: str, default, preferred=(), allowed=None):
    """A class (built-in) or a stored prompt (DeepFloyd IF, or the pack's)."""
    if allowed:
        return controls.pick(label, f"{key}_prompt", allowed, allowed[0], allowed)
    if text:
        return controls.prompt_select(label, f"{key}_prompt", options, preferred)
    digits = list(range(10))
    return int(st.selectbox(label, **ui.linked(key, default, digits, "index")))


KINDS = ["Visual anagram", "Hybrid image"]
with lead.controls:
    active, backend = controls.part_a("a5")
    key = active.key
    seed = controls.seed(backend, "a5")
    kind = st.segmented_control("Illusion", **ui.linked("a5_kind", KINDS[0], KINDS, "default")) or KINDS[0]

    with ui.secondary("Sampler settings"):
        a, b, c = st.columns(3) if not big else (st.container(),) * 3  # narrow column: stacked
        with a:
            stride = int(
                controls.pick("Stride", "a5_stride", list(STRIDE_CHOICES), STRIDE, backend.allowed("stride"))
            )
        with b:
            gamma = float(
                controls.pick(
                    "CFG scale γ",
                    "a5_gamma",
                    None,
                    DDPM_GUIDANCE,
                    backend.allowed("gamma"),
                    widget=controls.slider(*GAMMA_RANGE),
                    help=f"The course's γ = {DDPM_GUIDANCE:g}. On the built-in MNIST model, "
                    "anagrams whose every view reads as its digit (16 per view pair, stride 20): "
                    "15 % at γ = 1, 27 % at 3, 38 % at 5, 45 % at 7.",
                )
            )
        with c:
            count = int(
                controls.pick(
                    "Images", "a5_count", None, 4, backend.allowed("count"), widget=controls.number(1, 8)
                )
            )
    # The chosen illusion's explanation: under the choice at a desk, as it always was; in
    # presenter mode in the "What is happening" expander with the rest.
    explain = lead.intro if big else st.container()

# what the backend draws: its image size, and classes or prompts
spec = backend.spec
text = spec.conditioning == "text"
sc = ui.scale_for(spec.image_size, 6)
options = backends.prompt_options(spec) if text else list(range(10))


if kind == "Visual anagram":
    with explain:
        st.markdown(
            "**Visual anagrams** (A1.8, Geng et al. 2024). At every step, estimate the noise for "
            "class $c_i$ on the image seen through view $f_i$, undo the view on that estimate, and "
            "average over the views:"
        )
        st.latex(
            r"\hat\epsilon = \frac1N\sum_{i=1}^{N} f_i^{-1}\big(\epsilon_\theta(f_i(x_t), t, c_i)\big),"
            r"\qquad f_1 = \text{identity}"
        )
        st.markdown(
            "The finished image reads as $c_i$ under view $f_i$. Every view is an *orthogonal* "
            "transform of the pixels (a permutation, or a sign flip), so the average of noise "
            "estimates is still a noise estimate. The course flips upside down with 2 views; "
            "try 3 or 4."
        )
    with lead.controls:
        pair = backend.allowed("anagram_prompts")
        n_views = int(
            controls.pick(
                "Views",
                "a5_views",
                [2, 3, 4],
                2,
                backend.allowed("anagram_views"),
                widget=st.segmented_control,
            )
            or 2
        )
        view_names = [v for v in VIEWS if v != "identity"]
        label = lambda v: VIEWS[v].label  # noqa: E731
        # (where view i's picker goes, where its class goes): a column per view at a desk; in
        # presenter mode's narrow control column a row per view, the view beside its class
        slots = (
            [tuple(st.columns(2, vertical_alignment="bottom")) for _ in range(n_views)]
            if big
            else [(col, col) for col in st.columns(n_views)]
        )
        conds, views = [], ["identity"]
        for i, (view_slot, cond_slot) in enumerate(slots):
            d_class, d_prompt, d_view = parta.ANAGRAM_DEFAULTS[n_views][i]
            keys = (
                ("a5_up", None)
                if i == 0
                else ("a5_down", "a5_view")
                if i == 1
                else (f"a5_c{i + 1}", f"a5_v{i + 1}")
            )
            with view_slot:
                if i:
                    views.append(
                        controls.pick(
                            f"View f{chr(0x2080 + i + 1)}",
                            keys[1],
                            view_names,
                            d_view,
                            backend.allowed("view"),
                            widget=st.selectbox,
                            format_func=label,
                        )
                    )
                else:
                    st.caption("View f₁: as is")
            with cond_slot:
                conds.append(
                    cond_select(
                        f"Reads as c{chr(0x2080 + i + 1)}",
                        keys[0],
                        d_class,
                        (d_prompt, "a high quality photo"),
                        pair and pair[i : i + 1],
                    )
                )
        conds, views = tuple(conds), tuple(views)
    with lead.figure:
        shown = controls.answer(
            cache.anagram, key, conds, views, count, seed, stride, gamma, label="Sampling a visual anagram…"
        )
        if shown is not None:
            names = [f"{label(v)} → {c}" for c, v in zip(conds, views, strict=True)]
            if st.session_state.get("a5_show", 0) >= n_views:
                st.session_state["a5_show"] = 0
            showing = st.radio(
                "Show the images",
                **ui.linked("a5_show", 0, range(n_views), "index", format_func=lambda i: names[i]),
                horizontal=True,
            )
            now = (
                f"Now showing: {'prompt' if text else 'class'} {conds[showing]} "
                f"({label(views[showing])}). Seed {seed}, stride {stride}, γ = {gamma:g}."
            )
            if not big:  # presenter mode: under the picture, which then starts higher
                st.caption(now)
            ui.image(
                images.grid(list(parta.viewed(shown, views[showing])), ncols=len(shown), scale=sc + 2),
                caption=now if big else None,
                alt=f"{len(shown)} visual anagrams. {now}",
            )
    if shown is not None:
        st.markdown("Every view side by side (one row per image, one column per view):")
        table = np.stack([parta.viewed(shown, v) for v in views], axis=1)
        ui.image(
            images.table(table, scale=max(2, sc - 2)),
            caption=" · ".join(names),
            download=f"anagram_{'_'.join(map(str, conds))}_{'_'.join(views[1:])}_seed{seed}",
            key="a5_dl_anagram",
        )
        st.markdown("**Watch it turn**: the image becoming its other reading.")
        if st.session_state.get("a5_animate") not in views[1:]:
            st.session_state["a5_animate"] = views[1]
        target = (
            views[1]
            if n_views == 2
            else st.selectbox(
                "Animate",
                **ui.linked("a5_animate", views[1], views[1:], "index", format_func=label),
            )
        )
        frames = parta.view_frames(shown, target, ANIMATION_FRAMES)
        strip = [images.grid(list(f), ncols=len(shown)) for f in frames]
        ui.plot(
            figures.animation_figure(
                [
                    figures.Panel(
                        f"{conds[0]} → {conds[views.index(target)]}",
                        np.stack([images.to_uint8(f) for f in strip]),
                    )
                ],
                [f"{k / (ANIMATION_FRAMES - 1):.0%}" for k in range(ANIMATION_FRAMES)],
                scale=max(1, 2 * sc // 3),
                duration_ms=60,
            ),
            key="a5_turn",
        )
        ui.gif_download(
            strip + strip[::-1],
            "GIF: the view, there and back",
            f"anagram_{target}_seed{seed}",
            scale_by=sc,
            key="a5_turn_gif",
            duration_ms=60,
            hold_last_ms=60,
        )
else:
    with explain:
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
    with lead.controls:
        pair, blur = backend.allowed("hybrid_prompts"), backend.allowed("hybrid_blur")
        # four in a row at a desk; in presenter mode's narrow column the two classes side by side
        c1, c2, c3, c4 = st.columns(4) if not big else (*st.columns(2), st.container(), st.container())
        with c1:
            far = cond_select(
                "From far",
                "a5_far",
                1,
                ("a lithograph of a skull", "a high quality photo"),
                pair and pair[:1],
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
                    "Blur σ",
                    "a5_sigma",
                    None,
                    2.0,
                    blur and [blur[0][1]],
                    widget=controls.slider(0.5, 5.0, 0.25),
                )
            )
    with lead.figure:
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
            distance = float(
                st.slider(
                    "Viewing distance (1 = close)",
                    **ui.linked("a5_distance", 1.0, min_value=1.0, max_value=6.0, step=0.5),
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
    if res is not None:
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
