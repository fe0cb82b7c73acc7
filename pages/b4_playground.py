"""2D playground: diffusion and flow matching as geometry. Pick (or draw, or upload) a 2D point
set, train DDPM, flow matching, rectified flow and OT flow matching on it in seconds, and watch
the particles travel from noise to data over the learned vector field.

Flow matching (Part B): x_0 ~ N(0, I) is noise, x_1 data, t runs 0 -> 1. DDPM (Part A): x_0 is
data, t counts down 990 -> 0. The trained models belong to this browser session
(``st.session_state``): training takes seconds, and nothing is shared with other users.
"""

import math
import time

import pandas as pd
import streamlit as st

from dashboard import alt, controls, ui
from dashboard import playground as pg

big = ui.presenter()
seed = ui.seed()

st.title("2D playground")
# presenter mode (#25): the particles first (before training, the data), the controls beside them
lead = ui.lead(ratio=(1, 3))
with lead.intro:
    st.markdown(
        r"""
In two dimensions you can *see* what the models learn. Every model here turns noise
$x_0 \sim \mathcal{N}(0, I)$ into points of a 2D data set; each particle below is one sample on
its way, and the arrows are the learned field at that moment.

- **Flow matching** learns the velocity $u_\theta(x_t, t) \approx x_1 - x_0$ on the straight
  path $x_t = (1 - t)\,x_0 + t\,x_1$ (noise $x_0$ and data $x_1$ paired at random).
- **Rectified flow (reflow)** retrains it on (noise, sample) pairs made by that first flow: the
  pairs' lines no longer cross, so the new paths are nearly straight and one Euler step suffices.
- **OT flow matching** pairs noise and data inside each minibatch by optimal transport (the
  least total squared distance) before drawing the lines.
- **DDPM** predicts the noise $\epsilon$ with the cosine schedule and samples with the course's
  strided loop, which adds fresh noise at every step: its paths wander.
"""
    )


def memo(trained: pg.Trained, name: str, key: tuple, fn, *args, label: str):
    """``fn(*args, _progress=...)`` computed once per training and ``key`` (with a progress bar):
    the trained models live in this session, and their results with them (``Trained.memo``)."""
    return trained.memo.get((name, *key), lambda: ui.run_with_progress(fn, *args, label=label))


def spot(presenter_place):
    """Where a piece of the page goes: in presenter mode ``presenter_place`` (a part of the lead),
    at a desk here, in the reading order the page always had."""
    return presenter_place if big else st.container()


def lead_layout(panels: int) -> tuple[int, int]:
    """Presenter mode: (columns, canvas px) of the animation in the lead figure, whole on a
    1280x720 screen and no wider than the figure's column at 1024x768 (the canvases have fixed
    sizes): one panel large, two side by side, three or four two by two."""
    if panels == 1:
        return 1, 420
    return 2, 300 if panels == 2 else 200


# ----------------------------------------------------------------------------- 1. data
with lead.controls:
    if not big:
        st.header("1 · The data")
    ui.default("b4_source", "moons")
    source = st.segmented_control("Point set", list(pg.SOURCES), key="b4_source", format_func=pg.SOURCES.get,
                                  wrap=True)  # presenter mode: on two rows in the narrow controls column
    source = source or "moons"
    if not big:
        left, right = st.columns([3, 2])
if big:  # the drawing or the upload below the lead; the training controls beside the picture
    left, right = st.container(), lead.controls
    data_head = left.container()
with left:
    data = None
    if source == "draw":
        ui.default("b4_pen", 0)
        pen = st.radio("Pen (its colour is the class)", [0, 1, 2], key="b4_pen", horizontal=True,
                       format_func=lambda k: ("blue", "red", "green")[k] + f": class {k}")
        st.caption("Draw strokes or dots; every painted pixel becomes a point. Use more than one colour "
                   "to give the points classes (for CFG).")
        rgba = controls.canvas("b4_canvas", pg.CANVAS_PX, stroke=pg.PEN_COLORS[pen], width=12,
                               background_color="#ffffff")
        try:
            data = pg.points_from_canvas(rgba, seed=seed)
        except pg.PointsError as e:
            st.info(f"Not a point set yet: {e}.")
    elif source == "upload":
        up = st.file_uploader("Points (CSV)", type=["csv", "txt"], key="b4_upload", help=pg.UPLOAD_HELP)
        if up is None:
            st.info(pg.UPLOAD_HELP)
        else:
            try:
                data = pg.load_csv(up.getvalue(), ui.slug(up.name))
            except pg.PointsError as e:
                ui.error_box(f"Could not use this file: {e}.")
    else:
        data = pg.DATASETS[source]
    preview_box = st.container()  # filled below, once it is known where the data's picture goes

