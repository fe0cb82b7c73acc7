"""Flow matching (CS180 Part B2): time- and class-conditioned UNets that learn a velocity field.

Convention (flow matching, Lipman et al.): x_0 ~ N(0, I) is noise, x_1 is data, t runs 0 -> 1,
the opposite of DDPM's t. Sections: snapshots after epochs 1, 5, 10; live sampling with CFG;
the Euler trajectory as a client-side animation and a GIF; ExponentialLR vs constant LR.
"""


import numpy as np
import streamlit as st

from dashboard import cache_partb, controls, curves, figures, flow_views, images, ui
from dashboard.partb import (
    default_guidance,
    flow_speed,
    model_folder,
    models_dir,
    read_lr_sweep,
    snapshot_epochs,
    stamp,
)
from dashboard.previews import ONE_STEP
from dashboard.settings import EULER_STEPS, FLOW_GUIDANCE, FLOW_STEP_CHOICES, GAMMA_RANGE

big = ui.presenter()
scale = 5 if big else 3
root = str(models_dir())
PER_DIGIT = 4
MODELS = {"flow-class": "class-conditioned u(x_t, t, c)", "flow-time": "time-conditioned u(x_t, t)",
          ONE_STEP: "one step (reflow of flow-class)"}
REFLOW_STEPS = (1, 2, 4, 8)

st.title("Flow matching")
lead = ui.lead()  # presenter mode: the live samples first, the model and sampler beside them
with lead.intro:
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
with lead.controls:
    name = st.radio(
        "Model",
        **ui.linked(
            "b2_model", next(iter(MODELS)), list(MODELS), "index", format_func=lambda n: f"{n}: {MODELS[n]}"
        ),
        horizontal=not big,
    )
class_model = name != "flow-time"
one_step = name == ONE_STEP
if one_step:
    with lead.intro if big else lead.controls:
        st.markdown(
            r"""
**One step.** This model is a *2-rectified flow* (Liu et al. 2022) of flow-class: flow-class's ODE
turned 100 000 noise images $x_0$ into guided digits $x_1$, and a copy of it was trained on
those pairs, half the time at exactly $t = 0$. Its paths are nearly straight, so **one** Euler
step, $x_1 = x_0 + u_\theta(x_0, 0, c)$, gives a digit: one network evaluation instead of the
course's hundreds. The guidance is baked in (it samples at γ = 1). How it was made: docs/reflow.md.
"""
        )
elif class_model:
    with lead.intro if big else lead.controls:  # at a desk, under the model it explains, as before
        st.markdown(
            r"""
The class-conditioned UNet also takes a one-hot digit $c$ (zeroed 10% of the time in training, so
it learns the unconditional field too). Sampling uses classifier-free guidance,
$u = u_\theta(x_t, t, \varnothing) + \gamma\,\big(u_\theta(x_t, t, c) - u_\theta(x_t, t, \varnothing)\big)$:
$\gamma = 0$ ignores the class, $\gamma = 1$ is plain conditioning, $\gamma > 1$ pushes harder.
"""
        )


def download(label: str, img: np.ndarray, file: str, key: str) -> None:
    ui.download_png(img, file, key, label=f"⬇ {label}", scale_by=scale, icon=None, kind="tertiary")


def digit_grid(digits: np.ndarray) -> np.ndarray:
    """40 images grouped by digit -> one grid image, a column per digit 0..9."""
    return images.table(images.digit_columns(digits, PER_DIGIT))


# ----------------------------------------------------------------------------- 1. snapshots
st.header("Samples after epochs 1, 5 and 10" if not one_step else "The teacher in one step")
if one_step:
    teacher_seed = int(st.session_state.get("b2_seed", st.session_state.get("seed", 0)))
    loaded_teacher = controls.require_model("flow-class")
    if loaded_teacher is not None:
        t1 = cache_partb.flow_samples("flow-class", root, stamp("flow-class"), FLOW_GUIDANCE, 1, teacher_seed,
                                      PER_DIGIT, 2, "euler")
        ui.image(digit_grid(np.clip(t1.final[:, 0], 0, 1)),
                 f"flow-class (the teacher), one Euler step, γ = {FLOW_GUIDANCE:g}, seed {teacher_seed}: "
                 "a blurred average of each class, since its curved paths need many steps", scale,
                 width=420 if not big else "stretch")

