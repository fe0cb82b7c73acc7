"""Check your code: a student's own Project 5 functions (written as in the course's notebook) run
against the lab's reference on fixed inputs; each gets a verdict, and a known mistake is named
(cfg-sign, t-off-by-one, ...). The code runs in a sandboxed process, never in this server, and
only where the server allows it (docs/serving.md, docs/check-your-code.md). A file with
build_unet() and weights also gets the student's own Part B model sampled and scored."""

import streamlit as st

from dashboard import check, ui
from dashboard.settings import EULER_STEPS, FLOW_GUIDANCE

st.title("Check your code")
st.markdown(
    "Write the Project 5 functions as in the course's notebook (`forward`, `iterative_denoise`, "
    "`iterative_denoise_cfg`, `visual_anagrams`, `make_hybrids`, `flow_matching_loss`, `flow_sample`) "
    "and hold them against the lab's reference. Your file gets the notebook's globals (`stage_1`, "
    "`alphas_cumprod`, `add_variance`, `device`), here backed by the lab's MNIST model; each function runs "
    "on fixed inputs with the same noise as the reference. When your output equals the reference with one "
    "known mistake, the page names it; for the loops a slider walks both trajectories to the first step "
    "where yours leaves the reference's."
)
st.download_button(
    "⬇ Starter file (signatures and docstrings)",
    check.starter_text(),
    "p5_starter.py",
    "text/x-python",
    key="c2_starter",
)
with st.expander("The mistakes the checker knows"):
    st.markdown("\n".join(f"- `{code}`: {text}" for code, text in check.CODES.items()))

gate = check.gate_from_env(*check.request_context())
if not gate.allowed:
    st.info(gate.reason)
    st.stop()
st.caption(gate.reason)

source_kind = (
    st.segmented_control("Your code", ["Upload a .py", "Paste it"], default="Upload a .py", key="c2_source")
    or "Upload a .py"
)
source = ""
if source_kind == "Upload a .py":
    upload = st.file_uploader("Your Python file", type=["py"], key="c2_upload")
    if upload is not None:
        source = upload.getvalue().decode("utf-8", errors="replace")
else:
    source = st.text_area(
        "Your code", height=320, key="c2_code", placeholder="import torch\n\ndef forward(im, t):\n    ..."
    )

with st.expander("Options"):
    only = st.multiselect(
        "Functions to check",
        list(check.NAMES),
        default=list(check.NAMES),
        key="c2_only",
        help="The others are left out of the report.",
    )
    rename = st.text_input(
        "Your names for them",
        key="c2_map",
        placeholder="my_forward=forward, sample=flow_sample",
        help="theirs=ours pairs, for functions you named differently.",
    )
    bad = check.check_parse_map(rename) if rename.strip() else None
    if bad:
        st.error(bad)

if st.button("Check my code", type="primary", key="c2_run", disabled=bool(bad)):
    try:
        report = ui.run_with_progress(
            check.run_check, source, tuple(only), rename, label="Checking your code…"
        )
        st.session_state["c2_report"] = (check.code_key(source, only, rename), report)
    except ValueError as e:
        st.error(str(e))
shown = st.session_state.get("c2_report")
if shown is not None:
    if shown[0] != check.code_key(source, only, rename):
        st.caption("Your code or the options changed since this report: press **Check my code** again.")
    check.show_report(shown[1])

st.header("Your own Part B model")
st.markdown(
    "If your file also defines `build_unet()` (your flow-matching UNet: `forward(x, t)`, or "
    "`forward(x, c, t)` with a one-hot class `c`), upload its weights: the lab samples it with the course's "
    f"Euler sampler (CFG γ = {FLOW_GUIDANCE:g} for a class model) and scores the digits with its classifier, "
    "next to the shipped model on the same noise. It then also appears on the Flow matching page."
)
weights = st.file_uploader(
    "Weights (safetensors, or a .pt state dict)",
    type=[s[1:] for s in check.WEIGHT_SUFFIXES],
    key="c2_weights",
)
c1, c2 = st.columns(2)
steps = c1.select_slider(
    "Euler steps",
    [10, 20, check.MODEL_STEPS, 100, EULER_STEPS],
    check.MODEL_STEPS,
    key="c2_steps",
    help=f"The course uses {EULER_STEPS}; fewer are faster on a laptop CPU.",
)
per_digit = c2.select_slider(
    "Samples per digit", [2, check.PER_DIGIT, 10], check.PER_DIGIT, key="c2_per_digit"
)
if st.button("Sample and score my model", key="c2_model_run", disabled=weights is None):
    try:
        st.session_state[check.MODEL_KEY] = ui.run_with_progress(
            check.run_model,
            source,
            weights.getvalue(),
            weights.name,
            int(steps),
            int(per_digit),
            label="Sampling your model…",
        )
    except ValueError as e:
        st.error(str(e))
if st.session_state.get(check.MODEL_KEY) is not None:
    check.show_model(st.session_state[check.MODEL_KEY])