# ----------------------------------------------------------------------------- 2. train
with right:
    st.subheader("Train")
    ui.default("b4_objectives", list(pg.OBJECTIVES))
    objectives = st.multiselect("Objectives", list(pg.OBJECTIVES), key="b4_objectives", format_func=pg.label,
                                help="Reflow needs a flow-matching model first: it is trained too.")
    labelled = data is not None and data.num_classes > 1
    ui.default("b4_conditional", True)
    conditional = st.toggle("Also a class-conditioned flow (for CFG)", key="b4_conditional",
                            disabled=not labelled,
                            help="One more flow-matching model that takes the class as input, dropped 10 % "
                            "of the time (p_uncond = 0.1) so it also learns the unconditional field.")
    conditional = conditional and labelled
    with ui.secondary("Training settings"):
        ui.default("b4_steps", 2000)
        steps = int(st.select_slider("Steps per objective (batch 256, Adam, 1 CPU thread)",
                                     [250, 500, 1000, 2000, 4000], key="b4_steps"))
    start = st.button("Train", type="primary", key="b4_train", icon=":material/model_training:",
                      disabled=data is None or not objectives)

# presenter mode: the data is the picture until there are particles to show
data_leads = big and not start and st.session_state.get("b4_trained") is None
if big and (source in ("draw", "upload") or (data is not None and not data_leads)):
    data_head.header("1 · The data")
if data is not None:
    with lead.figure if data_leads else preview_box:
        x, y = pg.preview(data, 2000, seed)
        ui.plot(pg.points_figure(x, y, data.class_names, height=340 if not big else 420), key="b4_preview",
                filename=f"playground_{source}")
        classes = (f"{data.num_classes} classes ({', '.join(data.class_names)})" if data.num_classes
                   else "no classes")
        st.caption(f"{data.title}: 2000 points drawn with seed {seed}; {classes}.")

if start:
    with spot(lead.figure):  # presenter mode: the progress where the particles will be
        bar = st.progress(0.0, text="Training…")
        chart = st.empty()
    curves: dict[str, list[float]] = {}
    shown = {"at": 0.0, "points": -1}

    def on_step(fraction: float, text: str, objective: str, loss: float) -> None:
        if not math.isnan(loss):  # nan while reflow samples its pairs
            curves.setdefault(objective, []).append(loss)
        now = time.monotonic()
        if now - shown["at"] < 0.3:
            return
        shown["at"] = now
        bar.progress(min(fraction, 1.0), text=text)
        points = sum(len(c) for c in curves.values())
        if points != shown["points"] and points >= 30:
            shown["points"] = points
            shown["draws"] = shown.get("draws", 0) + 1  # a new key per redraw: Streamlit refuses twins
            fig = pg.loss_figure(curves, height=260)
            chart.plotly_chart(fig, key=f"b4_live_loss_{shown['draws']}", alt=alt.chart(fig))

    key = pg.data_key(data, source)
    trained = pg.train_models(data, objectives, conditional=conditional, seed=seed, steps=steps, key=key,
                              callback=on_step)
    st.session_state["b4_trained"] = trained
    bar.empty()
    chart.empty()

trained = st.session_state.get("b4_trained")
if trained is None:
    spot(lead.figure).info("Press **Train**: each model trains in a few seconds on a laptop CPU (all five in "
                           "about half a minute).")
    st.stop()

parts = ", ".join(f"{pg.label(o)} {r.seconds:.1f} s" for o, r in trained.results.items())
parts += f", {pg.label('cfg')} {trained.cfg.seconds:.1f} s" if trained.cfg else ""
st.caption(f"Trained on {trained.data.title} in {trained.seconds:.1f} s ({parts}); {trained.steps} steps "
           f"each, seed {trained.seed}.")
current = pg.data_key(data, source) if data is not None else None
if current != trained.key:
    spot(right).warning("The models below were trained on another point set: press **Train** to train on "
                        "this one.")
