"""DDPM and flow matching side by side: same digit, same seed (so the same starting noise).

DDPM (Part A, Ho et al.): x_0 is the clean image, t counts down 999 -> 0, the model predicts
the noise eps. Flow matching (Part B2, Lipman et al.): x_0 is noise, x_1 is data, t runs
0 -> 1, the model predicts the velocity u. The two conventions are opposite.
"""

import numpy as np
import streamlit as st

from dashboard import cache_partb, controls, figures, images, ui
from dashboard.partb import align_frames, models_dir, stamp
from dashboard.settings import (
    COURSE_DDPM_STEPS,
    DDPM_GUIDANCE,
    EULER_STEPS,
    FLOW_GUIDANCE,
    GAMMA_RANGE,
    STRIDE,
    STRIDE_CHOICES,
)

PRESENTER_HEIGHT = 520  # px: the animation, its play buttons and slider whole on a 1280x720 screen

big = ui.presenter()
root = str(models_dir())

st.title("DDPM ↔ flow matching")
lead = ui.lead()  # presenter mode: the two trajectories first, digit and seed beside them
with lead.intro:
    st.markdown("Two ways to turn noise into a digit, run from the **same** noise image (same seed).")
    left, right = st.columns(2)
    with left:
        st.markdown(
            r"""
**DDPM** (`ddpm-class`, Part A)

- $x_0$ is the **clean** image; $t$ counts **down** from 999 (noise) to 0.
- Forward: $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$.
- The UNet predicts the noise $\epsilon_\theta(x_t, t, c)$; the clean estimate is
  $\hat{x}_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta) / \sqrt{\bar\alpha_t}$.
- Each strided step ($t = 990, 960, \dots, 0$) blends $\hat{x}_0$ and $x_t$ and
  adds fresh noise: the path is **stochastic**.
"""
        )
    with right:
        st.markdown(
            r"""
**Flow matching** (`flow-class`, Part B2)

- $x_0$ is the **noise**, $x_1$ the data; $t$ runs **up** from 0 to 1.
- Path: $x_t = (1 - t)\,x_0 + t\,x_1$.
- The UNet predicts the velocity $u_\theta(x_t, t, c) \approx x_1 - x_0$; the clean estimate
  is $\hat{x}_1 = x_t + (1 - t)\,u_\theta$.
- Each Euler step is $x_{t + \Delta t} = x_t + \Delta t\,u_\theta$: no noise is added, the path
  is **deterministic** once $x_0$ is drawn.
"""
        )
    st.markdown(
        r"""
**Classifier-free guidance**, both models: CS180 writes
$\epsilon = \epsilon_u + \gamma\,(\epsilon_c - \epsilon_u)$ (and the same for $u$), so $\gamma = 0$
is unconditional and $\gamma = 1$ plainly conditional. Papers often write
$(1 + w)\,\epsilon_c - w\,\epsilon_u$: the same thing with $\gamma = 1 + w$. The course's
defaults are $\gamma = 7$ for the DDPM and $\gamma = 5$ for flow matching.
"""
    )

with lead.figure:
    ok = controls.show_missing(["ddpm-class", "flow-class"])
