"""A1.5-A1.6 Sampling from pure noise, and classifier-free guidance (CS180 convention:
eps = eps_u + gamma (eps_c - eps_u); gamma = 0 unconditional, 1 conditional, > 1 guided).
DDPM convention: t counts down from 990 to 0 on the strided grid. The trajectory is computed
once (cached); the scrubber only picks frames from it."""

import streamlit as st

from dashboard import backends, cache, cache_partb, controls, flow_views, images, partb, previews, ui
from dashboard.settings import DDPM_GUIDANCE, FLOW_GUIDANCE, GAMMA_RANGE, GAMMA_SWEEP

st.title("Sampling and classifier-free guidance")
lead = ui.lead()  # presenter mode: the samples first, the controls beside them
with lead.intro:
    st.markdown(
        "**Sampling** (A1.5) is iterative denoising started from pure noise $x_{990} \\sim "
        "\\mathcal N(0, I)$. **Classifier-free guidance** (A1.6) runs the model twice per step, "
        "with the class $c$ and with the null condition $\\varnothing$, and extrapolates "
        "past the conditional estimate:"
    )
    st.latex(
        r"\hat\epsilon = \epsilon_\theta(x_t, t, \varnothing) + \gamma\,"
        r"\big(\epsilon_\theta(x_t, t, c) - \epsilon_\theta(x_t, t, \varnothing)\big)"
    )
    st.markdown(
        "$\\gamma = 0$: unconditional; $\\gamma = 1$: conditional; $\\gamma > 1$: cleaner, "
        "more typical digits, less variety."
    )

with lead.controls:
    active, backend = controls.part_a("a3")
    key = active.key
    seed = controls.seed(backend, "a3")
    spec = backend.spec
    text = spec.conditioning == "text"
    options = list(backend.allowed("prompt") or backends.prompt_options(spec)) if text else list(range(10))

    c1, c2 = st.columns([2, 1]) if not ui.presenter() else (st.container(), st.container())
    with c1:
        if text:
            ui.default("a3_prompts", [options[0]])
            st.session_state["a3_prompts"] = [p for p in st.session_state["a3_prompts"] if p in options]
            classes = st.multiselect(
                "Prompts (one sample each)", **ui.linked("a3_prompts", [options[0]], options, "default")
            )
        else:
            classes = st.multiselect(
                "Classes (one sample each)",
                **ui.linked("a3_classes", list(range(10)), list(range(10)), "default"),
            )
    with c2:
        gammas = backend.allowed("sample_gamma")
        gamma = float(
            controls.pick(
                "CFG scale γ", "a3_gamma", None, DDPM_GUIDANCE, gammas, widget=controls.slider(*GAMMA_RANGE)
            )
        )
    with ui.secondary("Sampler settings"):
        sampler, stride, steps = controls.diffusion_sampler("a3", backend)
        per_class = int(
            controls.pick(
                "Samples per class",
                "a3_per_class",
                None,
                1,
                backend.allowed("count"),
                widget=controls.number(1, 5),
            )
        )

with lead.figure:
    if not classes:
        st.info("Pick at least one prompt." if text else "Pick at least one class.")
        st.stop()

    labels = tuple(c for _ in range(per_class) for c in sorted(classes))  # one column per class
    traj = controls.answer(
        cache.sample, key, labels, seed, stride, gamma, sampler, steps, label="Sampling from noise…"
    )
    if traj is None:
        st.stop()
    sc = ui.scale_for(spec.image_size, 4)
    how = f"stride {stride}" if sampler == "ddpm" else f"{controls.SAMPLER_LABELS[sampler]}, {steps} steps"

    st.subheader(f"Samples, γ = {gamma:g}")
    ui.image(
        images.grid(list(traj.final), ncols=len(classes), scale=sc),
        caption=" · ".join(str(c) for c in sorted(classes))
        + f" (seed {seed}, {how}, {traj.nfe} network evaluations)",
        download=f"samples_gamma{gamma:g}_seed{seed}",
        key="a3_dl_grid",
    )


