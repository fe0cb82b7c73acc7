"""Training lab: train any built-in model in a background process, watch its loss live, cancel
and resume it, and compare runs (and the shipped models) in one chart.

The page never trains itself: ``dashboard.jobs`` starts ``python -m engine train`` as a
subprocess whose state lives in ``cache/runs/<run-id>/``; a fragment polls its log every 2 s.
One lab is shared by everyone on the server: a run belongs to the browser that started it
(``jobs.owner_id``), others watch; a teacher (password in ``.streamlit/secrets.toml`` or an
``st.login`` address listed there) manages every run; runs queue while one trains.
"""

import secrets
import time

import pandas as pd
import streamlit as st

from dashboard import cache_partb, curves, jobs, lab_views, ui
from dashboard.ui import error_box

big = ui.presenter()
PRESETS = jobs.presets()
WHAT = {
    "denoiser": "single-step denoiser, z = x + 0.5 ε → x (B1)",
    "denoiser-pure-noise": "denoiser from pure noise z = ε (B1)",
    "flow-time": "time-conditioned flow matching (B2.1)",
    "flow-class": "class-conditioned flow matching, ExponentialLR (B2.4)",
    "flow-class-constant-lr": "class-conditioned flow matching, constant LR",
    "ddpm-class": "class-conditioned DDPM, ε-prediction (Part A model)",
    "classifier": "MNIST classifier used to score samples",
}
LOOK = {
    "queued": ":violet[:material/schedule: **queued**]",
    "running": ":green[:material/play_circle: **running**]",
    "cancelling": ":orange[:material/pending: **cancelling** (writing a checkpoint)]",
    "finished": ":blue[:material/check_circle: **finished**]",
    "cancelled": ":orange[:material/pause_circle: **cancelled**]",
    "failed": ":red[:material/error: **failed**]",
}
RECIPE_LOOK = {
    "class": "class: minutes on a laptop (width 32, batch 128, cosine + EMA, one epoch)",
    "course": "course: the write-up's settings (the shipped model's)",
}
LIVE_CHECKPOINT_S = 20.0  # a flow-class run checkpoints this often, so its digits redraw as it learns
SECRETS_HELP = """Teacher mode is off on this server. To turn it on, put a password in
`.streamlit/secrets.toml` next to the app (never commit it) and restart the server:

```toml
[training_lab]
teacher_password = "choose-a-long-one"
# or, with st.login configured ([auth]), the teachers' sign-in addresses:
# teachers = ["you@school.edu"]
```"""


def teacher_settings() -> jobs.Teachers:
    """Teacher mode's settings, from the ``[training_lab]`` section of the secrets. Without a
    secrets file or that section teacher mode is off, and the teacher panel says how to turn it
    on; a file or section the lab cannot read is said above the page."""
    try:
        section = st.secrets["training_lab"]
    except KeyError:  # secrets, but no [training_lab]: teacher mode is off
        return jobs.Teachers()
    except FileNotFoundError as e:  # Streamlit's "no secrets" error, also when it cannot parse the file
        if "pars" in str(e).lower():
            st.warning(f"Teacher mode is off: the secrets file could not be read ({e}). Fix "
                       "`.streamlit/secrets.toml` and restart the server.", icon=":material/key_off:")
        return jobs.Teachers()
    try:
        return jobs.Teachers.from_secrets(section)
    except (AttributeError, TypeError, ValueError) as e:
        st.warning(f"Teacher mode is off: the `[training_lab]` section of `.streamlit/secrets.toml` is not a "
                   f"table of `teacher_password` and `teachers` ({e}); see **Teacher mode** below.",
                   icon=":material/key_off:")
        return jobs.Teachers()


def signed_in_email() -> str | None:
    """The address of a user signed in with ``st.login``, or None."""
    try:
        return st.user.get("email") if st.user.get("is_logged_in") is True else None
    except (AttributeError, KeyError, RuntimeError) as e:
        st.warning(f"Could not read your sign-in ({e}): runs you start belong to this browser, not to your "
                   "account, and a teacher's address is not recognised. Sign in again, or reload the page.")
        return None


