"""Fewer steps: the field's fast samplers on the lab's own models. DDPM (Part A convention: t
counts down from 990) with the course's strided loop, DDIM and DPM-Solver++(2M); flow matching
(Part B convention: t runs 0 -> 1) with Euler, midpoint, Heun and RK4. The same starting noise
for every sampler; quality (Fréchet distance to test digits, accuracy) against network
evaluations from ``python -m engine fewer-steps``."""

import streamlit as st

from dashboard import cache_partb, controls, curves, images, partb, ui
from dashboard.settings import COURSE_DDPM_STEPS, DDPM_GUIDANCE, EULER_STEPS, FD_MARGIN, FLOW_GUIDANCE, STRIDE

st.title("Fewer steps")
big = ui.presenter()
# presenter mode: quality against NFE first (instant, from the shipped report), the model beside
# it; the live samples follow below the lead with their own controls
lead = ui.lead(ratio=(1, 3))
with lead.intro:
    st.markdown(
        rf"""
Sampling costs one network evaluation (**NFE**) per step, and a class waits for every one: the
course's settings take {COURSE_DDPM_STEPS} (DDPM, stride {STRIDE}) and {EULER_STEPS} (flow matching,
Euler). Both models define an ODE, and better solvers of the same ODE need far fewer evaluations:

- **DDIM** (Song et al. 2021) turns the DDPM into a deterministic ODE (η = 0);
  **DPM-Solver++(2M)** (Lu et al. 2022) is a second-order multistep solver of it. Both run
  diffusers' schedulers on the lab's model, with dynamic thresholding of $\hat{{x}}_0$ as DeepFloyd IF's
  scheduler does.
- Flow matching's paths are nearly straight, so **midpoint** and **Heun** (2 NFE a step) and
  **RK4** (4 NFE a step) reach the end with few, larger steps.

Guidance costs nothing extra per NFE: the conditional and unconditional branches run as one batch.
"""
    )

MODELS = {
    "ddpm-class": f"ddpm-class (DDPM, γ = {DDPM_GUIDANCE:g})",
    "flow-class": f"flow-class (flow matching, γ = {FLOW_GUIDANCE:g})",
    "flow-time": "flow-time (flow matching, no class)",
    "flow-class-reflow": "flow-class-reflow (one step: reflow of flow-class, guidance baked in)",
}


def sampler_controls(kind: str, left, right) -> tuple[list[str], int, str]:
    """The samplers to compare (in ``left``), their step count and, for a flow, the time grid
    (in ``right``)."""
    options = ["ddpm", "ddim", "dpmpp-2m"] if kind == "ddpm" else ["euler", "midpoint", "heun", "rk4"]
    samplers = left.multiselect(
        "Samplers (up to four)",
        **ui.linked(
            f"fs_samplers_{kind}",
            options,
            options,
            "default",
            max_selections=4,
            format_func=controls.SAMPLER_LABELS.get,
        ),
        help=controls.DIFFUSERS_NOTE if kind == "ddpm" else None,
    )
    grid_steps = [2, 3, 5, 7, 10, 15, 20, 33, 50] if kind == "ddpm" else [1, 2, 3, 5, 7, 10, 15, 20, 33, 50]
    if st.session_state.get("fs_steps") not in grid_steps:
        st.session_state.pop("fs_steps", None)
    steps = int(
        right.select_slider(
            "Steps",
            **ui.linked("fs_steps", 10, grid_steps),
            help="Steps per sampler: midpoint and Heun make 2 network evaluations a step, RK4 4.",
        )
    )
    grid = "uniform"
    if kind == "flow":
        grid = right.radio(
            "Time grid",
            **ui.linked("fs_grid", "uniform", list(partb.TIME_GRIDS), "index",
                        format_func=partb.TIME_GRIDS.get),
            horizontal=True,
            help="Where the steps go in t: evenly (the course's), or t = 1 − (1 − s)² for even s, "
            "short steps near the data where the field turns fastest (see “Why Heun and RK4 fail”).",
        )
    return samplers, steps, grid


