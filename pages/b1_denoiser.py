"""Single-step denoiser (CS180 Part B1): a UNet D_theta(z) ~ x for z = x + sigma eps.

Sections: the sigma grid live, results after epochs 1 and 5 (training snapshots), the
out-of-distribution sigma sweep with PSNR, the pure-noise model against the mean digit, and the
training curve.
"""

import numpy as np
import streamlit as st

from dashboard import cache_partb, controls, curves, images, ui
from dashboard.partb import SIGMA_GRID, SWEEP_SIGMAS, model_folder, models_dir, rms, snapshot_epochs, stamp

big = ui.presenter()
scale = 6 if big else 4
root = str(models_dir())


def download(label: str, img: np.ndarray, name: str, key: str) -> None:
    ui.download_png(img, name, key, label=f"⬇ {label}", scale_by=scale, icon=None, kind="tertiary")


st.title("Single-step denoiser")
lead = ui.lead(ratio=(1, 5))  # presenter mode: the sigma grid first, the seed beside it
with lead.intro:
    st.markdown(
        r"""
A UNet $D_\theta$ learns to remove Gaussian noise in **one** step (CS180 Part B1). Each training
pair is a clean digit $x$ and its noisy version $z = x + \sigma\epsilon$ with
$\epsilon \sim \mathcal{N}(0, I)$ and $\sigma = 0.5$; the loss is the L2 distance
$$L = \mathbb{E}_{z, x}\,\lVert D_\theta(z) - x \rVert^2 .$$
"""
    )
    # ------------------------------------------------------------------------- 1. sigma grid
    st.header("Noise levels σ = 0 … 1")
    st.markdown(
        r"""
The same $\epsilon$ is added at every $\sigma$ in the grid. Each column shows the noisy input
$z$ (left) and the output $D_\theta(z)$ (right); the PSNR compares $D_\theta(z)$ with the clean $x$.
The model only ever saw $\sigma = 0.5$.
"""
    )
with lead.controls:
    c1, c2 = st.columns([1, 3]) if not big else (st.container(), None)  # presenter: 3 digits, no slider
    seed = int(
        c1.number_input(
            "Seed (picks the digits and the noise)",
            **ui.linked("b1_seed", int(st.session_state.get("seed", 0)), min_value=0, max_value=10_000),
        )
    )
    count = 3 if big else int(c2.slider("Test digits", **ui.linked("b1_count", 4, min_value=1, max_value=8)))
with lead.figure:
    denoiser = controls.require_model("denoiser")
    if denoiser is not None:
        grid = cache_partb.denoise_grid(SIGMA_GRID, count, seed, root, stamp("denoiser"))
        cols = st.columns(len(SIGMA_GRID))
        for i, (col, s) in enumerate(zip(cols, SIGMA_GRID, strict=True)):
            pair = np.stack([np.clip(grid.noisy[i], 0, 1), np.clip(grid.denoised[i], 0, 1)], 1)  # N,2,H,W
            with col:
                st.markdown(f"**σ = {s:g}**" + (" ✱" if s == 0.5 else ""))
                ui.image(
                    images.table(pair),
                    f"z | D(z) · {grid.psnr_denoised[i]:.1f} dB",
                    scale,
                    width="stretch",
                    alt=f"{count} test digits at noise σ = {s:g}: each noisy input z beside the denoiser's "
                    f"output D(z), which is {grid.psnr_denoised[i]:.1f} dB from the clean digit",
                )
        st.caption(
            "Each column: noisy input z (left) and output D(z) (right) per digit; the PSNR of D(z) "
            "against the clean digits. ✱ the training noise level."
        )
        pairs = np.stack([np.clip(grid.noisy, 0, 1), np.clip(grid.denoised, 0, 1)], 2)  # (S, N, 2, H, W)
        whole = images.table(pairs.transpose(1, 2, 0, 3, 4).reshape(-1, len(SIGMA_GRID), 28, 28))
        download(
            "sigma grid (rows: z, D(z) per digit; columns: σ)",
            whole,
            f"denoiser_sigma_grid_seed{seed}",
            "b1_dl_grid",
        )