def who_am_i(teachers: jobs.Teachers) -> jobs.Who:
    """This session's identity and whether it is a teacher (``jobs.identify``)."""
    token = st.session_state.setdefault("b3_session_token", secrets.token_hex(8))
    try:  # a browser's WebSocket request; empty (or a stand-in) when there is none, as under AppTest
        headers = dict(st.context.headers.to_dict())
        route = st.context.cookies.to_dict().get("difflab_route")
        ip = st.context.ip_address
    except (AttributeError, KeyError, RuntimeError) as e:
        st.warning(f"Could not read this browser's connection ({e}): runs you start belong to this tab only "
                   "(a reload starts a new session; the teacher can still manage them).")
        headers, route, ip = {}, None, None
    return jobs.identify(token, headers=headers, route_cookie=route, ip=ip, email=signed_in_email(),
                         teachers=teachers, teacher_mode=st.session_state.get("b3_teacher", False))


def teacher_panel(teachers: jobs.Teachers, who: jobs.Who) -> None:
    with st.expander("Teacher mode" + (" (on)" if who.teacher else ""), expanded=who.teacher):
        if who.teacher:
            st.markdown("You are in **teacher mode**: you can cancel, resume, delete and unqueue every run.")
            if st.session_state.get("b3_teacher") and st.button("Leave teacher mode", key="b3_teacher_off"):
                st.session_state["b3_teacher"] = False
                st.rerun()
        elif not teachers.password:
            st.markdown(SECRETS_HELP)
        else:
            with st.form("b3_teacher_form", border=False):
                given = st.text_input("Teacher password", type="password", key="b3_teacher_pw")
                if st.form_submit_button("Enter teacher mode"):
                    if jobs.password_ok(given, teachers.password):  # a wrong one takes a second
                        st.session_state["b3_teacher"] = True
                        st.rerun()
                    st.error("Wrong password.")


def loss_chart(run_id: str, model: str) -> None:
    """The run's loss so far, smoothed (nothing before its first logged step)."""
    curve = cache_partb.curve(jobs.log_path(run_id), run_id)
    if curve is not None:
        fig = curves.loss_figure([curve], 0.8, title=f"{run_id}: loss ({model})", height=420 if big else 340)
        ui.plot(fig, key="b3_live_loss", filename=f"{run_id}_loss")


