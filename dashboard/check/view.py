"""How the "Check your code" results look: one block per function (verdict, diagnosis, yours |
reference | |difference|, the step slider over both trajectories), the student's model next to
the shipped one, and the "your model" block of the Flow matching page. The numbers come from
``dashboard.check.logic``; nothing here computes."""

from __future__ import annotations

import streamlit as st

from .. import ui
from .logic import comparison, digit_grid, score_line, step_frame, step_label, verdict_line

MODEL_KEY = "check_model_report"  # the session's last scored model (the Flow matching page shows it)


def request_context() -> tuple[str | None, dict, str | None]:
    """(server address, request headers, client ip) of this session's browser connection."""
    try:
        headers = dict(st.context.headers.to_dict())
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001 -- no browser connection (AppTest): treated as not local
        headers, ip = {}, None
    return st.get_option("server.address"), headers, ip


def show_report(report) -> None:
    st.caption(f"Checked in {report.seconds:.0f} s" + "".join(f" · {n}" for n in report.notes))
    passed = sum(r.status == "pass" for r in report.functions.values())
    present = sum(r.status != "missing" for r in report.functions.values())
    (st.success if passed == present and present else st.warning)(
        f"{passed} of {present} functions you wrote match the reference."
    )
    for r in report.functions.values():
        show_function(r)


def show_function(r) -> None:
    with st.container(border=True):
        st.markdown(verdict_line(r))
        if r.message:
            text = r.message if r.status == "pass" else f"**Diagnosis:** {r.message}"
            (st.markdown if r.status in ("pass", "missing") else st.error)(text)
        if r.divergence and r.status == "fail" and r.divergence not in r.message:
            st.markdown(f"**First difference:** {r.divergence}")
        if r.numbers and "yours" in r.numbers:
            yours = "—" if r.numbers["yours"] is None else f"{r.numbers['yours']:.6g}"
            theirs = r.numbers["reference"]
            st.markdown(f"Your loss **{yours}**, the reference's **{theirs:.6g}** on the same x1, x0 and t.")
        if r.reference is not None:
            steps = r.trail is not None and len(r.trail.steps) > 1
            left, right = st.columns(2)
            note = ""
            if r.name == "forward":
                note = (" The forward process is random: the reference draws its noise from the same seed as "
                        "your torch.randn_like, so a correct forward matches here; the verdict comes from "
                        "the statistics.")
            with left:
                caption = f"{r.name}, the output: yours | the reference's | |difference|."
                ui.image(comparison(r.yours, r.reference, 4), caption + note, 1, width="stretch")
            if steps:
                with right:
                    trail_slider(r)
        if r.stdout.strip():
            with st.expander("What your function printed"):
                st.code(r.stdout[-2000:], language=None)


def trail_slider(r) -> None:
    """Both trajectories, step by step, up to the first divergence."""
    trail = r.trail
    stop = "to the first difference" if trail.diverged is not None else "all steps"
    i = st.select_slider(f"Step ({stop})", trail.steps, trail.steps[-1], key=f"c2_step_{r.name}",
                         format_func=lambda i: step_label(r, i),
                         help="Every network call your code made, next to the reference's at the same step; "
                              "the slider ends where your run leaves the reference's.")
    img, caption = step_frame(r, i, 4)
    ui.image(img, caption, 1, width="stretch")


def show_model(report) -> None:
    if report.status != "pass":
        st.error(report.message)
        return
    st.success(report.message)
    cols = st.columns(2)
    for col, s in zip(cols, (report.yours, report.shipped), strict=True):
        with col:
            title = "Your model" if s is report.yours else f"The shipped {s.name}"
            st.markdown(f"**{title}**")
            ui.image(digit_grid(s.samples, len(s.samples) // 10), score_line(s), 3, width="stretch")


def your_model_block() -> None:
    """The Flow matching page's "your model": the session's last scored model, or how to get one."""
    st.header("Your model")
    report = st.session_state.get(MODEL_KEY)
    if report is None or report.status != "pass":
        st.caption(
            "Check your own Part B model on the **Check your code** page (a file with build_unet() and "
            "its weights); it then appears here next to the shipped one."
        )
        return
    show_model(report)