ui.plot(pg.loss_figure(trained.losses), key="b4_losses",
        filename="playground_losses")

# ----------------------------------------------------------------------------- 3. watch
st.header("2 · From noise to data")
# presenter mode: under Train, beside the particles, folded (the narrow column has no room for more)
with lead.controls.expander("Particles and steps") if big else st.container():
    c1, c2 = st.columns(2) if not big else (st.container(), st.container())
    ui.default("b4_particles", 2000)
    n = int(c1.select_slider("Particles", [1000, 2000, 3000, 5000], key="b4_particles"))
    ui.default("b4_flow_steps", 50)
    flow_steps = int(c2.select_slider("Euler steps (flows); the DDPM uses the course's 33 strided steps",
                                      [5, 10, 20, 50, 100], key="b4_flow_steps"))
steps_by = {"fm": flow_steps, "reflow": flow_steps, "ot-fm": flow_steps}
with spot(lead.figure):
    runs = memo(trained, "sim", (n, seed, flow_steps), pg.simulate, trained, n, seed, steps_by,
                label="Sampling every model…")
colors = pg.hue_index(next(iter(runs.values())).states[0])
cols, size = lead_layout(len(runs)) if big else pg.layout(len(runs))
with spot(lead.intro):  # presenter mode: with the rest of the explanation
    st.markdown(
        "All panels start from the **same noise** (colour = the direction of each particle's starting "
        "point). Press **Play** or drag the slider: it runs in your browser, from the trajectories sent "
        "once. Grey lines: the paths so far of 150 particles; arrows: the learned field at that moment (for "
        "the DDPM, its deterministic DDIM step)."
    )
# presenter mode: the control bar and the captions wrap in the figure's column; the frame fits them
spot(lead.figure).iframe(pg.animation_html(runs, colors, size=size, columns=cols),
                         height="content" if big else pg.animation_height(len(runs), size, cols))
sweep = memo(trained, "sweep", (seed,), pg.nfe_sweep, trained, 2000, seed, label="Quality against steps…")
three = st.column_config.NumberColumn(format="%.3f")
st.dataframe(pd.DataFrame(pg.metrics_rows(runs, sweep)), hide_index=True,
             column_config={"straightness": three, "MMD": three, "MMD floor": three, "sliced W": three})
st.caption(
    "Straightness: mean path length over the mean straight-line distance from start to end (1 = straight "
    "lines). MMD and sliced Wasserstein (W): distance of the samples to fresh points of the data set; the "
    "floor is what two independent draws of the data score. NFE: network evaluations."
)

# ----------------------------------------------------------------------------- 4. fewer steps
st.header("3 · Fewer steps")
st.markdown(
    "Straight paths can be followed in one big step. Below, from the same noise: each flow sampled with "
    "**1 and 2 Euler steps**, and the quality of every model against its number of network evaluations "
    "(Euler steps for the flows, DDIM steps for the DDPM)."
)
flows = [o for o in ("fm", "reflow", "ot-fm") if o in trained.results]
if flows:
    ref = pg.preview(trained.data, 2000, seed + 17)[0]
    cells = [[(f"{pg.SHORT[o]}, {k} Euler step{'s' if k > 1 else ''} · MMD {sweep['few'][(o, k)][1]:.3f}",
               sweep["few"][(o, k)][0], pg.METHOD_COLORS[o]) for o in flows] for k in (1, 2)]
    ui.plot(pg.scatter_grid(cells, ref, cell_px=300 if big else 250), key="b4_few",
            filename="playground_few_steps")
ui.plot(pg.nfe_figure(sweep), key="b4_nfe", filename="playground_quality_vs_nfe")