def same_noise(name: str, samplers: list[str], steps: int, grid: str = "uniform") -> None:
    """Every sampler from the same starting noise: one row of digits each, NFE and wall time."""
    if not samplers:
        st.info("Pick at least one sampler.")
        return
    per_digit = 1 if big else 2
    seed = ui.seed()
    runs = ui.run_with_progress(
        cache_partb.compare_samplers,
        name,
        root,
        partb.stamp(name),
        tuple(samplers),
        steps,
        seed,
        per_digit,
        grid,
        label=f"Sampling with {len(samplers)} samplers…",
    )
    for sampler in samplers:
        traj, seconds = runs[sampler]
        picture = images.table(images.digit_columns(traj.final[:, 0], per_digit))  # a column per digit
        ui.image(
            picture,
            f"{controls.SAMPLER_LABELS[sampler]}: {steps} step{'s' if steps != 1 else ''}"
            + (" (time grid crowded near t = 1)" if grid == "crowded" else "")
            + f" · {traj.nfe} network evaluation{'s' if traj.nfe != 1 else ''} · {seconds:.1f} s",
            3,
        )
    st.caption(
        f"Seed {seed} (the sidebar's): the same starting noise for every sampler. Wall time on this "
        "machine, the first run of each (a cached result shows at once afterwards)."
    )


def quality(name: str, kind: str, picker=None) -> None:
    """Quality against cost from the shipped (or this machine's) report; the choice between two
    reports goes in ``picker`` (default: here)."""
    st.header("Quality against cost")
    reports = partb.fewer_steps_reports(name)
    fix = f"python -m engine fewer-steps {name} --out {partb.model_folder(name) / 'fewer_steps.json'}"
    if not reports:
        st.info(
            f"No curves for {name} yet. They come with the shipped models; make them with `{fix}`, or "
            "measure them below."
        )
        return
    with picker or st.container():
        which = (
            st.radio(
                "Curves",
                **ui.linked("fs_which", next(iter(reports)), list(reports), "index"),
                horizontal=True,
            )
            if len(reports) > 1
            else next(iter(reports))
        )
    report = reports[which]
    left, right = st.columns(2)
    with left:
        ui.plot(curves.steps_figure(report, "fd"), key="fs_fd", filename=f"{name}_fd_vs_nfe")
    with right:
        metric = "accuracy" if any("accuracy" in p for p in report["points"]) else "confidence"
        ui.plot(curves.steps_figure(report, metric), key="fs_acc", filename=f"{name}_{metric}_vs_nfe")
    best = partb.fastest_within(report, 0.10, 0.97 if kind == "flow" else 0.95)
    course = report["course"]
    text = (
        f"{report['samples']} samples, seed {report['seed']}, measured {report['when'][:10]} on "
        f"{report['machine']}. The distance is taken in the feature space of the lab's classifier "
        "(whitened PCA of its last hidden layer, within each class); lower is better, the dashed line "
        "is what real test digits score."
    )
    if best is not None:
        whose = f"{course['model']}'s " if course.get("model") else ""  # a distilled model: its teacher's
        text += (
            f" Fewest network evaluations within {FD_MARGIN:.0%} of the course's distance "
            f"({whose}{course['sampler']}, "
            f"{course['steps']} steps): **{controls.SAMPLER_LABELS[best['sampler']]}, {best['steps']} steps, "
            f"{best['nfe']} NFE**."
        )
    st.markdown(text)
    st.caption(f"Regenerate the shipped curves: `{fix}`")


with lead.controls:
    c1, c2, c3 = st.columns([2, 3, 2]) if not big else (st.container(), None, None)
    name = c1.selectbox(
        "Model", **ui.linked("fs_model", "ddpm-class", list(MODELS), "index", format_func=MODELS.get)
    )
    kind = "ddpm" if name.startswith("ddpm") else "flow"
    if not big:
        samplers, steps, grid = sampler_controls(kind, c2, c3)

with lead.figure:
    if controls.require_model(name) is None:
        st.stop()
root = str(partb.models_dir())

