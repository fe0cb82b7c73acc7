"""Flow matching (CS180 Part B2): time- and class-conditioned UNets that learn a velocity field.

Convention (flow matching, Lipman et al.): x_0 ~ N(0, I) is noise, x_1 is data, t runs 0 -> 1,
the opposite of DDPM's t. Sections: snapshots after epochs 1, 5, 10; live sampling with CFG;
the Euler trajectory as a client-side animation and a GIF; ExponentialLR vs constant LR.
"""

import numpy as np
import streamlit as st

from dashboard import partb as pb
from dashboard.cache import models_dir
from dashboard.ui import presenter

big = presenter()
scale = pb.image_scale(big, 3)
root = str(models_dir())
PER_DIGIT = 4
MODELS = {"flow-class": "class-conditioned u(x_t, t, c)", "flow-time": "time-conditioned u(x_t, t)"}

st.title("Flow matching")
st.markdown(
    r"""
Flow matching (CS180 Part B2) starts from noise $x_0 \sim \mathcal{N}(0, I)$ and moves it to a
digit $x_1$ along the straight path $x_t = (1 - t)\,x_0 + t\,x_1$, $t \in [0, 1]$. The path's
velocity is $u = x_1 - x_0$, and a UNet learns it:
$$L = \mathbb{E}_{t, x_0, x_1}\,\lVert u_\theta(x_t, t) - (x_1 - x_0) \rVert^2 .$$
Sampling integrates $dx/dt = u_\theta$ with Euler steps,
$x_{t + \Delta t} = x_t + \Delta t\, u_\theta(x_t, t)$.
Note the direction: here $t = 0$ is noise and $t = 1$ is data, the **opposite** of DDPM's $t$.
"""
)
name = st.radio("Model", list(MODELS), format_func=lambda n: f"{n}: {MODELS[n]}", horizontal=True,
                key="b2_model")
class_model = name == "flow-class"
if class_model:
    st.markdown(
        r"""
The class-conditioned UNet also takes a one-hot digit $c$ (zeroed 10% of the time in training, so
it learns the unconditional field too). Sampling uses classifier-free guidance,
$u = u_\theta(x_t, t, \varnothing) + \gamma\,\big(u_\theta(x_t, t, c) - u_\theta(x_t, t, \varnothing)\big)$:
$\gamma = 0$ ignores the class, $\gamma = 1$ is plain conditioning, $\gamma > 1$ pushes harder.
"""
    )


def download(label: str, img: np.ndarray, file: str, key: str) -> None:
    st.download_button(f"⬇ {label}", pb.png(img, scale), f"{file}.png", "image/png", key=key,
                       type="tertiary")


def digit_grid(images: np.ndarray) -> np.ndarray:
    """40 images grouped by digit -> one grid image, a column per digit 0..9."""
    return pb.tile(pb.digit_columns(images, PER_DIGIT))


# ----------------------------------------------------------------------------- 1. snapshots
st.header("Samples after epochs 1, 5 and 10")
st.caption("Saved during training: 4 samples per column" + (", digits 0 to 9 left to right, γ = 5"
           if class_model else " (unconditional: the digit is whatever the field leads to)") +
           ", 300 Euler steps, seed 0.")
epochs = pb.snapshot_epochs(name)
if not epochs:
    st.info(f"No training snapshots in `{pb.model_folder(name)}/snapshots` yet; training writes "
            f"them after epochs 1, 5 and 10: `python -m engine train {name} --out {pb.model_folder(name)}`.")
else:
    for col, ep in zip(st.columns(max(3, len(epochs)))[:len(epochs)], epochs, strict=True):
        snap = pb.load_snapshot(name, ep)
        if snap is None:
            col.warning(f"The epoch {ep} snapshot is unreadable.")
            continue
        img = digit_grid(snap[0]["samples"][:, 0])
        with col:
            pb.image(img, scale, caption=f"after epoch {ep}", width="stretch")
            download(f"epoch {ep}", img, f"{name}_epoch{ep}", f"b2_dl_{name}_{ep}")

# ----------------------------------------------------------------------------- 2. live samples
st.header("Sample live")
loaded = pb.require_model(name)
run = None
if loaded is not None:
    with st.form("b2_form", border=False):
        c1, c2, c3 = st.columns([2, 2, 1])
        gamma = c1.slider("CFG scale γ", 0.0, 10.0, 5.0, 0.5, key="b2_gamma", disabled=not class_model,
                          help="u = u_uncond + γ (u_cond − u_uncond); only for the class model")
        steps = c2.select_slider("Euler steps", [5, 10, 20, 50, 100, 300], 300, key="b2_steps",
                                 help="Fewer steps are faster and coarser; 300 is the course's setting.")
        seed = int(c3.number_input("Seed", 0, 10_000, int(st.session_state.get("seed", 0)), key="b2_seed"))
        submitted = st.form_submit_button("Sample", type="primary")
    params = (name, float(gamma) if class_model else None, int(steps), seed)
    if submitted:
        st.session_state["b2_params"] = params
    shown = st.session_state.get("b2_params")
    if shown is not None and shown[0] == name:
        bar = st.progress(0.0, text=f"Sampling: {shown[2]} Euler steps on {10 * PER_DIGIT} images…")
        run = pb.flow_samples(*shown, PER_DIGIT, root, pb.stamp(name),
                              progress=lambda f: bar.progress(
                                  min(f, 1.0), text=f"Euler step {round(f * shown[2])} of {shown[2]}"))
        bar.empty()
        img = digit_grid(run.images)
        g = "" if shown[1] is None else f"γ = {shown[1]:g}, "
        pb.image(img, scale + 1, caption=f"{g}{shown[2]} steps, seed {shown[3]}",
                 width=800 if big else 620)
        download("samples", img, f"{name}_g{shown[1]}_steps{shown[2]}_seed{shown[3]}", "b2_dl_live")
        if shown[1:] != params[1:]:
            st.caption("The controls changed: press **Sample** to draw with the new settings.")
    else:
        final = pb.snapshot_epochs(name)
        if final:
            snap = pb.load_snapshot(name, final[-1])
            if snap is not None:
                pb.image(digit_grid(snap[0]["samples"][:, 0]), scale + 1, width=800 if big else 620,
                         caption=f"Saved at the end of training (epoch {final[-1]}, "
                                 + ("γ = 5, " if class_model else "no guidance, ")
                                 + "300 steps, seed 0). Press Sample to draw live and to see the "
                                 "trajectory.")
        else:
            st.caption("Press **Sample** to draw 4 of each digit (300 steps take a while on a laptop CPU).")