if not one_step:
    st.caption(
        "Saved during training: 4 samples per column"
        + (
            f", digits 0 to 9 left to right, γ = {FLOW_GUIDANCE:g}"
            if class_model
            else " (unconditional: the digit is whatever the field leads to)"
        )
        + f", {EULER_STEPS} Euler steps, seed 0."
    )
epochs = [] if one_step else snapshot_epochs(name)
if not epochs and not one_step:
    st.info(
        f"No training snapshots in `{model_folder(name)}/snapshots` yet; training writes "
        f"them after epochs 1, 5 and 10: `python -m engine train {name} --out {model_folder(name)}`."
    )
else:
    for col, ep in zip(st.columns(max(3, len(epochs)))[: len(epochs)], epochs, strict=True):
        snap = cache_partb.load_snapshot(name, ep)
        if snap is None:
            col.warning(f"The epoch {ep} snapshot is unreadable.")
            continue
        img = digit_grid(snap[0]["samples"][:, 0])
        with col:
            ui.image(img, f"after epoch {ep}", scale, width="stretch",
                     alt=f"{name} samples saved after training epoch {ep}: {PER_DIGIT} of each digit, "
                     "a column per digit 0 to 9")
            download(f"epoch {ep}", img, f"{name}_epoch{ep}", f"b2_dl_{name}_{ep}")

# ----------------------------------------------------------------------------- 2. live samples
# presenter mode: the form beside the lead figure, the samples (and their progress bar) in it
if big:
    form_box, picture_box = lead.controls, lead.figure
else:
    st.header("Sample live")
    form_box = picture_box = st.container()
with picture_box:
    loaded = controls.require_model(name)
run = None
if loaded is not None:
    with form_box, st.form("b2_form", border=False):
        c1, c2, c3, c4 = st.columns([2, 2, 2, 1]) if not big else [st.container() for _ in range(4)]
        gamma = c1.slider(
            "CFG scale γ",
            **ui.linked(
                "b2_gamma",
                FLOW_GUIDANCE,
                min_value=GAMMA_RANGE[0],
                max_value=GAMMA_RANGE[1],
                step=GAMMA_RANGE[2],
            ),
            disabled=not class_model or one_step,
            help="u = u_uncond + γ (u_cond − u_uncond); only for the class model"
            + (f"; baked into the one-step model (trained on pairs made at γ = {FLOW_GUIDANCE:g})"
               if one_step else ""),
        )
        sampler = c2.selectbox(
            "ODE solver",
            **ui.linked(
                "b2_sampler",
                "euler",
                ["euler", "midpoint", "heun", "rk4"],
                "index",
                format_func=controls.SAMPLER_LABELS.get,
            ),
            help="Euler is the course's; midpoint and Heun cost 2 network evaluations a "
            "step, RK4 4, and each is more accurate per step (see Fewer steps).",
        )
        steps = c3.select_slider(
            "Steps",
            **(ui.linked("b2_reflow_steps", 1, list(REFLOW_STEPS)) if one_step
               else ui.linked("b2_steps", EULER_STEPS, list(FLOW_STEP_CHOICES))),
            help="The one-step model is made for 1 Euler step; more refine little (Fewer steps)." if one_step
            else f"Fewer are faster, coarser; {EULER_STEPS} Euler steps is the course's setting.",
        )
        seed = int(
            c4.number_input(
                "Seed",
                **ui.linked("b2_seed", int(st.session_state.get("seed", 0)), min_value=0, max_value=10_000),
            )
        )
        submitted = st.form_submit_button("Sample", type="primary")
    guidance_used = (default_guidance(loaded.config) if one_step else float(gamma)) if class_model else None
    params = (name, guidance_used, int(steps), seed, sampler)
    if submitted or (one_step and (st.session_state.get("b2_params") or ("",))[0] != name):
        st.session_state["b2_params"] = params  # one step is instant: it samples without a press
    shown = st.session_state.get("b2_params")
    with picture_box:
        if shown is not None and shown[0] == name:
            _, guidance, n_steps, sample_seed, solver = shown
            label = f"Sampling: {n_steps} {solver.title()} steps on {10 * PER_DIGIT} images…"
            run = ui.run_with_progress(
                cache_partb.flow_samples,
                name,
                root,
                stamp(name),
                guidance,
                n_steps,
                sample_seed,
                PER_DIGIT,
                48,
                solver,
                label=label,
            )
            img = digit_grid(run.final[:, 0])
            baked = f" (γ = {FLOW_GUIDANCE:g} baked in)" if one_step else ""
            g = "" if guidance is None else f"γ = {guidance:g}{baked}, "
            solver_name = controls.SAMPLER_LABELS[solver]
            how = "" if solver == "euler" else f" of {solver_name} ({run.nfe} evaluations)"
            ui.image(img, f"{name}: {g}{n_steps} step{'s' if n_steps != 1 else ''}{how}, seed {sample_seed}",
                     scale + 1,
                     width="stretch" if big else 620)  # presenter.css fits it to the first screen
            download("samples", img, f"{name}_g{shown[1]}_steps{shown[2]}_seed{shown[3]}", "b2_dl_live")
            if shown[1:] != params[1:]:
                st.caption("The controls changed: press **Sample** to draw with the new settings.")
        else:
            final = snapshot_epochs(name)
            if final:
                snap = cache_partb.load_snapshot(name, final[-1])
                if snap is not None:
                    ui.image(
                        digit_grid(snap[0]["samples"][:, 0]),
                        f"Saved at the end of training (epoch {final[-1]}, "
                        + (f"γ = {FLOW_GUIDANCE:g}, " if class_model else "no guidance, ")
                        + f"{EULER_STEPS} steps, seed 0). Press Sample to draw live and to see the "
                        "trajectory.",
                        scale + 1,
                        width="stretch" if big else 620,
                    )
            else:
                st.caption(
                    f"Press **Sample** to draw 4 of each digit "
                    f"({EULER_STEPS} steps take a while on a laptop CPU)."
                )