# ----------------------------------------------------------------------------- 2. snapshots
st.header("After epoch 1 and after epoch 5")
st.markdown(
    r"""
Snapshots saved during training, on the same 8 test digits at $\sigma = 0.5$: rows are the
clean $x$, the noisy $z$ and $D_\theta(z)$. One epoch already removes most of the noise; more
training sharpens the strokes.
"""
)
epochs = snapshot_epochs("denoiser")
if not epochs:
    folder = model_folder("denoiser")
    st.info(
        f"No training snapshots in `{folder}/snapshots` yet; they are written after epochs 1 "
        f"and 5 by `python -m engine train denoiser --out {folder}`."
    )
else:
    cols = st.columns(len(epochs))
    for col, ep in zip(cols, epochs, strict=True):
        snap = cache_partb.load_snapshot("denoiser", ep)
        if snap is None:
            col.warning(f"The epoch {ep} snapshot is unreadable.")
            continue
        arrays, meta = snap
        sig = list(meta.get("sigmas", SIGMA_GRID))
        k = sig.index(0.5) if 0.5 in sig else 0
        rows = np.stack(
            [
                arrays["clean"][:, 0],
                np.clip(arrays["noisy"][k][:, 0], 0, 1),
                np.clip(arrays["denoised"][k][:, 0], 0, 1),
            ]
        )
        with col:
            ui.image(images.table(rows), f"epoch {ep}: x / z / D(z)", scale, width="stretch",
                     alt=f"After training epoch {ep}: rows of clean digits x, noisy inputs z and the "
                     "denoiser's outputs D(z)")
            download(f"epoch {ep}", images.table(rows), f"denoiser_epoch{ep}", f"b1_dl_ep{ep}")

# ----------------------------------------------------------------------------- 3. OOD sweep
st.header("Out of distribution: other noise levels")
st.markdown(
    r"""
$D_\theta$ was trained only at $\sigma = 0.5$. Below $0.5$ it still removes "0.5 worth" of noise
and blurs strokes a little; above $0.5$ noise it never saw leaks through and it invents blobs.
The chart compares $\mathrm{PSNR} = 10 \log_{10}(1 / \mathrm{MSE})$ of $D_\theta(z)$ and of the
noisy $z$ itself, over 32 test digits.
"""
)
if denoiser is not None:
    sweep = cache_partb.denoise_grid(SWEEP_SIGMAS, 32, seed, root, stamp("denoiser"))
    fig = curves.psnr_figure(
        sweep.sigmas, sweep.psnr_denoised, np.minimum(sweep.psnr_noisy, 40.0), 0.5, height=460 if big else 360
    )
    fig.update_yaxes(range=[0, 42])
    ui.plot(fig, key="b1_psnr", filename="denoiser_psnr_vs_sigma")
    st.caption(
        "At σ = 0 the noisy input is the clean digit itself: its PSNR is infinite, drawn "
        "at 40 dB. The denoiser still changes a clean digit a little, so its curve starts lower."
    )
else:
    st.caption("Needs the denoiser model (see above).")