# ----------------------------------------------------------------------------- 5. CFG
st.header("4 · Classifier-free guidance in 2D")
if trained.cfg is not None:
    names = trained.data.class_names
    ui.default("b4_cfg_class", 0)
    if st.session_state["b4_cfg_class"] not in range(len(names)):
        st.session_state["b4_cfg_class"] = 0
    label_ = st.segmented_control("Class", list(range(len(names))), key="b4_cfg_class",
                                  format_func=lambda k: names[k])
    label_ = 0 if label_ is None else int(label_)
    sets = memo(trained, "cfg", (label_, seed), pg.cfg_samples, trained, label_, 2000, seed,
                label="Guided sampling…")
    ref = pg.held_out_class(trained.data, label_, 600, seed)
    titles = [f"γ = {g:g}" + (" (unconditional)" if g == 0 else " (conditional)" if g == 1 else "")
              for g in pg.GAMMAS]
    ui.plot(pg.density_row(sets, titles, ref, height=300 if not big else 380), key="b4_cfg",
            filename=f"playground_cfg_class{label_}")
    st.caption(
        f"Flow matching, 50 Euler steps, 2000 samples per panel from the same noise; red dots: data of "
        f"{names[label_]}. u = u(∅) + γ (u(c) − u(∅)): γ = 0 is the unconditional density, γ = 1 the "
        "class's, and γ > 1 pushes the samples further away from the other classes: a tighter density, "
        "and at large γ one that overshoots the data itself (over-guidance)."
    )
else:
    st.info("CFG needs the class-conditioned flow: pick a labelled set (moons, 8 Gaussians, spirals, "
            "circles, or a drawing in several colours), keep **Also a class-conditioned flow** on and train.")

# ----------------------------------------------------------------------------- 6. density
st.header("5 · The density it learned")
if flows:
    ui.default("b4_density_obj", flows[0])
    if st.session_state["b4_density_obj"] not in flows:
        st.session_state["b4_density_obj"] = flows[0]
    obj = st.segmented_control("Flow", flows, key="b4_density_obj", format_func=pg.label) or flows[0]
    dens = memo(trained, "density", (obj, seed), pg.learned_density, trained, obj, seed,
                label="Integrating every grid point back to the noise…")
    ui.plot(pg.density_pair(dens.points, dens.x, dens.y, dens.density,
                            ["the data (1000 held-out points)", f"{pg.label(obj)}: its exact density"],
                            height=320 if not big else 400),
            key="b4_density", filename=f"playground_density_{obj}",
            alt=f"Two heatmaps of the playground's box: left, the histogram of 1000 held-out data points; "
            f"right, the exact density {pg.label(obj)} learned, on the same colour scale. The grid holds "
            f"{dens.mass:.3f} of its mass; held-out points average {dens.held_out:.2f} nats, uniform points "
            f"{dens.uniform:.2f}, a uniform density {dens.baseline:.2f}.")
    m1, m2, m3 = st.columns(3)
    m1.metric("Mean log-density, held-out data", f"{dens.held_out:.2f} nats",
              f"{dens.held_out - dens.baseline:+.2f} vs uniform on the box")
    m2.metric("Mean log-density, uniform points", f"{dens.uniform:.2f} nats",
              f"{dens.uniform - dens.baseline:+.2f} vs uniform on the box", delta_color="inverse")
    m3.metric("Mass inside the box", f"{dens.mass:.3f}", help="Density × cell area summed over the grid: "
              "1 less what the model puts outside the plotted box.")
    st.caption(
        "A flow is invertible, so it has an exact density: run the ODE backwards from a point to its noise "
        "and add up the divergence of the field on the way (two vector-Jacobian products a step in 2D; "
        f"RK4, 32 steps). Same colour scale (square root) on both panels. A uniform density on the box "
        f"would give every point {dens.baseline:.2f} nats; a model that learned the data beats that on "
        "held-out points and scores uniform points below it."
    )
else:
    st.info("The density needs a flow: train flow matching, reflow or OT flow matching.")

# ----------------------------------------------------------------------------- 7. export
st.header("6 · Export")
e1, e2, e3 = st.columns(3)
name = f"playground_{trained.data.name}_seed{trained.seed}"
with e1:
    ui.gif_download(pg.Frames(runs, colors, 40, size=240), "GIF of the animation", name, scale_by=1,
                    key="b4_gif", duration_ms=70, hold_last_ms=1200)
with e2:
    if pg.has_mp4():
        st.download_button("MP4 of the animation", lambda: pg.mp4(pg.Frames(runs, colors, 80, size=240)),
                           file_name=f"{name}.mp4", mime="video/mp4", key="b4_mp4", on_click="ignore",
                           icon=":material/movie:")
    else:
        st.caption("MP4: install `imageio-ffmpeg` (`pip install imageio-ffmpeg`) to export video.")
with e3:
    st.download_button("PNG of five frames", lambda: pg.frames_png(runs, colors),
                       file_name=f"{name}_frames.png", mime="image/png", key="b4_png", on_click="ignore",
                       icon=":material/download:")
