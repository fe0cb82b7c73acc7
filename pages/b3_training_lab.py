"""Training lab: train any built-in model in a background process, watch its loss live, cancel
and resume it, and compare runs (and the shipped models) in one chart.

The page never trains itself: ``dashboard.jobs`` starts ``python -m engine train`` as a
subprocess whose state lives in ``cache/runs/<run-id>/``; a fragment polls its log every 2 s.
"""

import os
import time

import pandas as pd
import streamlit as st

from dashboard import cache, curves, jobs, runner, ui
from dashboard.jobs import PRESETS
from dashboard.ui import error_box

big = ui.presenter()
WHAT = {
    "denoiser": "single-step denoiser, z = x + 0.5 ε → x (B1)",
    "denoiser-pure-noise": "denoiser from pure noise z = ε (B1)",
    "flow-time": "time-conditioned flow matching (B2.1)",
    "flow-class": "class-conditioned flow matching, ExponentialLR (B2.4)",
    "flow-class-constant-lr": "class-conditioned flow matching, constant LR",
    "ddpm-class": "class-conditioned DDPM, ε-prediction (Part A model)",
    "classifier": "MNIST classifier used to score samples",
}

st.title("Training lab")
st.markdown(
    r"""
Train any of the course's models here and watch the loss fall. Training runs in a separate
background process (`python -m engine train …`), so you can switch pages, close the tab or even
restart the dashboard: the run keeps going, and everything about it lives in
`cache/runs/<run-id>/`. **Cancel** asks it to write a checkpoint and stop; **Resume** continues
from that checkpoint with exactly the same data order and noise. One run trains at a time.

The quick defaults (2048 training images, 2 epochs) finish in a few minutes on a laptop CPU;
the shipped models saw all 60 000 images for 5 to 10 epochs.
"""
)

# ----------------------------------------------------------------------------- start
st.header("Start a run")
active = jobs.running_job()
model = st.selectbox("Model", list(PRESETS), index=list(PRESETS).index("flow-class"),
                     format_func=lambda m: f"{m}: {WHAT.get(m, '')}", key="b3_model")
preset = PRESETS[model]
with st.form("b3_start", border=True):
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs", 1, 50, 2, key=f"b3_epochs_{model}")
    train_count = c2.number_input("Training images (0 = all 60 000)", 0, 60_000, 2048, 256,
                                  key=f"b3_count_{model}")
    batch = c3.number_input("Batch size", 1, 1024, preset.batch_size, key=f"b3_batch_{model}")
    lr = c4.number_input("Learning rate", 1e-6, 1.0, preset.lr, format="%.0e", key=f"b3_lr_{model}",
                         help=f"preset: {preset.lr:g}, schedule: {preset.lr_schedule}")
    if big:
        width, name = preset.num_hiddens, ""
    else:
        c5, c6 = st.columns(2)
        width = c5.number_input("UNet width D (num_hiddens)", 1, 256, preset.num_hiddens,
                                key=f"b3_width_{model}", help="Smaller is faster; the course uses 64 or 128.")
        name = c6.text_input("Run name (optional)", "", key="b3_name", max_chars=60,
                             placeholder=f"{model}-<date>-<time>")
    start = st.form_submit_button("Start training", type="primary")
if start:
    threads = max(1, (os.cpu_count() or 2) - 1)  # leave a core for the dashboard itself
    try:
        args = jobs.train_args(model, int(epochs), float(lr), int(batch), int(train_count),
                               int(width), threads)
        job = jobs.start(model, args, name.strip() or None)
        st.session_state["b3_run"] = job.run_id
        active = job
        st.success(f"Started run **{job.run_id}**.")
    except jobs.JobBusy as e:
        st.warning(f"Not started: {e}")
    except jobs.JobError as e:
        error_box(f"Not started: {e}")
elif active is not None:
    st.caption(f"Run **{active.run_id}** is training now; a new run can start when it has finished "
               "or been cancelled.")

# ----------------------------------------------------------------------------- watch
st.header("Watch a run")
all_jobs = jobs.list_jobs()
if not all_jobs:
    st.caption(f"No runs yet in `{jobs.runs_dir()}`.")