if big:
    with lead.figure:
        quality(name, kind, picker=lead.controls)
    st.header("Same noise, every sampler")
    samplers, steps, grid = sampler_controls(kind, *st.columns([3, 2]))
    same_noise(name, samplers, steps, grid)
else:
    with lead.figure:
        st.header("Same noise, every sampler")
        same_noise(name, samplers, steps, grid)
    quality(name, kind)


def time_grid_lesson() -> None:
    """Why Heun and RK4 fail at very few steps on the flows: the evidence (the shipped
    measurement of scripts/flow_time_grids.py) and the fix, a grid crowded near t = 1."""
    with st.expander("Why Heun and RK4 fail with very few steps", expanded=False):
        st.markdown(
            """
On the uniform grid, Heun with 3 steps and RK4 with 2 give blurred, wrong digits, although both are
“better” solvers than Euler (the charts below). Two things add up:

1. **They evaluate the field at the end of each step**, so the last one asks the network for a
   velocity at exactly t = 1, where training only ever showed it clean digits. Capping the t the
   network sees at 0.95 only halves the damage (a first measurement, Heun 3 steps: FD 36 → 18).
2. **The uniform grid puts its longest step where the field turns fastest**, near the data. Heun's
   Euler predictor for the last step starts at t = 2/3 and lands a little off the digits (0.05 rms
   from where a fine solver ends); there the network's velocity at t = 1 has rms 1.50 against 0.58
   on a real end point, and Heun averages that error into the digit.

Put the steps where the field changes, **t = 1 − (1 − s)²** for even s (short steps near the data),
and Heun at 3 and 5 steps and RK4 at 3 work at the same cost; RK4 at 2 steps improves but is still
poor. Euler and midpoint never evaluate a step's end: they gain nothing from that grid (midpoint 3
steps even loses a little, its first long step now lands too far). Try it above: *Time grid →
crowded near t = 1*.
"""
        )
        report = partb.time_grid_report()
        if report is None:
            st.info("The measurement ships beside flow-class as `time_grids.json`; make it with "
                    "`python scripts/flow_time_grids.py` (a few minutes on a laptop CPU).")
            return
        g1, g2 = st.columns(2)
        with g1:
            ui.plot(curves.time_grid_figure(report, "fd"), key="fs_grid_fd", filename="time_grids_fd")
        with g2:
            ui.plot(curves.time_grid_figure(report, "accuracy"), key="fs_grid_acc",
                    filename="time_grids_accuracy")
        rows = [f"{r['solver']} {r['steps']} ({r['nfe']} NFE), {r['grid']}: FD {r['fd']:.1f}, "
                f"{r['accuracy']:.0%}" for r in report["rows"]]
        st.caption(
            f"{report['model']}, {report['samples']} samples, seed {report['seed']}, "
            f"γ = {report['guidance']:g}, measured {report['when'][:10]} on {report['machine']} "
            f"(`{report['command']}`). "
            + "; ".join(rows) + "."
        )


if kind == "flow":
    time_grid_lesson()

with st.expander("Measure on this machine", expanded=False):
    st.markdown(
        "Samples every sampler over its step grid and scores the digits (the curves above). The quick "
        "run (100 samples, 4 step counts a sampler) takes a few minutes on a laptop CPU; for the one-step "
        "model it also samples its teacher, including the teacher's 300 course steps (a few minutes more)."
    )
    q1, q2 = st.columns(2)
    samples = int(q1.select_slider("Samples", [100, 200], 100, key="fs_samples"))
    quick = q2.toggle("Quick (4 step counts a sampler)", value=True, key="fs_quick")
    if st.button("Measure", key="fs_measure", icon=":material/speed:"):
        report = ui.run_with_progress(
            cache_partb.fewer_steps_sweep,
            name,
            root,
            cache_partb.sweep_stamps(name),
            samples,
            quick,
            label="Measuring every sampler…",
        )
        where = partb.save_fewer_steps(name, report)
        st.success(f"Saved to `{where}`; the curves above show it as “this machine”.")
        st.rerun()
