"""Home: what the lab covers, the active backend, the models and their manifests, and the
CS180 Project 5 deliverables, each linked to the page that produces its figure."""

from pathlib import Path

import streamlit as st

from dashboard import backends, cache, controls, partb

st.title("Diffusion Lab")
st.markdown(
    "Diffusion models and flow matching, after UC Berkeley CS180 Project 5 *Fun With Diffusion "
    "Models*. Everything runs on this computer's CPU, with no internet.\n\n"
    "- **Part A · Diffusion**: a pretrained diffusion model. Noise an image, denoise it three "
    "ways, sample digits from pure noise with classifier-free guidance, edit images (SDEdit, "
    "inpainting) and make optical illusions.\n"
    "- **Part B · Training & flow matching**: train a UNet denoiser, then a flow-matching "
    "model, and compare it with DDPM."
)
st.caption(
    "Conventions. DDPM (Part A): x₀ is the clean image and t counts down from 999 (pure noise) "
    "to 0. Flow matching (Part B): x₀ is noise, x₁ is data and t runs 0 → 1. The two are "
    "opposite; each page says which it uses."
)

st.subheader("Backend")
active = backends.resolve()
if active.error:
    controls.status()
if active.kind == "deepfloyd":
    spec = active.model.spec
    st.markdown(
        f"Part A uses **DeepFloyd IF stage I** (`{active.model.model_id}`, on "
        f"{active.model.device.type}): {spec.image_size}×{spec.image_size} RGB pixels in [-1, 1], "
        f"conditioned on a text prompt ({len(spec.prompts)} stored prompt embeddings; the empty "
        "prompt is the CFG null branch). Choose the backend in the sidebar."
    )
elif active.kind == "pack":
    label = backends.pack_label(active.pack)
    st.markdown(f"Part A shows a **precomputed pack** of DeepFloyd IF figures: {label}")
else:
    spec = backends.MNIST_SPEC
    st.markdown(
        f"Part A uses **{backends.MNIST_LABEL}**: {spec.image_size}×{spec.image_size} "
        f"pixels, {spec.channels} channel, values in {list(spec.value_range)}, conditioned on a "
        "class (0–9) instead of a text prompt. Choose the backend in the sidebar: DeepFloyd IF "
        "(needs its weights and a GPU, see docs/deepfloyd.md) or a precomputed pack."
    )

TOPICS = [
    ("pages/a0_text_to_image.py", "Text to image", ":material/text_fields:", "Part 0: prompt → 64×64 image"),
    ("pages/a1_forward.py", "Forward process", ":material/blur_on:", "A1.1: noising x₀ to x_t"),
    (
        "pages/a2_denoising.py",
        "Denoising compared",
        ":material/compare:",
        "A1.2–A1.4: blur, one step, iterative",
    ),
    (
        "pages/a3_sampling.py",
        "Sampling and CFG",
        ":material/auto_awesome:",
        "A1.5–A1.6: digits from noise, guidance",
    ),
    (
        "pages/a4_image_to_image.py",
        "Image-to-image",
        ":material/brush:",
        "A1.7: SDEdit, drawings, inpainting, class edits",
    ),
    ("pages/a5_illusions.py", "Illusions", ":material/flip:", "A1.8–A1.9: anagrams, hybrids"),
    ("pages/b1_denoiser.py", "Single-step denoiser", ":material/cleaning_services:", "B1"),
    ("pages/b2_flow.py", "Flow matching", ":material/air:", "B2"),
    ("pages/b3_training_lab.py", "Training lab", ":material/model_training:", "train and watch"),
    ("pages/b4_playground.py", "2D playground", ":material/scatter_plot:", "diffusion and flows in 2D"),
    ("pages/ab_ddpm_vs_flow.py", "DDPM ↔ flow matching", ":material/swap_horiz:", "side by side"),
    ("pages/c1_fewer_steps.py", "Fewer steps", ":material/fast_forward:", "DDIM, DPM-Solver++, RK4 vs NFE"),
]


HERE = Path(__file__).resolve().parent


def link(path: str, label: str, icon: str | None = None) -> None:
    """A page link; a plain label when the page is not in the navigation (a page run alone)."""
    try:
        st.page_link(str(HERE / Path(path).name), label=label, icon=icon)
    except Exception:  # noqa: BLE001 -- StreamlitPageNotFoundError outside the app's navigation
        st.markdown(f"- {label}")


