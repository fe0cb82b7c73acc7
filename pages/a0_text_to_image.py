"""Part 0 (CS180 Project 5A): text to image with DeepFloyd IF stage I, 64x64 pixels.

The prompt's T5 embedding comes from the embedding store; sampling is the engine's own strided
DDPM loop with classifier-free guidance and IF's learned variance
(``engine.deepfloyd.model.sample_images``), the same one the Sampling page runs. DDPM convention: x_0
is clean, t counts down from 990 to 0 on the strided grid. Stage II (256x256) is display-only and
needs its own weights and a GPU. With the built-in backend this page samples MNIST classes."""

import contextlib

import streamlit as st

from dashboard import backends, cache, controls, images, parta, ui
from dashboard.settings import COURSE_DDPM_STEPS, DDPM_GUIDANCE, FLOW_GUIDANCE, STRIDE, STRIDE_CHOICES

PREVIEW_STRIDE = 50  # the built-in model's one-digit-per-class preview: quick (20 steps), γ of the flows

st.title("Text to image")
lead = ui.lead()  # presenter mode: the samples first, the prompt and settings beside them
with lead.intro:
    st.markdown(
        "DeepFloyd IF turns a prompt into a picture in two stages: **stage I** samples a 64×64 "
        "image from pure noise, conditioned on the prompt's T5 embedding; **stage II** upscales it to "
        "256×256. More inference steps (a smaller stride) give cleaner images and take longer."
    )

with lead.controls:
    active, backend = controls.part_a("a0")
    seed = controls.seed(backend, "a0")
    key = active.key
    spec = backend.spec

if spec.conditioning != "text":
    with lead.controls:  # beside the digits: why a text-to-image page shows digits
        st.info(
            "Text to image needs the **DeepFloyd IF** backend (its weights, and in practice a GPU): choose "
            "it in the sidebar, or a precomputed pack. The built-in MNIST model is conditioned on a "
            "class instead of a prompt, so here it samples one digit per class; the Sampling and CFG "
            "page shows the whole loop."
        )
        with contextlib.suppress(Exception):  # StreamlitPageNotFoundError outside the app's navigation
            st.page_link("a3_sampling.py", label="Sampling and CFG", icon=":material/auto_awesome:")
    with lead.figure:
        traj = controls.answer(
            cache.sample,
            key,
            tuple(range(10)),
            seed,
            PREVIEW_STRIDE,
            FLOW_GUIDANCE,
            label="Sampling one digit per class…",
        )
        ui.image(  # two rows of five in presenter mode: bigger digits in the narrower column
            images.grid(list(traj.final), ncols=5 if ui.presenter() else 10, scale=ui.scale(4)),
            caption=f"classes 0–9, γ = {FLOW_GUIDANCE:g}, stride {PREVIEW_STRIDE}, seed {seed}",
            download=f"mnist_classes_seed{seed}",
            key="a0_dl_mnist",
        )
    st.stop()

with lead.controls:
    options = list(backend.allowed("prompt") or backends.prompt_options(spec))
    # one column beside the picture in presenter mode: the three controls stacked
    c1, c2, c3 = st.columns([3, 1, 1]) if not ui.presenter() else (st.container(),) * 3
    with c1:
        controls.typed_prompt(active, "a0_prompt")
        prompt = controls.prompt_select(
            "Prompt (stored embeddings)", "a0_prompt", options, ("a high quality photo",)
        )
    with c2:
        stride = int(
            controls.pick(
                "Stride",
                "a0_stride",
                [*STRIDE_CHOICES, 333],
                STRIDE,
                backend.allowed("stride"),
                help=f"Timesteps skipped per step: 990 → 0 by the stride. {STRIDE} gives "
                f"{COURSE_DDPM_STEPS} inference steps.",
            )
        )
    with c3:
        gamma = float(
            controls.pick(
                "CFG scale γ",
                "a0_gamma",
                None,
                DDPM_GUIDANCE,
                backend.allowed("sample_gamma"),
                widget=controls.slider(0.0, 15.0, 0.5),
            )
        )
    count = int(
        controls.pick("Images", "a0_count", None, 2, backend.allowed("count"), widget=controls.number(1, 8))
    )
    steps = parta.steps_of(stride)
    st.caption(f"{steps} inference steps (stride {stride}), seed {seed} (change it in the sidebar).")

with lead.figure:
    traj = controls.answer(
        cache.sample, key, (prompt,) * count, seed, stride, gamma, label="Text to image: stage I…"
    )
    if traj is None:
        st.stop()
    size = spec.image_size
    ncols = min(count, 4) if ui.presenter() else count  # presenter mode: a narrower column, rows of 4
    st.subheader("Stage I (64×64)")
    ui.image(
        images.grid(list(traj.final), ncols=ncols, scale=max(2, 192 // size)),
        caption=f"“{prompt}”, γ = {gamma:g}, stride {stride}, seed {seed}",
        download=f"text_to_image_{prompt}_seed{seed}",
        key="a0_dl_stage1",
    )
    ui.gif_download(
        [images.grid(list(x), ncols=count) for x in traj.x],
        "GIF: the whole loop",
        f"text_to_image_{prompt}_seed{seed}",
        scale_by=max(1, 128 // size),
        key="a0_gif",
    )

st.subheader("Part 0's figure: three prompts, two step counts")
st.caption(
    "The course's first deliverable: each prompt sampled with 20 and with 50 inference steps from the "
    "same seed, so only the number of steps differs."
)
held = backend.allowed("grid_prompts")
if held == ():
    st.info("This pack has no Part 0 grid; recompute it with `--figures part0`.")
else:
    grid_prompts = list(held or [p for p in parta.PART0_PROMPTS if p in options] or options[:3])
    if held is None:
        grid_prompts = st.multiselect(
            "Prompts", options, default=grid_prompts, max_selections=3, key="a0_grid_prompts"
        )
    strides = list(backend.allowed("grid_strides") or parta.PART0_STRIDES)
    grid_gamma = (backend.allowed("grid_gamma") or (gamma,))[0]
    if grid_prompts and st.toggle(
        "Show the grid",
        value=active.pack is not None,
        key="a0_grid",
        help="Samples 3 prompts twice: 70 model evaluations per image.",
    ):
        cells = controls.answer(
            cache.grid,
            key,
            tuple(grid_prompts),
            tuple(strides),
            seed,
            grid_gamma,
            label="Part 0: sampling every prompt at each step count…",
        )
        if cells is not None:
            ui.image(
                images.grid(
                    list(cells.reshape(-1, *cells.shape[2:])), ncols=len(strides), scale=max(2, 128 // size)
                ),
                caption="Rows: "
                + "; ".join(f"“{p}”" for p in grid_prompts)
                + ". Columns: "
                + ", ".join(f"{parta.steps_of(k)} steps" for k in strides)
                + f"; γ = {grid_gamma:g}, seed {seed}.",
                download=f"part0_grid_seed{seed}",
                key="a0_dl_grid",
            )

st.subheader("Stage II (256×256)")
if active.pack is not None:
    st.caption("Stage II (256×256) is not stored in packs.")
else:
    controls.stage2(key, traj.final, prompt, seed)