if ok:
    with lead.controls:
        # presenter mode: two samples (no count), the digit over the seed in the narrow column
        c1, c2, c3 = st.columns([3, 1, 1]) if not big else (st.container(), st.container(), None)
        digit = c1.segmented_control("Digit", **ui.linked("ab_digit", 3, list(range(10)), "default"))
        digit = 3 if digit is None else int(digit)
        seed = int(
            c2.number_input(
                "Seed",
                **ui.linked("ab_seed", int(st.session_state.get("seed", 0)), min_value=0, max_value=10_000),
            )
        )
        count = (
            2
            if big
            else int(c3.number_input("Samples", **ui.linked("ab_count", 4, min_value=1, max_value=8)))
        )
        MODES = {
            "course": "The course's samplers: strided DDPM vs Euler",
            "ode": "Two ODEs: DDIM (η = 0) vs flow matching",
        }
        mode = (
            st.segmented_control(
                "Compare",
                **ui.linked("ab_mode", "course", list(MODES), "default", format_func=MODES.get),
                wrap=True,  # presenter mode's narrow column: one option a row, not a sideways scroll
            )
            or "course"
        )
        ddpm_sampler = "ddpm" if mode == "course" else "ddim"
        stride, g_ddpm, ddpm_steps, solver, steps, g_flow = (
            STRIDE,
            DDPM_GUIDANCE,
            COURSE_DDPM_STEPS,
            "euler",
            100,
            FLOW_GUIDANCE,
        )
        if not big:
            with st.expander("Sampler settings", expanded=False):
                d1, d2, d3, d4, d5 = st.columns(5)
                if mode == "course":
                    stride = int(
                        d1.select_slider(
                            "DDPM stride",
                            **ui.linked("ab_stride", STRIDE, list(STRIDE_CHOICES)),
                            help=f"990 → 0 in steps of this size ({STRIDE}: {COURSE_DDPM_STEPS} steps)",
                        )
                    )
                else:
                    ddpm_steps = int(
                        d1.select_slider(
                            "DDIM steps",
                            **ui.linked(
                                "ab_ddim_steps", COURSE_DDPM_STEPS, [5, 10, 20, COURSE_DDPM_STEPS, 50, 100]
                            ),
                        )
                    )
                g_ddpm = float(
                    d2.slider(
                        "DDPM γ",
                        **ui.linked(
                            "ab_g_ddpm",
                            DDPM_GUIDANCE,
                            min_value=GAMMA_RANGE[0],
                            max_value=GAMMA_RANGE[1],
                            step=GAMMA_RANGE[2],
                        ),
                    )
                )
                solver = d3.selectbox(
                    "Flow solver",
                    **ui.linked(
                        "ab_solver",
                        "euler",
                        ["euler", "midpoint", "heun", "rk4"],
                        "index",
                        format_func=controls.SAMPLER_LABELS.get,
                    ),
                )
                steps = int(
                    d4.select_slider(
                        "Flow steps",
                        **ui.linked("ab_steps", 100, [10, 20, COURSE_DDPM_STEPS, 50, 100, EULER_STEPS]),
                    )
                )
                g_flow = float(
                    d5.slider(
                        "Flow γ",
                        **ui.linked(
                            "ab_g_flow",
                            FLOW_GUIDANCE,
                            min_value=GAMMA_RANGE[0],
                            max_value=GAMMA_RANGE[1],
                            step=GAMMA_RANGE[2],
                        ),
                    )
                )
    with lead.figure:
        ddpm, flow, start_equal = ui.run_with_progress(
            cache_partb.ddpm_vs_flow,
            root,
            (stamp("ddpm-class"), stamp("flow-class")),
            digit,
            count,
            seed,
            stride,
            g_ddpm,
            steps,
            g_flow,
            ddpm_sampler,
            ddpm_steps if mode == "ode" else None,
            solver,
            label="Sampling with both models…",
        )
    ddpm_name = "DDPM" if mode == "course" else "DDIM"
    flow_steps = f"{steps} {controls.SAMPLER_LABELS[solver].replace(' (the course)', '')} steps"
    n_ddpm, n_flow = len(ddpm.times), len(flow.times)
    ia, ib = align_frames(n_ddpm, n_flow, min(max(n_ddpm, n_flow), 48))

    def row(frames: np.ndarray) -> np.ndarray:
        return np.stack([images.grid(list(f[:, 0]), ncols=count) for f in frames])

    ddpm_x, ddpm_x0 = row(ddpm.x[ia]), row(ddpm.x_hat[ia])
    flow_x, flow_x1 = row(flow.x[ib]), row(flow.x_hat[ib])
    ddpm_titles = [f"{ddpm_name} x<sub>t</sub>, t = {ddpm.times[i]}" for i in ia]
    flow_titles = [f"flow x<sub>t</sub>, t = {flow.times[i]:.2f}" for i in ib]
    # the heading and its notes: over the animation at a desk, as always; in presenter mode in
    # the "What is happening" expander
    with lead.intro if big else lead.figure:
        st.header("The two trajectories")
        st.markdown(
            f"""
The frames are matched by *fraction of the way*, not by $t$ (the two $t$ axes mean different
things). {ddpm_name}: {n_ddpm - 1} steps with $\\gamma = {g_ddpm:g}$; flow: {flow_steps}
with $\\gamma = {g_flow:g}$ (trajectory shown at {n_flow} of its states). Top row: the
current state; bottom row: each model's clean estimate ($\\hat{{x}}_0$ for DDPM,
$\\hat{{x}}_1$ for flow).
"""
        )
        if start_equal:
            st.caption(
                "Both start from the same tensor of N(0, I) draws. DDPM shows its [-1, 1] pixels as "
                "(x + 1) / 2 and flow matching shows its [0, 1] pixels as they are (clipped), so the "
                "first frames look different although the noise is the same."
            )
        else:
            st.caption("Note: the two samplers did not start from the same noise tensor.")
    with lead.figure:
        scale = 4 if count <= 2 else 3
        fig = figures.animation_figure(
            [
                figures.Panel(f"{ddpm_name} x_t", ddpm_x, ddpm_titles),
                figures.Panel("flow x_t", flow_x, flow_titles),
                figures.Panel(f"{ddpm_name} x̂<sub>0</sub>", ddpm_x0),
                figures.Panel("flow x̂<sub>1</sub>", flow_x1),
            ],
            [f"{k / (len(ia) - 1):.0%}" for k in range(len(ia))],
            scale=scale,
            rows=2,
            height=PRESENTER_HEIGHT if big else None,
        )
        ui.plot(fig, key="ab_anim", filename=f"ddpm_vs_flow_digit{digit}")
        gif_frames = [
            images.grid([images.side_by_side(a, b, gap=6), images.side_by_side(c, d, gap=6)], 1, pad=6)
            for a, b, c, d in zip(ddpm_x, flow_x, ddpm_x0, flow_x1, strict=True)
        ]
        captions = [
            f"DDPM t={ddpm.times[i]}  flow t={flow.times[j]:.2f}" for i, j in zip(ia, ib, strict=True)
        ]
        ui.gif_download(
            gif_frames,
            "⬇ side-by-side GIF",
            f"ddpm_vs_flow_digit{digit}_seed{seed}",
            scale_by=4,
            key="ab_gif",
            icon=None,
            kind="tertiary",
            hold_last_ms=1200,
            captions=captions,
        )

    st.header("Where they end")
    a, b = st.columns(2)
    for col, label, img, file in (
        (a, f"{ddpm_name}, {n_ddpm - 1} steps", images.grid(list(ddpm.final[:, 0]), ncols=count), "ddpm"),
        (b, f"flow matching, {flow_steps}", images.grid(list(flow.final[:, 0]), ncols=count), "flow"),
    ):
        with col:
            ui.image(img, label, 6 if big else 5, width="stretch",
                     alt=f"Final samples, {label}: {count} digits")
            ui.download_png(
                img,
                f"{file}_digit{digit}_seed{seed}",
                f"ab_dl_{file}",
                label="⬇ PNG",
                scale_by=6,
                icon=None,
                kind="tertiary",
            )
    if mode == "course":
        st.markdown(
            r"""
Same starting noise, different endings: DDPM injects new noise at every step, so its path
wanders; the flow's ODE path is fixed by $x_0$. Per step, both cost one batched UNet call for
the two CFG branches.
"""
        )
    else:
        st.markdown(
            r"""
**Two ODEs from the same noise.** DDIM with $\eta = 0$ adds no noise: each step moves $x_t$ to
$\sqrt{\bar\alpha_{t'}}\,\hat{x}_0 + \sqrt{1 - \bar\alpha_{t'}}\,\hat\epsilon$, so the DDPM becomes a
deterministic ODE too (the probability-flow ODE) and its ending is fixed by $x_T$, like the flow's.
The two models were trained apart, so they still end on different digits; what differs is the
path: DDIM's mixes $\hat{x}_0$ and $\hat\epsilon$ along the cosine noise schedule, flow matching's
aims along the straight line $x_t = (1 - t)\,x_0 + t\,x_1$. Both being ODEs, a solver can take
big steps on either: the **Fewer steps** page measures how few.
"""
        )