# ----------------------------------------------------------------------------- 4. pure noise
st.header("Denoising pure noise: the mean digit")
st.markdown(
    r"""
The **denoiser-pure-noise** model was trained with $z = \epsilon$: its input carries no
information about $x$. The L2-optimal output is then the same for every input,
$$D^*(z) = \arg\min_{d}\ \mathbb{E}_x \lVert d - x \rVert^2 = \mathbb{E}[x],$$
the average training digit. Its outputs should look like that blurry mean image, and the RMS
difference (pixels in $[0, 1]$) should be small.
"""
)
pure = controls.require_model("denoiser-pure-noise")
if pure is not None:
    n = 4 if big else 6
    res = cache_partb.pure_noise(n, seed, root, stamp("denoiser-pure-noise"))
    a, b, c = st.columns([n, n, 2])
    with a:
        ui.image(images.grid(list(res.noise), n), "inputs ε", scale, width="stretch",
                 alt=f"{n} pure Gaussian noise images ε, the inputs")
    with b:
        ui.image(images.grid(list(res.outputs), n), "outputs D(ε)", scale, width="stretch",
                 alt=f"The pure-noise denoiser's {n} outputs D(ε): blurry digit-like blobs, "
                 f"{res.rms.mean():.3f} RMS from the training mean on average")
    with c:
        ui.image(res.mean, "training mean E[x]", scale, width="stretch",
                 alt="The mean of all MNIST training digits: a blurry bright blob in the centre")
    m1, m2, m3 = st.columns(3)
    m1.metric("RMS(D(ε) − E[x]), mean over outputs", f"{res.rms.mean():.4f}")
    m2.metric("RMS(average of D(ε) − E[x])", f"{res.rms_of_average:.4f}")
    m3.metric("RMS(E[x]) for scale", f"{float(rms(res.mean, 0)):.4f}")
    both = images.grid(list(np.concatenate([res.outputs, res.mean[None]])), n + 1)
    download("outputs and the mean image", both, f"pure_noise_vs_mean_seed{seed}", "b1_dl_pure")

st.subheader("The pure-noise model after epoch 1 and after epoch 5")
st.markdown(
    "Snapshots saved while it trained (the write-up's B1.2.3 figure), on the same 8 draws of "
    "noise: rows are the input ε and the output D(ε). After one epoch the output is already "
    "one blurry digit-shaped blob whatever the input; by epoch 5 it has settled on the mean."
)
pure_epochs = snapshot_epochs("denoiser-pure-noise")
if not pure_epochs:
    st.info(
        f"No snapshots in `{model_folder('denoiser-pure-noise')}/snapshots`; they are written after "
        "epochs 1 and 5 by `python -m engine train denoiser-pure-noise`."
    )
for col, ep in zip(st.columns(max(1, len(pure_epochs))), pure_epochs, strict=False):
    snap = cache_partb.load_snapshot("denoiser-pure-noise", ep)
    if snap is None:
        col.warning(f"The epoch {ep} snapshot is unreadable.")
        continue
    rows = np.stack([np.clip(snap[0]["noise"][:, 0], 0, 1), np.clip(snap[0]["denoised"][:, 0], 0, 1)])
    with col:
        ui.image(images.table(rows), f"pure noise, epoch {ep}: ε / D(ε)", scale, width="stretch",
                 alt=f"After epoch {ep} of the pure-noise denoiser: rows of noise inputs ε and outputs D(ε)")
        download(f"epoch {ep}", images.table(rows), f"pure_noise_epoch{ep}", f"b1_dl_pure_ep{ep}")

# ----------------------------------------------------------------------------- 5. training curve
st.header("Training curve")
st.markdown(
    r"""
The loss $\lVert D_\theta(z) - x\rVert^2$ per batch (faint) and its moving average (bold),
log scale. The pure-noise model plateaus at the variance of the digits around their mean:
no network can do better than $\mathbb{E}[x]$ there.
"""
)
weight = 0.9 if big else st.slider("Smoothing", 0.0, 0.99, 0.9, 0.01, key="b1_smooth")
logs = [cache_partb.model_curve(name) for name in ("denoiser", "denoiser-pure-noise")]
logs = [c for c in logs if c is not None]
if logs:
    ui.plot(
        curves.loss_figure(logs, weight, height=460 if big else 380),
        key="b1_loss",
        filename="denoiser_training_curve",
    )
else:
    st.info(f"No training log yet in `{models_dir()}` (log.jsonl of denoiser, denoiser-pure-noise).")