# ----------------------------------------------------------------------------- 3. trajectory
st.header("The Euler trajectory")
st.markdown(
    r"""
Each frame is one Euler step. Left: the state $x_t$ (values outside $[0, 1]$ clipped). Right: the
clean image the model predicts from it, $\hat{x}_1 = x_t + (1 - t)\,u_\theta(x_t, t)$: where the
straight path would land if the velocity stayed constant. Early on, $\hat{x}_1$ of the
time-only model is a blurry average of all digits; with a class and CFG it is already a blurry
digit of that class. Both sharpen as $t \to 1$. Press ▶ to play, or drag the slider.
"""
)
if run is None:
    st.caption("Sample above to record a trajectory.")
else:
    choices = ["all"] + (list(range(10)) if class_model else [])
    which = st.segmented_control("Show", choices, default="all", key="b2_which",
                                 format_func=lambda d: "all 40" if d == "all" else f"digit {d}") or "all"
    show_speed = False if big else st.toggle("Velocity magnitude |u|", value=False, key="b2_speed")
    if which == "all":
        xs = np.stack([pb.tile(pb.digit_columns(f, PER_DIGIT)) for f in run.x])
        x1 = np.stack([pb.tile(pb.digit_columns(f, PER_DIGIT)) for f in run.x1_hat])
    else:
        sel = run.labels == which
        xs = np.stack([pb.tile(f[sel], ncols=2) for f in run.x])
        x1 = np.stack([pb.tile(f[sel], ncols=2) for f in run.x1_hat])
    labels = [f"t = {t:.2f}" for t in run.frame_t]
    fig = pb.animation_figure(
        [pb.Panel("x<sub>t</sub>", xs, [f"x<sub>t</sub> at t = {t:.2f}" for t in run.frame_t]),
         pb.Panel("x̂<sub>1</sub> = x<sub>t</sub> + (1 − t) u", x1)],
        labels,
        line=(run.frame_t, run.speed, "mean |u|") if show_speed else None,
        scale=2 if which == "all" else 4,
        height=None if which == "all" else (460 if big else 380),
    )
    pb.chart(fig, f"{name}_trajectory", key="b2_anim")
    gif = pb.gif_bytes([np.concatenate([a, np.full((a.shape[0], 4), 255, np.uint8), b], 1)
                        for a, b in zip(xs, x1, strict=True)], scale=3 if which == "all" else 5,
                       captions=[f"t = {t:.2f}   left: x_t   right: x1_hat" for t in run.frame_t])
    st.download_button("⬇ trajectory GIF", gif, f"{name}_trajectory_{which}.gif", "image/gif",
                       key="b2_dl_gif", type="tertiary")

# ----------------------------------------------------------------------------- 4. LR schedule
st.header("ExponentialLR or a constant learning rate?")
st.markdown(
    r"""
**flow-class** decays the learning rate with `ExponentialLR`, multiplying it by
$\gamma = 0.1^{1/\text{epochs}}$ after each epoch: $10^{-2}$ in epoch 1 down to
$1.26 \cdot 10^{-3}$ in epoch 10; **flow-class-constant-lr** keeps one rate all along.
Same network, data and seed, so both see the same batches and noise. Which constant rate? The
last chart compares the rates we tried; the one with the lowest loss summed over the epochs ships.
"""
)
curves = [c for c in map(pb.model_curve, ("flow-class", "flow-class-constant-lr")) if c is not None]
if not curves:
    st.info(f"No training logs yet in `{models_dir()}` (flow-class, flow-class-constant-lr).")
else:
    weight = 0.95 if big else st.slider("Smoothing", 0.0, 0.99, 0.95, 0.01, key="b2_smooth")
    pb.chart(pb.loss_figure(curves, weight, title="Flow-matching loss", height=460 if big else 380),
             "flow_lr_schedule_loss", key="b2_loss")
    if not big:
        pb.chart(pb.lr_figure(curves), "flow_lr_schedule_lr", key="b2_lr")
    missing = {"flow-class", "flow-class-constant-lr"} - {c.label for c in curves}
    for m in sorted(missing):
        st.caption(f"{m} has no log yet: `python -m engine train {m} --out {pb.model_folder(m)}`")
sweep = pb.read_lr_sweep(pb.model_folder("flow-class-constant-lr") / "lr_sweep.json")
if sweep is not None:
    pb.chart(pb.lr_sweep_figure(sweep, height=460 if big else 380), "flow_constant_lr_sweep", key="b2_sweep")
    st.caption(pb.lr_sweep_caption(sweep))
if name == "flow-time":
    c = pb.model_curve("flow-time")
    if c is not None:
        pb.chart(pb.loss_figure([c], 0.95, title="flow-time loss"), "flow_time_loss", key="b2_loss_time")
