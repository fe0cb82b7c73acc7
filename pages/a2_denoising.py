"""A1.2-A1.4 Denoising compared at matched noise: Gaussian blur, one-step x0_hat and the
iterative DDPM loop. DDPM convention: x_0 clean, t counts down from 999; the model works on
pixels in [-1, 1], images are shown in [0, 1]."""

import streamlit as st

from dashboard import backends, cache, controls, figures, images, ui

st.title("Denoising compared")
lead = ui.lead(ratio=(1, 3))  # presenter mode: the five pictures first, a narrow control column
with lead.intro:
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
    st.latex(  # two lines: one would scroll sideways on a projector (WCAG 1.4.10)
        r"\begin{gathered}x_{t'} = \frac{\sqrt{\bar\alpha_{t'}}\,\beta_t}{1 - \bar\alpha_t}\,\hat x_0 + "
        r"\frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t'})}{1 - \bar\alpha_t}\,x_t + v_\sigma, \\ "
        r"\alpha_t = \bar\alpha_t / \bar\alpha_{t'},\ \beta_t = 1 - \alpha_t\end{gathered}"
    )

with lead.controls:
    active, backend = controls.part_a("a2")
    key = active.key
    seed = controls.seed(backend, "a2")
    spec = backend.spec
    text = spec.conditioning == "text"

    # one narrow column beside the pictures in presenter mode: the controls stacked
    c1, c2, c3 = st.columns(3) if not ui.presenter() else (st.container(),) * 3
    with c1:
        if text:
            x_0, photo_name = controls.photo_source("a2", spec.image_size, backend, "Image")
        else:
            index = controls.digit_picker("a2_index", 0)
    with c2:
        t = int(
            controls.pick(
                "t",
                "a2_t",
                [250, 500, 690, 750],
                690,
                backend.allowed("denoise_t"),
                widget=st.radio,
                horizontal=True,
                help="690 is the spec's loop figure: i_start = 10 on the 990, 960, ..., 0 grid.",
            )
        )
    with c3:
        if text:
            allowed = backend.allowed("denoise_prompt")
            if allowed:
                prompt = controls.pick(
                    "Condition the model on the prompt", "a2_prompt", allowed, allowed[0], allowed
                )
            else:
                prompt = controls.prompt_select(
                    "Condition the model on the prompt",
                    "a2_prompt",
                    backends.prompt_options(spec),
                    ("a high quality photo",),
                    allow_null=True,
                )
        else:
            modes = ["the digit's class", "no class"]
            cond_mode = st.radio(
                "Condition the model on", horizontal=True, **ui.linked("a2_cond", modes[0], modes, "index")
            )

    with ui.secondary("Blur and loop settings"):
        b1, b2, b3, b4 = st.columns(4) if not ui.presenter() else (st.container(),) * 4
        fixed_blur = backend.allowed("blur")
        with b1:
            auto = fixed_blur is None and st.checkbox(
                "Best σ (found with the answer)",
                **ui.linked("a2_auto_sigma", True),
                help="Tries σ = 0.25 ... 6 and keeps the best PSNR against the clean "
                "digit: the best case for blurring.",
            )
        with b2:
            kernel = int(
                controls.pick(
                    "Blur kernel",
                    "a2_kernel",
                    [3, 5, 7, 9, 11, 13],
                    5,
                    fixed_blur and [fixed_blur[0][0]],
                    disabled=auto,
                )
            )
        with b3:
            ui.default("a2_sigma", 2.0)
            if fixed_blur:
                sigma = float(fixed_blur[0][1])
                st.caption(f"Blur σ: {sigma:g} (from the pack)")
            else:
                sigma = float(
                    st.slider(
                        "Blur σ",
                        disabled=auto,
                        **ui.linked("a2_sigma", 2.0, min_value=0.25, max_value=6.0, step=0.25),
                    )
                )
        with b4:
            stride = int(
                controls.pick(
                    "Stride",
                    "a2_stride",
                    [10, 20, 30, 50, 100],
                    30,
                    backend.allowed("stride"),
                    help="Timesteps skipped per step of the iterative loop.",
                )
            )

