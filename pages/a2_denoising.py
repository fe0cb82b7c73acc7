"""A1.2-A1.4 Denoising compared at matched noise: Gaussian blur, one-step x0_hat and the
iterative DDPM loop. DDPM convention: x_0 clean, t counts down from 999; the model works on
pixels in [-1, 1], images are shown in [0, 1]."""

import streamlit as st

from dashboard import backends, cache, figures, ui

st.title("Denoising compared")
st.markdown(
    "Noise a digit to $x_t$, then try to get $x_0$ back three ways, all from the **same** "
    "$x_t$ (same $\\epsilon$). **Blur** (A1.2) removes high frequencies, noise and detail "
    "alike. **One step** (A1.3) asks the model for the noise $\\hat\\epsilon = "
    "\\epsilon_\\theta(x_t, t)$ and solves the forward equation for $x_0$:"
)
st.latex(r"\hat x_0 = \frac{x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon}{\sqrt{\bar\alpha_t}}")
st.markdown(
    "**Iterative** (A1.4) takes many small steps $t \\to t'$ on a strided schedule, each a "
    "blend of $\\hat x_0$ and $x_t$ plus a little fresh noise $v_\\sigma$:"
)
st.latex(
    r"x_{t'} = \frac{\sqrt{\bar\alpha_{t'}}\,\beta_t}{1 - \bar\alpha_t}\,\hat x_0 + "
    r"\frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t'})}{1 - \bar\alpha_t}\,x_t + v_\sigma, \quad "
    r"\alpha_t = \bar\alpha_t / \bar\alpha_{t'},\ \beta_t = 1 - \alpha_t"
)

