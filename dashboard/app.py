"""Diffusion Lab: the one entrypoint. ``python -m streamlit run dashboard/app.py``

Navigation (explicit ``st.Page``s, Part A and Part B sections) and the shared sidebar: backend,
seed (``st.session_state["seed"]``), presenter mode (``st.session_state["presenter"]``) and what
the machine and the loaded models are. Pages never import this file and run without it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from dashboard import cache, ui
from engine.train import cpu_supports_bf16

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "pages"

st.set_page_config(page_title="Diffusion Lab", page_icon=":material/blur_on:", layout="wide")
ui.keep_page_settings()  # before any widget exists in this run


MISSING: list[str] = []


def page(file: str, title: str, icon: str, default: bool = False) -> st.Page | None:
    """An ``st.Page`` for ``pages/<file>``, or None (listed in the sidebar) if it is absent."""
    if not (PAGES / file).exists():
        MISSING.append(file)
        return None
    return st.Page(str(PAGES / file), title=title, icon=icon, default=default)


def present(pages: list) -> list[st.Page]:
    return [p for p in pages if p is not None]


sections = {
    "": [page("home.py", "Home", ":material/home:", default=True)],
    "Part A · Diffusion": [
        page("a1_forward.py", "Forward process", ":material/blur_on:"),
        page("a2_denoising.py", "Denoising compared", ":material/compare:"),
        page("a3_sampling.py", "Sampling and CFG", ":material/auto_awesome:"),
        page("a4_image_to_image.py", "Image-to-image", ":material/brush:"),
        page("a5_illusions.py", "Illusions", ":material/flip:"),
    ],
    "Part B · Training & flow matching": [
        page("b1_denoiser.py", "Single-step denoiser", ":material/cleaning_services:"),
        page("b2_flow.py", "Flow matching", ":material/air:"),
        page("b3_training_lab.py", "Training lab", ":material/model_training:"),
        page("ab_ddpm_vs_flow.py", "DDPM ↔ flow matching", ":material/swap_horiz:"),
    ],
}
nav = st.navigation({name: present(ps) for name, ps in sections.items() if present(ps)})

with st.sidebar:
    st.markdown("### Diffusion Lab")
    ui.default("backend", cache.DEFAULT_BACKEND)
    st.selectbox(
        "Backend (Part A)",
        list(cache.BACKENDS),
        key="backend",
        format_func=lambda k: cache.BACKENDS[k].label,
        help="Which diffusion model the Part A pages use. DeepFloyd IF will appear here as a "
        "second backend; the pages stay the same.",
    )
    ui.default("seed", 0)
    st.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        step=1,
        key="seed",
        help="Every random draw (noise, sampling) comes from a generator seeded with this: "
        "the same seed gives the same pictures.",
    )
    ui.default("presenter", False)
    st.toggle(
        "Presenter mode",
        key="presenter",
        help="Bigger images and fewer secondary controls, for a 1280x720 projector.",
    )


def machine_panel(machine) -> None:
    """Threads, bf16 and the models: on disk, missing, or loaded (as of the previous run)."""
    with machine.expander("Machine and models", expanded=False):
        bf16 = cpu_supports_bf16()
        st.caption(
            f"torch {torch.__version__.split('+')[0]} · {torch.get_num_threads()} CPU threads · "
            f"bf16 {'yes (autocast on)' if bf16 else 'no (float32)'}"
        )
        loaded = cache.loaded_models()
        lines = []
        for name, ok in cache.available_models().items():
            state = "loaded" if name in loaded else ("on disk" if ok else "missing")
            lines.append(f"- `{name}`: {state}")
        st.markdown("\n".join(lines))
        st.caption(f"Models folder: `{cache.models_dir()}`")
    if MISSING:
        machine.warning("Pages missing from this copy: " + ", ".join(MISSING))


machine_panel(st.sidebar)
ui.presenter_css()
nav.run()