st.subheader("Topics")
cols = st.columns(3)
for k, (path, title, icon, what) in enumerate(TOPICS):
    with cols[k % 3]:
        link(path, title, icon)
        st.caption(what)

st.subheader("Deliverables (Part A)")
st.caption(
    "Each item links to the page that makes its figure; every figure has a PNG button. A ticked "
    "box means the model it needs is on this machine."
)
on_disk = cache.available_models()
ready = active.kind in ("deepfloyd", "pack") or on_disk.get("ddpm-class", False)
DELIVERABLES = [
    ("pages/a1_forward.py", "A1.1 The forward process: the test image at t = 250, 500, 750"),
    ("pages/a2_denoising.py", "A1.2 Classical denoising: Gaussian blur of the three noisy images"),
    ("pages/a2_denoising.py", "A1.3 One-step denoising: x̂₀ at t = 250, 500, 750"),
    (
        "pages/a2_denoising.py",
        "A1.4 Iterative denoising: every 5th step of the loop, then one-step and blur side by side",
    ),
    ("pages/a3_sampling.py", "A1.5 Diffusion model sampling: samples from pure noise"),
    ("pages/a3_sampling.py", "A1.6 Classifier-free guidance: samples with CFG"),
    ("pages/a4_image_to_image.py", "A1.7 Image-to-image translation: SDEdit at i_start 1, 3, 5, 7, 10, 20"),
    ("pages/a4_image_to_image.py", "A1.7.1 Editing uploaded images and drawings"),
    ("pages/a4_image_to_image.py", "A1.7.2 Inpainting"),
    ("pages/a4_image_to_image.py", "A1.7.3 Text-conditional (here: class-conditional) image-to-image"),
    ("pages/a5_illusions.py", "A1.8 Visual anagrams"),
    ("pages/a5_illusions.py", "A1.9 Hybrid images"),
]
for path, text in DELIVERABLES:
    needs_model = not text.startswith("A1.1 ")
    tick = ready or not needs_model
    link(path, text, ":material/check_box:" if tick else ":material/check_box_outline_blank:")

st.subheader("Deliverables (Part B)")
st.caption("Each needs the shipped model named after it; a ticked box means it is on this machine.")
DELIVERABLES_B = [  # (page, deliverable, the model it needs or None)
    ("pages/b1_denoiser.py", "B1.2 The noising process over σ = 0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0", None),
    ("pages/b1_denoiser.py", "B1.2.1 Denoiser training curve; results after epochs 1 and 5", "denoiser"),
    ("pages/b1_denoiser.py", "B1.2.2 Out-of-distribution σ: the σ = 0.5 denoiser on other noise levels",
     "denoiser"),
    ("pages/b1_denoiser.py", "B1.2.3 Denoising pure noise: outputs next to the training-set mean",
     "denoiser-pure-noise"),
    ("pages/b2_flow.py", "B2.2 Time-conditioned UNet training curve (model: flow-time)", "flow-time"),
    ("pages/b2_flow.py", "B2.3 Time-conditioned samples after epochs 1, 5 and 10", "flow-time"),
    ("pages/b2_flow.py", "B2.5 Class-conditioned UNet training curve", "flow-class"),
    ("pages/b2_flow.py", "B2.6 Class-conditioned samples after epochs 1, 5, 10 (4 of each digit, CFG)",
     "flow-class"),
    ("pages/b2_flow.py", "B2.6b Without the LR scheduler: the constant rate chosen and its curves",
     "flow-class-constant-lr"),
]
for path, text, model in DELIVERABLES_B:
    tick = model is None or on_disk.get(model, False)
    link(path, text, ":material/check_box:" if tick else ":material/check_box_outline_blank:")

st.subheader("Models")
root = cache.models_dir()
st.caption(f"Folder: `{root}` (set DIFFLAB_MODELS_DIR to use another one).")
rows = partb.model_table(cache.LOADED)
st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    column_config={
        "quality": st.column_config.TextColumn(
            "quality", width="large", help="From quality.json: python -m engine evaluate NAME --write"
        )
    },
)
if any(r["status"] == "missing" for r in rows):
    st.info(
        "Missing models: the pages that need them say so and show the command that trains "
        "them. `python -m engine info` lists them too."
    )