# ----------------------------------------------------------------------------- 3. trajectory
st.header("The trajectory")
st.markdown(
    r"""
Each frame is one step of the solver (Euler, as in the course, unless chosen above). Left: the
state $x_t$ (values outside $[0, 1]$ clipped). Right: the
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
    which = (
        st.segmented_control(
            "Show",
            **ui.linked(
                "b2_which",
                "all",
                choices,
                "default",
                format_func=lambda d: "all 40" if d == "all" else f"digit {d}",
            ),
        )
        or "all"
    )
    show_speed = (
        False
        if big
        else st.toggle("Velocity magnitude |u|", **ui.linked("b2_speed", False))
    )
    frame_t = np.array(run.times)
    if which == "all":
        xs = np.stack([digit_grid(f[:, 0]) for f in run.x])
        x1 = np.stack([digit_grid(f[:, 0]) for f in run.x_hat])
    else:
        sel = np.repeat(np.arange(10), PER_DIGIT) == which
        xs = np.stack([images.grid(list(f[sel, 0]), ncols=2) for f in run.x])
        x1 = np.stack([images.grid(list(f[sel, 0]), ncols=2) for f in run.x_hat])
    fig = figures.animation_figure(
        [
            figures.Panel("x<sub>t</sub>", xs, [f"x<sub>t</sub> at t = {t:.2f}" for t in frame_t]),
            figures.Panel("x̂<sub>1</sub> = x<sub>t</sub> + (1 − t) u", x1),
        ],
        [f"t = {t:.2f}" for t in frame_t],
        line=(frame_t, flow_speed(run), "mean |u|") if show_speed else None,
        scale=2 if which == "all" else 4,
        height=None if which == "all" else (460 if big else 380),
    )
    ui.plot(fig, key="b2_anim", filename=f"{name}_trajectory")
    ui.gif_download(
        [images.side_by_side(a, b) for a, b in zip(xs, x1, strict=True)],
        "⬇ trajectory GIF",
        f"{name}_trajectory_{which}",
        scale_by=3 if which == "all" else 5,
        key="b2_dl_gif",
        icon=None,
        kind="tertiary",
        hold_last_ms=1200,
        captions=[f"t = {t:.2f}   left: x_t   right: x1_hat" for t in frame_t],
    )

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
logs = [c for c in map(cache_partb.model_curve, ("flow-class", "flow-class-constant-lr")) if c is not None]
if not logs:
    st.info(f"No training logs yet in `{models_dir()}` (flow-class, flow-class-constant-lr).")
else:
    weight = 0.95 if big else st.slider("Smoothing", 0.0, 0.99, 0.95, 0.01, key="b2_smooth")
    ui.plot(
        curves.loss_figure(logs, weight, title="Flow-matching loss", height=460 if big else 380),
        key="b2_loss",
        filename="flow_lr_schedule_loss",
    )
    if not big:
        ui.plot(curves.lr_figure(logs), key="b2_lr", filename="flow_lr_schedule_lr")
    missing = {"flow-class", "flow-class-constant-lr"} - {c.label for c in logs}
    for m in sorted(missing):
        st.caption(f"{m} has no log yet: `python -m engine train {m} --out {model_folder(m)}`")
sweep = read_lr_sweep(model_folder("flow-class-constant-lr") / "lr_sweep.json")
if sweep is not None:
    ui.plot(
        curves.lr_sweep_figure(sweep, height=460 if big else 380),
        key="b2_sweep",
        filename="flow_constant_lr_sweep",
    )
    st.caption(curves.lr_sweep_caption(sweep))

st.subheader("The write-up's figure: digit 2 from each schedule")
LR_MODELS = {
    "flow-class": "ExponentialLR 1e-2 → 1.26e-3",
    "flow-class-constant-lr": "constant 1e-3 (ships)",
    "flow-class-constant-lr-1e-4": "constant 1e-4 (the write-up's rate)",
}
shown_lr = {}
for m in LR_MODELS:
    last = snapshot_epochs(m)
    snap = cache_partb.load_snapshot(m, last[-1]) if last else None
    if snap is not None:
        shown_lr[m] = (snap[0]["samples"][:, 0], snap[0]["labels"], last[-1])
if shown_lr:
    which_digits = (
        st.segmented_control("Digits", **ui.linked("b2_lr_digits", "2", ["2", "all"], "default"))
        or "2"
    )
    for col, (m, (samples, labels, ep)) in zip(st.columns(len(shown_lr)), shown_lr.items(), strict=True):
        img = (
            images.grid(list(samples[np.asarray(labels) == 2]), ncols=4)
            if which_digits == "2"
            else digit_grid(samples)
        )
        with col:
            unfinished = "" if ep >= 10 else " of 10: still training"
            ui.image(img, f"{m}: {LR_MODELS[m]}, epoch {ep}{unfinished}", scale, width="stretch")
            download(m, img, f"{m}_digit{which_digits}", f"b2_dl_lr_{m}")
    st.caption(
        f"Each model's last training snapshot (its epoch is named), same noise: γ = {FLOW_GUIDANCE:g}, "
        f"{EULER_STEPS} Euler steps, seed 0. "
        "The shipped constant rate is the one with the lowest loss over the ten epochs in the "
        "sweep above."
    )
missing_lr = [m for m in LR_MODELS if m not in shown_lr]
if "flow-class-constant-lr-1e-4" in missing_lr:
    st.caption(
        "The constant 1e-4 model is not trained on this machine yet (about 2 h on a 2-core CPU, "
        "minutes on a GPU): `python -m engine train flow-class-constant-lr-1e-4 --out "
        f"{model_folder('flow-class-constant-lr-1e-4')}`; it appears here when it is done."
    )
if name == "flow-time":
    c = cache_partb.model_curve("flow-time")
    if c is not None:
        ui.plot(
            curves.loss_figure([c], 0.95, title="flow-time loss"),
            key="b2_loss_time",
            filename="flow_time_loss",
        )

# ----------------------------------------------------------------------------- 5. a lab run, 6. likelihood
flow_views.lab_run_block(scale)
flow_views.how_likely_block(big)

# ----------------------------------------------------------------------------- 7. your model
from dashboard import check  # noqa: E402  -- this block is self-contained

check.your_model_block()