with lead.figure:
    if text:
        if x_0 is None:
            st.stop()
        cond_label, label, index = prompt, f"photo “{photo_name}”", photo_name
    else:
        x_0, label = cache.mnist_digit(index)
        cond_label = label if cond_mode == "the digit's class" else None
    blur = None if auto else sigma
    res = controls.answer(
        cache.denoise, key, x_0, cond_label, t, seed, stride, kernel, blur, label="Denoising…"
    )
    if res is None:
        st.stop()

    sc = ui.scale_for(x_0.shape[-1], 6)
    names = [
        "clean x₀",
        f"noisy x_t (t = {t})",
        f"blur (k = {res.blur_kernel}, σ = {res.blur_sigma:g})",
        "one-step x̂₀",
        "iterative",
    ]
    shown = [x_0, res.noisy, res.blurred, res.one_step, res.iterative]
    says = [  # each picture in words, for a screen reader (its caption is short)
        "The clean image x₀ the noise is added to",
        f"The noisy image x_t at t = {t}",
        f"x_t denoised by a Gaussian blur (kernel {res.blur_kernel}, σ = {res.blur_sigma:g})",
        f"x_t denoised in one step: the model's estimate x̂₀ from t = {t}",
        f"x_t denoised by the iterative loop from t = {t} to 0, stride {stride}",
    ]
    metric_keys = [None, "noisy", "blur", "one-step", "iterative"]
    for col, name, img, mk, said in zip(st.columns(5), names, shown, metric_keys, says, strict=True):
        with col:
            if img is None:
                st.caption(f"{name}: not in this pack at t = {t}")
                continue
            caption = name
            if mk:
                p, s = res.metrics[mk]
                caption += f"\n\nPSNR {p:.1f} dB · SSIM {s:.2f}"
                said += f" (PSNR {p:.1f} dB, SSIM {s:.2f} against the clean image)"
            ui.image(img, caption=caption, scale_by=sc, alt=said)
    row = [img for img in shown if img is not None]
    ui.download_png(
        images.labeled_row(row, ["clean", f"t={t}", "blur", "one-step", "iterative"][: len(row)], scale=4),
        f"denoise_compare_{index}_t{t}_seed{seed}",
        key="a2_dl_row",
    )
    if text:
        st.caption(
            f"{label}, prompt “{prompt}”; seed {seed}; PSNR and SSIM against the clean image in [0, 1]."
        )
    else:
        st.caption(
            f"Digit #{index} (a {label}); seed {seed}; PSNR and SSIM against the clean digit in [0, 1]."
        )

st.subheader("The spec's three noise levels: t = 250, 500, 750")
st.markdown("Rows: noisy $x_t$, blur, one-step $\\hat x_0$, iterative. Same settings as above.")
levels = []
for level_t in (250, 500, 750):
    levels.append(
        controls.answer(
            cache.denoise,
            key,
            x_0,
            cond_label,
            level_t,
            seed,
            stride,
            kernel,
            blur,
            label=f"Denoising at t = {level_t}…",
        )
    )
    if levels[-1] is None:
        break
if all(r is not None for r in levels):
    rows = [[r.noisy for r in levels], [r.blurred for r in levels], [r.one_step for r in levels]]
    if all(r.iterative is not None for r in levels):
        rows.append([r.iterative for r in levels])
    ui.image(
        images.grid([img for row in rows for img in row], ncols=3, scale=max(3, sc - 2)),
        caption="columns: t = 250, 500, 750",
        download=f"denoise_levels_{index}_seed{seed}",
        key="a2_dl_levels",
    )

st.subheader("Inside the iterative loop: every 5th step")
if res.loop is None:
    st.caption(f"This pack holds no loop from t = {t}.")
else:
    ts = list(res.loop.times)
    st.markdown(f"From t = {t} down to 0 with stride {stride}: " + ", ".join(f"t = {s}" for s in ts) + ".")
    ui.image(
        images.labeled_row(list(res.loop.x[:, 0]), [f"t={s}" for s in ts], scale=sc // 2 + 1),
        download=f"iterative_steps_{index}_t{t}_seed{seed}",
        key="a2_dl_steps",
        alt=f"The iterative loop's image, left to right at t = {', '.join(map(str, ts))}: from noise "
        "to the denoised image",
    )

st.subheader("PSNR against t")
st.markdown(
    "Same digit and noise seed at each t; blur uses its best σ at every t. PSNR rewards "
    "being close on average, so a blurry guess can score well: look at the pictures too."
)
if backend.allowed("psnr_curve") is not None:
    st.caption("A precomputed pack holds no PSNR curve: it needs the model at every t.")
else:
    ui.default("a2_curve", not ui.presenter())
    if st.toggle("Compute the chart (runs the loop once per t)", key="a2_curve"):
        ts = (50, 150, 250, 400, 500, 690, 750, 900)
        curve = controls.answer(
            cache.psnr_curve, key, x_0, cond_label, seed, stride, ts, label="PSNR against t…"
        )
        ui.plot(figures.metric_vs_t_figure(ts, curve, "PSNR (dB)", mark_t=t), key="a2_psnr_vs_t")
