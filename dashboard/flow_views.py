"""The Flow matching page's later sections, as functions the page calls: a Training lab run beside
the shipped flow-class (``lab_run_block``, also "your run" on the Sampling page) and "How likely
is a digit?" (``how_likely_block``, its logic without Streamlit in ``dashboard.likelihood``).
Flow matching convention: t runs 0 (noise) -> 1 (data)."""

from __future__ import annotations

import contextlib

import streamlit as st

from dashboard import cache_partb, controls, images, jobs, likelihood, ui
from dashboard.partb import models_dir, stamp
from dashboard.settings import EULER_STEPS, FLOW_GUIDANCE


def lab_run_block(scale: int, key: str = "b2_your_run", heading: str | None = None) -> None:
    """A finished flow-class run of the Training lab beside the shipped model, the same noise
    (the Flow matching page, and the Sampling page's "your run"; ``key`` names the run picker)."""
    (st.subheader if heading else st.header)(heading or "A Training lab run beside the shipped model")
    mine = [j.run_id for j in jobs.list_jobs() if j.model == "flow-class" and j.status == "finished"]
    if not mine:
        st.caption("Train flow-class in the **Training lab** (the class recipe gives digits in minutes on a "
                   "laptop CPU); a finished run appears here next to the shipped model, from the same noise.")
        with contextlib.suppress(Exception):  # StreamlitPageNotFoundError outside the app's navigation
            st.page_link("b3_training_lab.py", label="Training lab", icon=":material/model_training:")
    else:
        run_id = st.selectbox("Run", mine, key=key,
                              help="Finished flow-class runs of the Training lab (everyone's on this "
                              "server).")
        shipped_dir, run_dir = models_dir() / "flow-class", jobs.run_path(run_id)
        ours = cache_partb.run_preview(str(shipped_dir), stamp("flow-class"))
        theirs = cache_partb.run_preview(str(run_dir), jobs.weights_stamp(run_id))
        y1, y2 = st.columns(2)
        pairs = ((y1, "flow-class (shipped)", ours), (y2, f"{run_id} (Training lab run)", theirs))
        for col, label, got in pairs:
            with col:
                if got is None:
                    st.info(f"{label}: no weights to draw with.")
                    continue
                ui.image(images.table(images.digit_columns(got["images"], 3)),
                         f"{label}: the classifier reads {got['accuracy']:.0%} as the asked digit", scale,
                         width="stretch")
        st.caption(f"3 of each digit 0-9 from the same noise, γ = {FLOW_GUIDANCE:g}, 8 midpoint steps on a "
                   f"grid crowded near the data (the quality the course's {EULER_STEPS} Euler steps give, "
                   "in 16 network evaluations).")


def how_likely_block(big: bool) -> None:
    """Score an input's exact bits/dim under flow-class and place it among the test digits."""
    root = str(models_dir())
    st.header("How likely is a digit?")
    with st.expander("How a flow scores an image"):
        st.markdown(
            r"""
    A flow is invertible: run $dx/dt = u_\theta$ **backwards** from an image to its noise $x_0$, add
    up how much the flow spreads space on the way (the divergence of $u_\theta$), and you get the
    image's exact log-likelihood,
    $\log p_1(x_1) = \log \mathcal{N}(x_0; 0, I) - \int_0^1 \nabla\!\cdot u_\theta(x_t, t)\, dt$.
    Reported in **bits per dimension** (per pixel, on the 0..255 scale): lower is likelier, and a
    model that spread its mass evenly over all images would score 8. The divergence is estimated with
    4 random probes (the ± below); the unconditional field (null class) is used, no guidance.
    Surprise: a blank page scores *better* than a real digit, the known puzzle of likelihood models
    (Nalisnick et al., 2019): simple images are easy to compress. See docs/likelihood.md.
    """
        )
    ref = likelihood.reference()
    if controls.require_model(likelihood.MODEL) is not None:
        c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
        inputs = list(likelihood.INPUTS)
        kind = c1.selectbox("Input", **ui.linked("b2_nll_kind", inputs[0], inputs, "index"))
        with c2:
            picks = kind in inputs[:2]  # a test digit, or the same inverted
            index = controls.digit_picker("b2_nll_index", 0, "Test digit (index)") if picks else 0
        own = None  # a drawing or an upload, (28, 28) in [0, 1]
        if kind == likelihood.OWN[0]:
            st.caption("Draw a digit on the black square (white ink, like MNIST), then press **Score it**.")
            own = images.canvas_drawing(controls.canvas("b2_nll_canvas", 252 if big else 280))
        elif kind == likelihood.OWN[1]:
            got = controls.uploaded("b2_nll_upload", 28, "L", hint="Choose an image of a digit: it becomes "
                                    "28×28 gray, light strokes on dark like MNIST.")
            own = None if got is None else got[0]
        waiting = kind in likelihood.OWN and own is None  # nothing drawn or uploaded yet
        if c3.button("Score it", key="b2_nll_run", type="primary", disabled=waiting):
            st.session_state["b2_nll_params"] = (kind, index, ui.seed(), own)
        asked = st.session_state.get("b2_nll_params")
        if asked is not None:
            kind_, index_, seed_, own_ = asked
            image, result = ui.run_with_progress(
                cache_partb.likelihood, kind_, index_, seed_, root, stamp(likelihood.MODEL), own_,
                label="Integrating the ODE…",
            )
            ui.image(image, likelihood.caption(asked[0], result, ref), 10, width=360 if big else 280)
        else:
            st.caption("Pick an input and press **Score it** (a few seconds on a laptop CPU: 128 "
                       "network evaluations and 512 vector-Jacobian products).")
        if ref is not None:
            mine = (asked[0], result["bits_per_dim"]) if asked is not None else None
            ui.plot(likelihood.histogram(ref, mine), key="b2_nll_hist", filename="flow_class_bits_per_dim")
            st.caption(likelihood.summary(ref))
