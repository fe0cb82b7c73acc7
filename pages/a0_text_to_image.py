"""Part 0 (CS180 Project 5A): text to image with DeepFloyd IF stage I, 64x64 pixels.

The prompt's T5 embedding comes from the embedding store; sampling is the engine's own strided
DDPM loop with classifier-free guidance and IF's learned variance
(``engine.deepfloyd.sample_images``), the same one the Sampling page runs. DDPM convention: x_0
is clean, t counts down from 990 to 0 on the strided grid. Stage II (256x256) is display-only and
needs its own weights and a GPU. With the built-in backend this page samples MNIST classes."""

import contextlib

import streamlit as st
import torch

from dashboard import backends, cache, figures, ui
from engine.schedule import strided_timesteps

st.title("Text to image")
st.markdown(
    "DeepFloyd IF turns a prompt into a picture in two stages: **stage I** samples a 64×64 "
    "image from pure noise, conditioned on the prompt's T5 embedding; **stage II** upscales it to "
    "256×256. More inference steps (a smaller stride) give cleaner images and take longer."
)

active, model = ui.part_a()
seed = ui.seed()

if active.pack is not None:
    pack = active.pack
    s_idx, s_seed = backends.pack_seed(pack, "a0_pack_seed")
    for name in ("cfg", "samples"):
        fig = backends.pack_figure(pack, name)
        if fig is None:
            continue
        a = fig.arrays
        prompts = list(fig.meta.get("prompts", ()))
        size = a["images"].shape[-1]
        st.subheader(f"Stage I, γ = {fig.meta.get('guidance')}")
        ui.image(
            figures.labeled_row(list(a["images"][s_idx]), prompts, scale=max(2, 192 // size)),
            caption=" · ".join(f"“{p}”" for p in prompts)
            + f" · stride {fig.meta.get('stride')} · seed {s_seed}",
            download=f"pack_text_to_image_{name}_seed{s_seed}",
            key=f"a0_dl_pack_{name}",
        )
    st.caption("Stage II (256×256) is not stored in packs.")
    st.stop()

if model.spec.conditioning != "text":
    st.info(
        "Text to image needs the **DeepFloyd IF** backend (its weights, and in practice a GPU): choose "
        "it in the sidebar, or a precomputed pack. The built-in MNIST model is conditioned on a "
        "class instead of a prompt, so here it samples one digit per class; the Sampling and CFG "
        "page shows the whole loop."
    )
    with contextlib.suppress(Exception):  # StreamlitPageNotFoundError outside the app's navigation
        st.page_link("a3_sampling.py", label="Sampling and CFG", icon=":material/auto_awesome:")
    key = cache.model_key(active)
    traj = cache.sample_trajectory(key, tuple(range(10)), seed, 50, 5.0)
    ui.image(
        figures.grid(list(traj.final), ncols=10, scale=ui.scale(4)),
        caption=f"classes 0–9, γ = 5, stride 50, seed {seed}",
        download=f"mnist_classes_seed{seed}",
        key="a0_dl_mnist",
    )
    st.stop()

key = cache.model_key(active)
options = backends.prompt_options(model)
c1, c2, c3 = st.columns([3, 1, 1])
with c1:
    prompt = ui.prompt_select("Prompt (stored embeddings)", "a0_prompt", options, ("a high quality photo",))
with c2:
    ui.default("a0_stride", 30)
    stride = int(
        st.select_slider(
            "Stride",
            [10, 20, 30, 50, 100, 333],
            key="a0_stride",
            help="Timesteps skipped per step: 990 → 0 by the stride. 30 gives 33 inference steps.",
        )
    )
with c3:
    ui.default("a0_gamma", 7.0)
    gamma = float(st.slider("CFG scale γ", 0.0, 15.0, step=0.5, key="a0_gamma"))
ui.default("a0_count", 2)
count = int(st.number_input("Images", 1, 8, key="a0_count"))
steps = len(strided_timesteps(stride)) - 1
st.caption(f"{steps} inference steps (stride {stride}), seed {seed} (change it in the sidebar).")

traj = cache.text_to_image(key, prompt, count, seed, stride, gamma)
size = model.spec.image_size
st.subheader("Stage I (64×64)")
ui.image(
    figures.grid(list(traj.final), ncols=count, scale=max(2, 192 // size)),
    caption=f"“{prompt}”, γ = {gamma:g}, stride {stride}, seed {seed}",
    download=f"text_to_image_{prompt}_seed{seed}",
    key="a0_dl_stage1",
)
ui.gif_download(
    [figures.grid(list(x), ncols=count) for x in traj.x],
    "GIF: the whole loop",
    f"text_to_image_{prompt}_seed{seed}",
    scale_by=max(1, 128 // size),
    key="a0_gif",
)

st.subheader("Stage II (256×256)")
if not torch.cuda.is_available():
    st.info(
        "Stage II needs the DeepFloyd/IF-II-L-v1.0 weights and a GPU; this machine has no GPU, so "
        "only stage I is shown."
    )
elif st.button("Upscale with stage II", key="a0_stage2"):
    from engine.deepfloyd import DeepFloydError

    try:
        big = cache.stage2_upscale(key, traj.final, prompt, seed)
        ui.image(figures.grid(list(big), ncols=count), caption=f"stage II, seed {seed}", key="a0_dl_stage2")
    except DeepFloydError as e:
        ui.error_box(f"Stage II is not available: {e}")