def live(run_id: str, seen: tuple, who: jobs.Who) -> None:
    """One run: its state, its buttons and its loss so far. Run as a fragment that polls every 2 s
    while anything trains or waits; ``seen`` is the runs' states the page was drawn with. In
    presenter mode the curve comes first: it is the picture the room watches (#25)."""
    try:
        job = jobs.get_job(run_id)
    except jobs.JobError as e:
        st.warning(str(e))
        return
    if big:
        loss_chart(run_id, job.model)
    now = jobs.list_jobs()  # also starts the next queued run when nothing trains
    mine = jobs.may_manage(job, who)
    records = jobs.log_records(run_id)
    prog = jobs.progress(job, records=records)
    loss = "–" if prog.loss is None else f"{prog.loss:.4f}"
    lr_text = "–" if prog.lr is None else f"{prog.lr:.1e}"
    look = LOOK.get(job.status, job.status)
    if job.queued:
        place = jobs.queue_position(job, now)
        text = f"{look} · number {place} in line · {job.model} · {job.epochs} epochs"
    else:
        text = (f"{look} · {job.model} · epoch {prog.epoch:.2f} of {job.epochs} · step {prog.step} · "
                f"loss {loss} · lr {lr_text} · {prog.seconds:.0f} s of training")
    if job.status == "running" and not records:
        text += " · starting (loading data)…"
    st.markdown(text + f" · started by **{jobs.owner_text(job, who)}**")
    st.progress(prog.fraction)
    if not mine:
        st.caption("You can watch this run; only the session that started it or the teacher can cancel, "
                   "resume or delete it.")
    lab_views.eta(job, prog)
    lab_views.digits_so_far(run_id, job, big)
    b1, b2, b3, _ = st.columns([1, 1, 2, 1 if big else 3])  # presenter mode: in the figure's column
    if mine and job.queued and b1.button("Remove from queue", key="b3_unqueue"):
        try:
            jobs.cancel(run_id, who=who)
            st.rerun(scope="app")
        except jobs.JobError as e:
            st.warning(str(e))
    cancel = mine and job.status == "running" and b1.button("Cancel", key="b3_cancel",
                                                            help="SIGTERM: checkpoint, then stop")
    if cancel:
        try:
            jobs.cancel(run_id, who=who)
            st.toast(f"Cancelling {run_id}: it writes a checkpoint, then stops.")
        except jobs.JobError as e:
            st.warning(str(e))
    if mine and jobs.can_resume(job) and b2.button("Resume", key="b3_resume", type="primary"):
        try:
            jobs.resume(run_id, who=who, queue=True)
            st.rerun(scope="app")
        except jobs.JobError as e:
            st.warning(str(e))
    if mine and job.status == "finished":
        more = b3.number_input("More epochs", 1, 50, 1, key="b3_more", label_visibility="collapsed",
                               help="How many more epochs Continue trains")
        if b2.button("Continue", key="b3_continue", help="resume from the checkpoint with more epochs"):
            try:
                jobs.resume(run_id, epochs=job.epochs + int(more), who=who, queue=True)
                st.rerun(scope="app")
            except jobs.JobError as e:
                st.warning(str(e))
        b1.caption("Train on:")
    if job.status == "failed" and job.message:
        if jobs.disk_full(job.message):
            error_box("The disk filled up: the run could not write its files. Delete runs you no longer "
                      "need (below), or ask whoever runs the server to free space; then resume it.")
        else:
            st.error("The run failed:")
        st.code(job.message, language=None)
    if not big:
        loss_chart(run_id, job.model)
        with st.expander("Command and output"):
            st.code(job.command or "(not started yet)", language="bash")
            st.code(jobs.output_tail(run_id, 12) or "(no output yet)", language=None)
    if tuple((j.run_id, j.status) for j in now) != seen:
        time.sleep(0.2)
        st.rerun(scope="app")  # a run started, ended or left the queue: refresh the rest of the page


teachers = teacher_settings()
who = who_am_i(teachers)

st.title("Training lab")
all_jobs = jobs.list_jobs()
active = next((j for j in all_jobs if j.active), None)
# presenter mode (#25): the watched run's live curve first, the run picker and a new run beside it;
# before any run, the start controls lead, with room to read them
lead = ui.lead(ratio=(1, 2) if all_jobs else (1, 1))
with lead.intro:
    st.markdown(
        r"""
Train any of the course's models here and watch the loss fall. Training runs in a separate
background process (`python -m engine train …`), so you can switch pages, close the tab or even
restart the dashboard: the run keeps going, and everything about it lives in
`cache/runs/<run-id>/`. **Cancel** asks it to write a checkpoint and stop; **Resume** continues
from that checkpoint with exactly the same data order and noise. One run trains at a time; a run
started meanwhile **waits in a queue** and starts by itself.

**flow-class** starts on the **class recipe**: one epoch of all 60 000 images, 3 to 6 minutes on a
laptop CPU, and its digits are redrawn every 20 s as it learns. The other models' quick defaults
(2048 training images, 2 epochs) finish in a few minutes; the shipped models saw all 60 000 images
for 5 to 10 epochs with the course's recipe.
"""
    )
    st.caption(f"The lab is shared by everyone on this server. Runs you start belong to **{who.label}**"
               f"{' (teacher)' if who.teacher else ''}: others can watch them, only you or the teacher can "
               f"cancel, resume or delete them. At most {jobs.MAX_QUEUED} of your runs can wait in the "
               "queue.")
