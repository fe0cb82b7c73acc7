"""A1.5-A1.6 Sampling from pure noise, and classifier-free guidance (CS180 convention:
eps = eps_u + gamma (eps_c - eps_u); gamma = 0 unconditional, 1 conditional, > 1 guided).
DDPM convention: t counts down from 990 to 0 on the strided grid. The trajectory is computed
once (cached); the scrubber only picks frames from it."""

import streamlit as st

from dashboard import backends, cache, figures, ui

st.title("Sampling and classifier-free guidance")
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

active, model = ui.part_a()
if active.pack is not None:
    pack = active.pack
    s_idx, s_seed = backends.pack_seed(pack, "a3_pack_seed")
    for name, title in (("samples", "Samples without guidance (γ = 1)"), ("cfg", "Samples with CFG")):
        fig = backends.pack_figure(pack, name)
        if fig is None:
            continue
        a = fig.arrays
        prompts = list(fig.meta.get("prompts", ()))
        size = a["images"].shape[-1]
        st.subheader(f"{title}, γ = {fig.meta.get('guidance')}")
        ts = [int(v) for v in a["timesteps"]]
        ui.default(f"a3_pack_step_{name}", len(ts) - 1)
        k = int(st.slider("Step of the loop", 0, len(ts) - 1, key=f"a3_pack_step_{name}"))
        frames = a["trajectory"][s_idx][:, k].astype("float32")
        ui.image(
            figures.grid(list(frames), ncols=len(prompts) or 1, scale=max(2, 128 // size)),
            caption=f"x_t at t = {ts[k]} · " + " · ".join(f"“{p}”" for p in prompts) + f" · seed {s_seed}",
            download=f"pack_{name}_seed{s_seed}_t{ts[k]}",
            key=f"a3_dl_pack_{name}",
        )
    st.stop()

key = cache.model_key(active)
seed = ui.seed()
text = model.spec.conditioning == "text"
options = backends.prompt_options(model) if text else list(range(10))

c1, c2 = st.columns([2, 1])
with c1:
    if text:
        ui.default("a3_prompts", [options[0]])
        st.session_state["a3_prompts"] = [p for p in st.session_state["a3_prompts"] if p in options]
        classes = st.multiselect("Prompts (one sample each)", options, key="a3_prompts")
    else:
        ui.default("a3_classes", list(range(10)))
        classes = st.multiselect("Classes (one sample each)", list(range(10)), key="a3_classes")
with c2:
    ui.default("a3_gamma", 7.0)
    gamma = float(st.slider("CFG scale γ", 0.0, 10.0, step=0.5, key="a3_gamma"))
with ui.secondary("Sampler settings"):
    ui.default("a3_stride", 30)
    stride = int(
        st.select_slider("Stride (timesteps skipped per step)", [10, 20, 30, 50, 100], key="a3_stride")
    )
    ui.default("a3_per_class", 1)
    per_class = int(st.number_input("Samples per class", 1, 4, key="a3_per_class"))

if not classes:
    st.info("Pick at least one prompt." if text else "Pick at least one class.")
    st.stop()

labels = cache.as_labels(c for _ in range(per_class) for c in sorted(classes))  # one column per class
traj = cache.sample_trajectory(key, labels, seed, stride, gamma)
sc = ui.scale_for(model.spec.image_size, 4)

st.subheader(f"Samples, γ = {gamma:g}")
ui.image(
    figures.grid(list(traj.final), ncols=len(classes), scale=sc),
    caption=" · ".join(str(c) for c in sorted(classes)) + f" (seed {seed}, stride {stride})",
    download=f"samples_gamma{gamma:g}_seed{seed}",
    key="a3_dl_grid",
)


@st.fragment
def scrubber(traj: cache.Trajectory, ncols: int, sc: int) -> None:
    """Pick a step of the precomputed loop; only this fragment reruns."""
    n = len(traj.x0_hat)
    ui.default("a3_step", n)
    if st.session_state["a3_step"] > n:
        st.session_state["a3_step"] = n
    k = int(
        st.slider("Step", 0, n, key="a3_step", help="0 is pure noise; the last step is the finished sample.")
    )
    ui.image(figures.grid(list(traj.x[k]), ncols=ncols, scale=sc), caption=f"x_t at t = {traj.timesteps[k]}")
    j = min(k, n - 1)
    ui.image(
        figures.grid(list(traj.x0_hat[j]), ncols=ncols, scale=sc),
        caption=f"x̂₀ predicted from x_t at t = {traj.timesteps[j]}",
    )


st.subheader("Inside the loop")
st.markdown(
    "Top: the current $x_t$. Bottom: the model's guess $\\hat x_0$ of the clean image at that "
    "step. Early guesses are blurry averages; detail appears as $t$ falls."
)
scrubber(traj, len(classes), sc)
ui.gif_download(
    [figures.grid(list(x), ncols=len(classes)) for x in traj.x],
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
        sweep_class = ui.prompt_select("Prompt", "a3_sweep_prompt", options, sorted(classes))
    else:
        ui.default("a3_sweep_class", sorted(classes)[0])
        sweep_class = int(st.selectbox("Class", list(range(10)), key="a3_sweep_class"))
    ui.default("a3_sweep_count", 3)
    count = int(st.number_input("Samples per γ", 1, 8, key="a3_sweep_count"))
gammas = (0.0, 1.0, 3.0, 5.0, 7.0)
sweep = cache.gamma_sweep(key, sweep_class, count, seed, stride, gammas)
with s2:
    rows = [img for row in sweep for img in row]
    ui.image(
        figures.grid(rows, ncols=count, scale=max(2, sc - 1)),
        caption="rows: γ = " + ", ".join(f"{g:g}" for g in gammas) + " (top to bottom)",
        download=f"gamma_sweep_class{sweep_class}_seed{seed}",
        key="a3_dl_sweep",
    )