active, model = ui.part_a()
if active.pack is not None:
    pack = active.pack
    s_idx, s_seed = backends.pack_seed(pack, "a2_pack_seed")
    fig = backends.pack_figure(pack, "one_step")
    if fig is not None:
        st.subheader("One-step denoising at t = 250, 500, 750 (with the blur baseline)")
        a = fig.arrays
        size = a["photo"].shape[-1]
        rows = [*a["noisy"][s_idx], *a["blurred"][s_idx], *a["denoised"][s_idx]]
        ui.image(
            figures.grid(rows, ncols=len(a["timesteps"]), scale=max(2, 128 // size)),
            caption="rows: noisy, blur, one-step x̂₀; columns: t = "
            + ", ".join(str(int(v)) for v in a["timesteps"])
            + f" · prompt “{fig.meta.get('prompt')}”, seed {s_seed}",
            download=f"pack_one_step_seed{s_seed}",
            key="a2_dl_pack_one",
        )
    fig = backends.pack_figure(pack, "iterative")
    if fig is not None:
        a = fig.arrays
        size = a["photo"].shape[-1]
        ts = [int(v) for v in a["timesteps"]]
        st.subheader(f"Iterative denoising from i_start = {fig.meta.get('i_start')} (t = {ts[0]})")
        images = [a["photo"][s_idx], a["noisy"][s_idx], a["blurred"][s_idx][0], a["one_step"][s_idx][0]]
        images.append(a["final"][s_idx][0])
        ui.image(
            figures.labeled_row(
                images, ["clean", f"t={ts[0]}", "blur", "one-step", "iterative"], scale=max(2, 128 // size)
            ),
            caption=f"seed {s_seed}",
            download=f"pack_iterative_seed{s_seed}",
            key="a2_dl_pack_iter",
        )
        traj = a["trajectory"][s_idx][0].astype("float32")
        steps = list(range(0, len(ts), 5)) + ([len(ts) - 1] if (len(ts) - 1) % 5 else [])
        ui.image(
            figures.labeled_row(
                [traj[k] for k in steps], [f"t={ts[k]}" for k in steps], scale=max(2, 96 // size)
            ),
            caption="every 5th step of the loop",
        )
    st.stop()

key = cache.model_key(active)
seed = ui.seed()
text = model.spec.conditioning == "text"

c1, c2, c3 = st.columns(3)
with c1:
    if text:
        x_0, photo_name = ui.photo_source("a2", model.spec.image_size, "Image")
    else:
        index = ui.digit_picker("a2_index", 0)
with c2:
    ui.default("a2_t", 690)
    t = int(
        st.radio(
            "t",
            [250, 500, 690, 750],
            key="a2_t",
            horizontal=True,
            help="690 is the spec's loop figure: i_start = 10 on the 990, 960, ..., 0 grid.",
        )
    )
with c3:
    if text:
        prompt = ui.prompt_select(
            "Condition the model on the prompt",
            "a2_prompt",
            backends.prompt_options(model),
            ("a high quality photo",),
            allow_null=True,
        )
    else:
        ui.default("a2_cond", "the digit's class")
        cond_mode = st.radio(
            "Condition the model on", ["the digit's class", "no class"], key="a2_cond", horizontal=True
        )

with ui.secondary("Blur and loop settings"):
    b1, b2, b3, b4 = st.columns(4)
    with b1:
        ui.default("a2_auto_sigma", True)
        auto = st.checkbox(
            "Best σ (found with the answer)",
            key="a2_auto_sigma",
            help="Tries σ = 0.25 ... 6 and keeps the best PSNR against the clean "
            "digit: the best case for blurring.",
        )
    with b2:
        ui.default("a2_kernel", 5)
        kernel = int(st.select_slider("Blur kernel", [3, 5, 7, 9, 11, 13], key="a2_kernel", disabled=auto))
    with b3:
        ui.default("a2_sigma", 2.0)
        sigma = float(st.slider("Blur σ", 0.25, 6.0, step=0.25, key="a2_sigma", disabled=auto))
    with b4:
        ui.default("a2_stride", 30)
        stride = int(
            st.select_slider(
                "Stride",
                [10, 20, 30, 50, 100],
                key="a2_stride",
                help="Timesteps skipped per step of the iterative loop.",
            )
        )

if text:
    if x_0 is None:
        st.stop()
    cond_label, label, index = prompt, f"photo “{photo_name}”", photo_name
else:
    x_0, label = cache.mnist_digit(index)
    cond_label = label if cond_mode == "the digit's class" else None
res = cache.denoise_comparison(key, x_0, cond_label, t, seed, stride, kernel, None if auto else sigma)

sc = ui.scale_for(x_0.shape[-1], 6)
names = [
    "clean x₀",
    f"noisy x_t (t = {t})",
    f"blur (k = {res.blur_kernel}, σ = {res.blur_sigma:g})",
    "one-step x̂₀",
    "iterative",
]
images = [x_0, res.noisy, res.blurred, res.one_step, res.iterative]
metric_keys = [None, "noisy", "blur", "one-step", "iterative"]
cols = st.columns(5)
for col, name, img, mk in zip(cols, names, images, metric_keys, strict=True):
    with col:
        caption = name
        if mk:
            p, s = res.metrics[mk]
            caption += f"\n\nPSNR {p:.1f} dB · SSIM {s:.2f}"
        ui.image(img, caption=caption, scale_by=sc)
ui.download_png(
    figures.labeled_row(images, ["clean", f"t={t}", "blur", "one-step", "iterative"], scale=4),
    f"denoise_compare_{index}_t{t}_seed{seed}",
    key="a2_dl_row",
)
if text:
    st.caption(f"{label}, prompt “{prompt}”; seed {seed}; PSNR and SSIM against the clean image in [0, 1].")
else:
    st.caption(f"Digit #{index} (a {label}); seed {seed}; PSNR and SSIM against the clean digit in [0, 1].")

st.subheader("The spec's three noise levels: t = 250, 500, 750")
st.markdown("Rows: noisy $x_t$, blur, one-step $\\hat x_0$, iterative. Same settings as above.")
levels = [
    cache.denoise_comparison(key, x_0, cond_label, s, seed, stride, kernel, None if auto else sigma)
    for s in (250, 500, 750)
]
rows = [
    [r.noisy for r in levels],
    [r.blurred for r in levels],
    [r.one_step for r in levels],
    [r.iterative for r in levels],
]
level_grid = figures.grid([img for row in rows for img in row], ncols=3, scale=max(3, sc - 2))
ui.image(
    level_grid,
    caption="columns: t = 250, 500, 750",
    download=f"denoise_levels_{index}_seed{seed}",
    key="a2_dl_levels",
)

st.subheader("Inside the iterative loop: every 5th step")
st.markdown(
    f"From t = {t} down to 0 with stride {stride}: " + ", ".join(f"t = {s}" for s in res.iterative_ts) + "."
)
ui.image(
    figures.labeled_row(list(res.iterative_steps), [f"t={s}" for s in res.iterative_ts], scale=sc // 2 + 1),
    download=f"iterative_steps_{index}_t{t}_seed{seed}",
    key="a2_dl_steps",
)

st.subheader("PSNR against t")
st.markdown(
    "Same digit and noise seed at each t; blur uses its best σ at every t. PSNR rewards "
    "being close on average, so a blurry guess can score well: look at the pictures too."
)
ui.default("a2_curve", not ui.presenter())
if st.toggle("Compute the chart (runs the loop once per t)", key="a2_curve"):
    ts = (50, 150, 250, 400, 500, 690, 750, 900)
    curve = cache.psnr_curve(key, x_0, cond_label, seed, stride, ts)
    ui.plot(figures.metric_vs_t_figure(ts, curve, "PSNR (dB)", mark_t=t), key="a2_psnr_vs_t")