with lead.intro if not big else st.container():  # expanders do not nest: in presenter mode, below the lead
    teacher_panel(teachers, who)

# ----------------------------------------------------------------------------- start
picker_box = lead.controls.container()  # presenter mode: the picker of the watched run, on top
start_box = lead.controls.container()
with start_box:
    (st.subheader if big else st.header)("Start a run")
    model = st.selectbox("Model", list(PRESETS), index=list(PRESETS).index("flow-class"),
                         format_func=lambda m: f"{m}: {WHAT.get(m, '')}", key="b3_model")
    options = jobs.recipes(model)
    recipe = "course"
    if len(options) > 1:  # flow-class: the class recipe is the live demo's default
        first = options.index("class") if model == "flow-class" else 0
        recipe = st.radio("Recipe", options, index=first, key=f"b3_recipe_{model}",
                          format_func=lambda r: RECIPE_LOOK.get(r, r), horizontal=not big,
                          help="docs/training.md: how the class recipe was chosen and what each part bought.")
preset = jobs.recipe_preset(model, recipe)
quick = recipe == "course"  # the course's settings on a slice; a recipe is meant for all the data
with start_box, st.form("b3_start", border=True):
    if big:  # presenter mode: two by two in the controls' column, the boxes in line
        (c1, c2), (c3, c4) = (st.columns(2, vertical_alignment="bottom") for _ in range(2))
    else:
        c1, c2, c3, c4 = st.columns(4)
    tag = model if recipe == "course" else f"{model}_{recipe}"  # each recipe keeps its own values
    epochs = c1.number_input("Epochs", 1, 50, 2 if quick else preset.epochs, key=f"b3_epochs_{tag}")
    train_count = c2.number_input("Training images (0 = all 60 000)", 0, 60_000, 2048 if quick else 0,
                                  256, key=f"b3_count_{tag}")
    batch = c3.number_input("Batch size", 1, 1024, preset.batch_size, key=f"b3_batch_{tag}")
    lr = c4.number_input("Learning rate", 1e-6, 1.0, preset.lr, format="%.0e", key=f"b3_lr_{tag}",
                         help=f"preset: {preset.lr:g}, schedule: {preset.lr_schedule}")
    if big:
        width, name = preset.num_hiddens, ""
    else:
        c5, c6 = st.columns(2)
        width = c5.number_input("UNet width D (num_hiddens)", 1, 256, preset.num_hiddens,
                                key=f"b3_width_{tag}", help="Smaller is faster; the course uses 64 or 128.")
        name = c6.text_input("Run name (optional)", "", key="b3_name", max_chars=60,
                             placeholder=f"{model}-<date>-<time>")
    start = st.form_submit_button("Start training", type="primary")
started = None
with start_box:
    if start:
        try:
            live_digits = preset.objective == "flow" and preset.arch == "class"
            args = jobs.train_args(model, int(epochs), float(lr), int(batch), int(train_count),
                                   int(width), jobs.default_threads(), recipe=recipe,
                                   checkpoint_every=LIVE_CHECKPOINT_S if live_digits else None)
            job = jobs.start(model, args, name.strip() or None, who=who, queue=True)
            st.session_state["b3_run"] = started = job.run_id
            all_jobs = jobs.list_jobs()
            active = next((j for j in all_jobs if j.active), None)
            if job.queued:
                place = jobs.queue_position(job, all_jobs) or 1
                st.info(f"Queued run **{job.run_id}**: number {place} in line. It starts by itself when the "
                        "runs before it have ended; you can leave the page meanwhile.",
                        icon=":material/schedule:")
            else:
                st.success(f"Started run **{job.run_id}**.")
        except jobs.JobQueueFull as e:
            st.warning(f"Not started: {e}")
        except jobs.JobError as e:
            error_box(f"Not started: {e}")
    elif active is not None:
        waiting = sum(j.queued for j in all_jobs)
        st.caption(f"Run **{active.run_id}** ({jobs.owner_text(active, who)}) is training now; a new run "
                   f"waits in the queue until it has ended ({waiting} waiting).")

