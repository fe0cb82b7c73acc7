"""Performance: what this machine can do. The benchmark reports in cache/bench/ (each item timed
against a plain reference in the same run), the training speed of every shipped model, and a
button that measures this machine now."""

import streamlit as st

from dashboard import performance as perf
from dashboard import ui
from dashboard.cache import models_dir
from dashboard.ui import plot

st.title("Performance")
st.markdown(
    "Machines are shared and noisy, so every benchmark item times the fast path **and** a plain "
    "reference back to back in the same run, and reports the ratio (above 1: the fast path wins). "
    "Training and sampling use bf16 and a folded-BatchNorm copy of the UNet where the CPU supports "
    "bf16; the Forward page scrubs in the browser instead of rerunning the script."
)

for name, title in perf.REPORTS.items():
    report = perf.load_report(name)
    if report is None or not report["results"]:
        continue
    st.subheader(title)
    when = f" on {report['when']}" if report.get("when") else ""
    st.caption(f"Measured{when}: {report['machine']}"
               + (" (quick run: few repeats)" if report.get("quick") else "")
               + (f". {report['note']}" if isinstance(report.get("note"), str) and report["note"] else ""))
    st.dataframe(perf.table_rows(report), hide_index=True)
    fig = perf.ratio_figure(report, "Ours vs the reference")
    if fig is not None:
        plot(fig, key=f"ratios-{name}")

st.subheader("Training speed of the shipped models")
speeds = perf.training_speeds(models_dir())
if speeds:
    st.dataframe(speeds, hide_index=True)
    st.caption("As recorded in each model's manifest.json by `python -m engine train`: the average "
               "over the whole run, lower when other work shared the CPU (or, for GPU runs, when "
               "several runs shared the GPU: scripts/train_gpu.sh trains six at once).")
else:
    st.info("No trained models found. `bash scripts/train_all.sh` trains them.")

st.subheader("Measure this machine")
st.markdown("Runs `python -m engine bench --quick` (training steps and CFG sampling, each against "
            "fp32; about a minute on 2 cores) and shows it above.")
if st.button("Run the quick benchmark", icon=":material/speed:"):
    ok, output = ui.run_with_progress(perf.run_quick_engine_bench,
                                      label="Benchmarking… (other pages stay usable in other tabs)")
    if ok:
        st.rerun()  # the new report shows above
    else:
        st.error("The benchmark did not finish.")
        st.code(output, language=None)
