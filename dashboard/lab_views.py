"""The Training lab's live view of one run, beyond its loss curve: the time left (``eta``) and, for
a class-conditioned flow, the digits its newest weights draw (``digits_so_far``; computed without
Streamlit in ``dashboard.previews``)."""

from __future__ import annotations

import streamlit as st

from dashboard import cache_partb, images, jobs, ui


def eta(job: jobs.Job, prog: jobs.JobProgress) -> None:
    """A running run's training time left at its pace so far (once 2 % is done)."""
    if job.status == "running" and 0.02 < prog.fraction < 1 and prog.seconds > 0:
        left = prog.seconds * (1 - prog.fraction) / prog.fraction
        text = f"{left:.0f} s" if left < 90 else f"{left / 60:.0f} min"
        st.caption(f"About {text} of training left at this pace (ETA).")


def digits_so_far(run_id: str, job: jobs.Job, big: bool) -> None:
    """A class-conditioned flow run: 3 of each digit from the same noise, drawn with the weights
    it last wrote (every ~20 s while it trains), and the lab's classifier's accuracy on them."""
    preset = jobs.presets().get(job.model)
    if preset is None or (preset.objective, preset.arch) != ("flow", "class"):
        return
    stamp = jobs.weights_stamp(run_id)
    if not stamp:
        st.caption("The run's digits appear here after its first checkpoint.")
        return
    got = cache_partb.run_preview(str(jobs.run_path(run_id)), stamp)
    if got is None:
        return
    grid = images.table(images.digit_columns(got["images"], 3))
    when = ("finished weights" if got["finished"]
            else f"step {got['step']}, {got['seconds']:.0f} s of training")
    ui.image(grid, f"{run_id}: 3 of each digit 0-9 from the same noise ({when}); the lab's classifier reads "
             f"{got['accuracy']:.0%} of them as the asked digit (γ 5, midpoint 8 steps)", 3,
             width="stretch" if big else 560)
