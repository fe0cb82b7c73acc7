"""Diffusion Lab: the one entrypoint. ``streamlit run dashboard/app.py`` (or ``python -m streamlit run``)

Navigation (explicit ``st.Page``s, Part A and Part B sections, from the plain list in
``dashboard.navigation``; ``st.navigation`` routes, the sidebar's own page links show them) and
the shared sidebar: backend (built-in MNIST DDPM, DeepFloyd IF or
a precomputed pack; ``dashboard.backends``), seed
(``st.session_state["seed"]``), presenter mode (``st.session_state["presenter"]``) and what the
machine and the loaded models are. Pages never import this file and run without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on sys.path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
import torch  # noqa: E402

from dashboard import backends, cache, navigation, ui, viewcache, web  # noqa: E402
from dashboard import performance as perf  # noqa: E402
from engine.deepfloyd.model import DEFAULT_MODEL_ID  # noqa: E402
from engine.device import cpu_supports_bf16  # noqa: E402

st.set_page_config(page_title="Diffusion Lab", page_icon=":material/blur_on:", layout="wide")
ui.keep_page_settings()  # before any widget exists in this run
viewcache.start_fill()  # once per server: every page's default view onto disk, in the background


MISSING: list[str] = []


def page(entry: navigation.Page) -> st.Page | None:
    """An ``st.Page`` for one entry of ``dashboard.navigation``, or None (listed in the sidebar)
    if its file is absent."""
    if not entry.path.exists():
        MISSING.append(entry.file)
        return None
    return st.Page(str(entry.path), title=entry.title, icon=entry.icon, default=entry.default)


def present(pages: list) -> list[st.Page]:
    return [p for p in pages if p is not None]


sections = {name: [page(entry) for entry in entries] for name, entries in navigation.SECTIONS.items()}


def backend_settings(side) -> None:
    """The chosen backend's settings, then one line on what the pages will use."""
    choice = backends.requested()
    if choice == backends.DEEPFLOYD:
        ui.default("df_model", DEFAULT_MODEL_ID)
        side.text_input(
            "Hub id or local folder",
            key="df_model",
            help="A Hub id (DeepFloyd/IF-I-XL-v1.0, -L-, -M-) read from the Hugging Face cache, or a "
            "folder in diffusers' layout (model_index.json, unet/, scheduler/). See docs/deepfloyd.md.",
        )
        ui.default("df_embeds_path", "")
        side.text_input(
            "Prompt embeddings file (optional)",
            key="df_embeds_path",
            placeholder="prompt_embeds_dict.pth",
            help="The course's prompt_embeds_dict.pth (prompt -> [1, 77, 4096]) or a safetensors file; "
            "imported once into cache/embeddings/.",
        )
        side.file_uploader("…or upload it", type=["pth", "pt", "safetensors"], key="df_embeds_upload")
        ui.default("df_allow_cpu", False)
        side.toggle(
            "Allow the CPU (very slow)",
            key="df_allow_cpu",
            help="Without a GPU, IF runs in float32 on the CPU: minutes per 64×64 image.",
        )
        ui.default("df_download", False)
        side.toggle(
            "Download from the Hub if missing",
            key="df_download",
            help="Off: only the local Hugging Face cache or folder is used (no network). On: the "
            "stage I UNet is downloaded (≈ 8.6 GB; needs an accepted licence and a token).",
        )
    elif choice == backends.PACK:
        found = backends.list_packs()
        ui.default("pack_path", found[0] if found else "")
        side.text_input(
            "Pack folder",
            key="pack_path",
            help=f"A folder under {backends.packs_dir()} (its name) or an absolute path.",
        )
        side.caption(
            ("Packs here: " + ", ".join(f"`{n}`" for n in found))
            if found
            else "No packs in cache/packs/ yet."
        )
    active = backends.resolve()
    if active.error:
        side.warning("Using the built-in MNIST DDPM: the chosen backend is unavailable (the page says why).")
    elif active.kind == backends.DEEPFLOYD:
        side.success(f"DeepFloyd IF: `{active.model.model_id}` on {active.model.device.type}.")
    elif active.kind == backends.PACK:
        side.success(f"Pack by `{active.pack.model_id}`: {len(active.pack.figures)} figures.")