# ----------------------------------------------------------------------------- watch
with lead.figure:
    if not big:
        st.header("Watch a run")
    if not all_jobs and big:
        st.caption("No runs yet. Start one: its loss curve appears here, live.")
    elif not all_jobs:
        st.caption(f"No runs yet in `{jobs.runs_dir()}`.")
    else:
        ids = [j.run_id for j in all_jobs]
        wanted = st.session_state.get("b3_run")
        default = wanted if wanted in ids else (active.run_id if active is not None else ids[0])
        if st.session_state.get("b3_watch") not in ids or started in ids:
            st.session_state["b3_watch"] = default
        label_of = {j.run_id: j.status + (", yours" if jobs.owns(j, who) else "") for j in all_jobs}
        with picker_box if big else lead.figure:
            watch = st.selectbox("Run", ids, key="b3_watch", format_func=lambda r: f"{r} ({label_of[r]})")
        seen = tuple((j.run_id, j.status) for j in all_jobs)
        polling = any(j.active or j.queued for j in all_jobs)

        st.fragment(live, run_every=2 if polling else None)(watch, seen, who)

# ----------------------------------------------------------------------------- compare
st.header("Compare runs")
st.markdown(
    "Your runs and the shipped models' training logs in one chart (loss per batch, smoothed, log "
    "scale). Different models minimise different losses, so compare like with like."
)
options = [f"run: {j.run_id}" for j in all_jobs]
shipped = [n for n in PRESETS if cache_partb.model_curve(n) is not None]
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
    if kept and first not in kept and st.session_state.get("b3_compare_for") != first:
        kept.insert(0, first)  # another run is watched now: its curve joins the chart
    st.session_state["b3_compare"] = kept if kept and not start else defaults
    st.session_state["b3_compare_for"] = first
    chosen = st.multiselect("Curves", options, key="b3_compare")
    c1, c2 = st.columns(2)
    x_axis = "epoch" if big else c1.radio("x axis", ["epoch", "step"], horizontal=True, key="b3_x")
    weight = 0.9 if big else c2.slider("Smoothing", 0.0, 0.99, 0.9, 0.01, key="b3_smooth")
    chosen_curves = []
    for o in chosen:
        kind, _, ident = o.partition(": ")
        c = cache_partb.curve(jobs.log_path(ident), o) if kind == "run" else cache_partb.model_curve(ident, o)
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
        place = jobs.queue_position(j, all_jobs)
        rows.append({
            "run": j.run_id, "model": j.model, "status": j.status + (f" (#{place})" if place else ""),
            "owner": jobs.owner_text(j, who), "epochs": f"{p.epoch:.2f} / {j.epochs}", "last loss": p.loss,
            "training s": round(p.seconds),
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(j.sort_time)),
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    budget = jobs.budget_bytes()
    st.caption(f"Runs use {jobs.usage() / 2**20:.0f} MB" + (
        f" of the {budget / 2**20:.0f} MB budget; past it the oldest finished, cancelled or failed runs are "
        "deleted when a run starts (`DIFFLAB_RUNS_BUDGET_MB`)." if budget else "."))
    if not big:
        with st.expander("Delete a run"):
            done = [j.run_id for j in all_jobs if not j.active and jobs.may_manage(j, who)]
            if done:
                victim = st.selectbox("Run to delete", done, key="b3_delete_pick")
                if st.button("Delete run folder", key="b3_delete"):
                    try:
                        jobs.delete(victim, who=who)
                        st.rerun()
                    except jobs.JobError as e:
                        st.warning(str(e))
            else:
                st.caption("Only your own finished, cancelled, failed or queued runs can be deleted"
                           + ("." if who.teacher else " (the teacher can delete any)."))