else:
    ids = [j.run_id for j in all_jobs]
    wanted = st.session_state.get("b3_run")
    default = wanted if wanted in ids else (active.run_id if active is not None else ids[0])
    if st.session_state.get("b3_watch") not in ids or (start and active is not None):
        st.session_state["b3_watch"] = default
    status_of = {j.run_id: j.status for j in all_jobs}
    watch = st.selectbox("Run", ids, key="b3_watch", format_func=lambda r: f"{r} ({status_of[r]})")
    polling = any(j.active for j in all_jobs)

    @st.fragment(run_every=2 if polling else None)
    def live(run_id: str, was_polling: bool) -> None:
        try:
            job = jobs.refresh(jobs.load_job(run_id))
        except jobs.JobError as e:
            st.warning(str(e))
            return
        records = jobs.log_records(run_id)
        prog = jobs.progress(job, records=records)
        look = {
            "running": ":green[:material/play_circle: **running**]",
            "cancelling": ":orange[:material/pending: **cancelling** (writing a checkpoint)]",
            "finished": ":blue[:material/check_circle: **finished**]",
            "cancelled": ":orange[:material/pause_circle: **cancelled**]",
            "failed": ":red[:material/error: **failed**]",
        }
        loss = "–" if prog.loss is None else f"{prog.loss:.4f}"
        lr_text = "–" if prog.lr is None else f"{prog.lr:.1e}"
        text = (f"{look.get(job.status, job.status)} · {job.model} · epoch {prog.epoch:.2f} of "
                f"{job.epochs} · step {prog.step} · loss {loss} · lr {lr_text} · "
                f"{prog.seconds:.0f} s of training")
        if job.status == "running" and not records:
            text += " · starting (loading data)…"
        st.markdown(text)
        st.progress(prog.fraction)
        b1, b2, b3, _ = st.columns([1, 1, 2, 3])
        cancel = job.status == "running" and b1.button("Cancel", key="b3_cancel",
                                                       help="SIGTERM: checkpoint, then stop")
        if cancel:
            jobs.cancel(run_id)
            st.toast(f"Cancelling {run_id}: it writes a checkpoint, then stops.")
        if jobs.can_resume(job) and b2.button("Resume", key="b3_resume", type="primary"):
            try:
                jobs.resume(run_id)
                st.rerun()
            except jobs.JobError as e:
                st.warning(str(e))
        if job.status == "finished":
            more = b3.number_input("More epochs", 1, 50, 1, key="b3_more", label_visibility="collapsed",
                                   help="How many more epochs Continue trains")
            if b2.button("Continue", key="b3_continue", help="resume from the checkpoint with more epochs"):
                try:
                    jobs.resume(run_id, epochs=job.epochs + int(more))
                    st.rerun()
                except jobs.JobError as e:
                    st.warning(str(e))
            b1.caption("Train on:")
        if job.status == "failed" and job.message:
            st.error("The run failed:")
            st.code(job.message, language=None)
        curve = cache.curve(jobs.log_path(run_id), run_id)
        if curve is not None:
            title = f"{run_id}: loss ({job.model})"
            fig = curves.loss_figure([curve], 0.8, title=title, height=420 if big else 340)
            ui.plot(fig, key="b3_live_loss", filename=f"{run_id}_loss")
        if not big:
            with st.expander("Command and output"):
                st.code(job.command, language="bash")
                st.code(runner.output_tail(jobs.run_path(run_id), 12) or "(no output yet)", language=None)
        if was_polling and not any(j.active for j in jobs.list_jobs()):
            time.sleep(0.2)
            st.rerun(scope="app")  # stop polling; refresh the table and the comparison

    live(watch, polling)

# ----------------------------------------------------------------------------- compare
st.header("Compare runs")
st.markdown(
    "Your runs and the shipped models' training logs in one chart (loss per batch, smoothed, log "
    "scale). Different models minimise different losses, so compare like with like."
)
options = [f"run: {j.run_id}" for j in all_jobs]
shipped = [n for n in PRESETS if cache.model_curve(n) is not None]
options += [f"shipped: {n}" for n in shipped]
if not options:
    st.caption("Nothing to compare yet.")
else:
    watched = f"run: {st.session_state.get('b3_watch')}"
    first = watched if watched in options else next((o for o in options if o.startswith("run:")), options[0])
    defaults = [first]
    if first.startswith("run:"):
        m = next(j.model for j in all_jobs if f"run: {j.run_id}" == first)
        if f"shipped: {m}" in options:
            defaults.append(f"shipped: {m}")
    kept = [o for o in st.session_state.get("b3_compare", []) if o in options]
    st.session_state["b3_compare"] = kept if kept and not start else defaults
    chosen = st.multiselect("Curves", options, key="b3_compare")
    c1, c2 = st.columns(2)
    x_axis = "epoch" if big else c1.radio("x axis", ["epoch", "step"], horizontal=True, key="b3_x")
    weight = 0.9 if big else c2.slider("Smoothing", 0.0, 0.99, 0.9, 0.01, key="b3_smooth")
    chosen_curves = []
    for o in chosen:
        kind, _, ident = o.partition(": ")
        c = cache.curve(jobs.log_path(ident), o) if kind == "run" else cache.model_curve(ident, o)
        if c is not None:
            chosen_curves.append(c)
    if chosen_curves:
        ui.plot(curves.loss_figure(chosen_curves, weight, x_axis, "Training loss", 460 if big else 400),
                key="b3_compare_fig", filename="training_lab_compare")
    elif chosen:
        st.caption("The chosen runs have no logged steps yet.")

# ----------------------------------------------------------------------------- table
if all_jobs:
    st.header("All runs")
    rows = []
    for j in all_jobs:
        p = jobs.progress(j)
        rows.append({
            "run": j.run_id, "model": j.model, "status": j.status, "epochs": f"{p.epoch:.2f} / {j.epochs}",
            "last loss": p.loss, "training s": round(p.seconds),
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(j.started_at)),
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    if not big:
        with st.expander("Delete a run"):
            done = [j.run_id for j in all_jobs if not j.active]
            if done:
                victim = st.selectbox("Run to delete", done, key="b3_delete_pick")
                if st.button("Delete run folder", key="b3_delete"):
                    try:
                        jobs.delete(victim)
                        st.rerun()
                    except jobs.JobError as e:
                        st.warning(str(e))
            else:
                st.caption("Only finished, cancelled or failed runs can be deleted.")