def sidebar_nav(pages: dict[str, list[st.Page]], current: st.Page) -> None:
    """Every page as an ``st.page_link`` in the sidebar, each section under its own heading (an
    ``<h2>``), the current page highlighted and bold. These replace ``st.navigation``'s own
    menu, whose markup fails WCAG 1.3.1 on every page (``<li>`` outside any list, a ``<ul>``
    holding ``<div>``s: axe's ``listitem`` and ``list``); see docs/accessibility.md. A page link
    switches pages in the same session, as the menu did. ``dashboard/web/nav.js`` makes the box a
    navigation landmark and gives the current page's link ``aria-current="page"``."""
    key = navigation.NAV_KEY
    with st.sidebar.container(key=key):
        for name, entries in pages.items():
            if name:
                st.markdown(f"## {name}")
            for entry in entries:
                st.page_link(entry, width="stretch")
        css = web.fill("nav.css", KEY=key)
        script = web.fill("nav.js", KEY=key, CURRENT=json.dumps(current.url_path))
        st.html(f"<style>{css}</style><script>{script}</script>", unsafe_allow_javascript=True)


pages = {name: present(ps) for name, ps in sections.items() if present(ps)}
nav = st.navigation(pages, position="hidden")  # routing and URLs only; the menu is sidebar_nav
sidebar_nav(pages, nav)

with st.sidebar:
    st.markdown("### Diffusion Lab")
    choices = list(backends.CHOICES)
    st.selectbox(
        "Backend (Part A)",
        **ui.linked("backend", backends.DEFAULT_BACKEND, choices, "index", format_func=backends.CHOICES.get),
        help="Which diffusion model the Part A pages use; the pages and algorithms stay the same. "
        "DeepFloyd IF needs its weights (gated on the Hugging Face Hub) and in practice a GPU; "
        "a precomputed pack shows DeepFloyd figures computed elsewhere.",
    )
    backend_settings(st.sidebar)
    st.number_input(
        "Seed",
        **ui.linked("seed", ui.SEED_DEFAULT, min_value=0, max_value=ui.SEED_MAX, step=1),
        help="Every random draw (noise, sampling) comes from a generator seeded with this: "
        "the same seed gives the same pictures.",
    )
    st.toggle(
        "Presenter mode",
        **ui.linked("presenter", False),
        help="Bigger images and fewer secondary controls, for a 1280x720 projector.",
    )
    ui.share_link()
    ui.presenter_keys()

if ui.presenter():  # the projector's whole width for the picture; the sidebar's ">" opens it again (#25)
    st.set_page_config(initial_sidebar_state="collapsed")


def machine_panel(machine) -> None:
    """Threads, bf16 and the models: on disk, missing, or loaded (as of the previous run)."""
    with machine.expander("Machine and models", expanded=False):
        bf16 = cpu_supports_bf16()
        st.caption(
            f"torch {torch.__version__.split('+')[0]} · {torch.get_num_threads()} CPU threads · "
            f"bf16 {'yes (training: autocast; sampling: bf16 weights)' if bf16 else 'no (float32)'}"
        )
        loaded = cache.LOADED
        lines = []
        for name, ok in cache.available_models().items():
            state = "loaded" if name in loaded else ("on disk" if ok else "missing")
            lines.append(f"- `{name}`: {state}")
        st.markdown("\n".join(lines))
        st.caption(f"Models folder: `{cache.models_dir()}`")
        line = perf.sidebar_line(perf.load_report("engine"), perf.load_report("dashboard"))
        if line:
            st.caption(line + " (see Performance)")
    if MISSING:
        machine.warning("Pages missing from this copy: " + ", ".join(MISSING))


machine_panel(st.sidebar)
ui.page_css()
nav.run()