@st.fragment
def scrubber(traj, ncols: int, sc: int) -> None:
    """Pick a step of the precomputed loop; only this fragment reruns."""
    n = len(traj.times) - 1
    ui.default("a3_step", n)
    if st.session_state["a3_step"] > n:
        st.session_state["a3_step"] = n
    k = int(
        st.slider(
            "Step",
            **ui.linked("a3_step", n, min_value=0, max_value=n),
            help="0 is pure noise; the last step is the finished sample.",
        )
    )
    ui.image(images.grid(list(traj.x[k]), ncols=ncols, scale=sc), caption=f"x_t at t = {traj.times[k]}")
    if traj.x_hat is None:
        st.caption("The pack keeps the states only, not the model's x̂₀ at each step.")
        return
    j = min(k, n - 1)  # the estimate the step from x_t made (the last state is the sample itself)
    ui.image(
        images.grid(list(traj.x_hat[j]), ncols=ncols, scale=sc),
        caption=f"x̂₀ predicted from x_t at t = {traj.times[j]}",
    )


st.subheader("Inside the loop")
st.markdown(
    "Top: the current $x_t$. Bottom: the model's guess $\\hat x_0$ of the clean image at that "
    "step. Early guesses are blurry averages; detail appears as $t$ falls."
)
scrubber(traj, len(classes), sc)
ui.gif_download(
    [images.grid(list(x), ncols=len(classes)) for x in traj.x],
    "GIF: the whole loop",
    f"sampling_gamma{gamma:g}_seed{seed}",
    scale_by=3,
    key="a3_gif",
)

st.subheader("γ sweep")
st.markdown("Same starting noise for every row; only γ changes.")
s1, s2 = st.columns([1, 3])
with s1:
    if text:
        sweep_class = controls.prompt_select("Prompt", "a3_sweep_prompt", options, sorted(classes))
    else:
        digits = list(range(10))
        sweep_class = int(
            st.selectbox("Class", **ui.linked("a3_sweep_class", sorted(classes)[0], digits, "index"))
        )
    count = int(
        controls.pick(
            "Samples per γ", "a3_sweep_count", None, 3, backend.allowed("count"), widget=controls.number(1, 8)
        )
    )
sweep_gammas = tuple(g for g in GAMMA_SWEEP if gammas is None or g in gammas) or tuple(gammas)
rows = []
for g in sweep_gammas:
    row = controls.answer(
        cache.sample,
        key,
        (sweep_class,) * count,
        seed,
        stride,
        g,
        sampler,
        steps,
        label=f"Sampling at γ = {g:g}…",
    )
    if row is None:
        break
    rows.append(row.final)
with s2:
    if rows:
        ui.image(
            images.grid([img for row in rows for img in row], ncols=count, scale=max(2, sc - 1)),
            caption="rows: γ = "
            + ", ".join(f"{g:g}" for g in sweep_gammas[: len(rows)])
            + " (top to bottom)",
            download=f"gamma_sweep_class{sweep_class}_seed{seed}",
            key="a3_dl_sweep",
        )


YOUR_RUN = "Your run: a Training lab flow beside the shipped one"


@st.fragment
def one_step(labels: tuple[int, ...], seed: int, ncols: int, nfe: int) -> None:
    """The same classes from the distilled flow in one network evaluation (docs/reflow.md)."""
    st.subheader("The same digits in one step")
    name = previews.ONE_STEP
    if partb.stamp(name) == 0:  # not on disk
        st.info(f"The one-step model ({name}) is not in `{partb.models_dir()}`; it ships with the lab "
                "(docs/reflow.md says how it is made).")
        return
    digits, seconds, one_nfe = ui.run_with_progress(
        cache_partb.one_step, labels, seed, str(partb.models_dir()), partb.stamp(name), label="One step…"
    )
    ui.image(
        images.grid(list(digits[:, None]), ncols=ncols, scale=4),
        caption=f"{name}: " + " · ".join(str(c) for c in sorted(set(labels)))
        + f" (seed {seed}, {one_nfe} network evaluation, {seconds:.2f} s)",
    )
    st.caption(
        f"The loop above made {nfe} network evaluations. **{name}** is a flow (Part B's convention, t "
        "from noise to data) distilled from flow-class by rectified flow: trained on the teacher's own "
        "(noise, digit) pairs until its paths are straight enough for one Euler step; the teacher's "
        f"guidance (γ = {FLOW_GUIDANCE:g}) is baked in. Compare solvers and step counts on **Fewer steps**."
    )


if not text:
    one_step(labels, seed, len(classes), traj.nfe)
    flow_views.lab_run_block(4, key="a3_your_run", heading=YOUR_RUN)
