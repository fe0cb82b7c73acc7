"""The reference implementations, written as in the course's notebook, with switches for the
known mistakes (``engine.check.mutations`` names them).

They run on the same globals a student's file gets (``env.stage_1``, ``env.alphas_cumprod``,
``env.add_variance``), so the comparison is like for like: same network calls, same float32
schedule, same variance noise. ``tests/engine/test_check_reference.py`` checks that the correct
``Variant()`` agrees with the engine's own maths (``engine.denoise.ddpm_step``, ``CFGModel``,
``AnagramModel``, ``HybridModel``, ``engine.flow``).

DDPM (Part A): x_0 clean, t counts down on ``timesteps`` (990, 960, ..., 0), Eq. A.3:
    x_t' = sqrt(abar_t') beta / (1 - abar_t) x0_hat + sqrt(alpha) (1 - abar_t') / (1 - abar_t) x_t + v
with alpha = abar_t / abar_t', beta = 1 - alpha. Flow matching (Part B): x0 noise, x1 data,
x_t = (1 - t) x0 + t x1, Euler from t = 0 to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .contract import FLIP_DIMS, HYBRID_KERNEL, HYBRID_SIGMA


@dataclass(frozen=True)
class Variant:
    """One implementation: the course's with every field at its default, else one known mistake
    (or an accepted alternative). Fields are grouped by the function they touch."""

    # forward: the coefficients of x_0 and eps
    fwd_signal: str = "sqrt"  # "sqrt": sqrt(abar) | "abar" | "noise-coef" (sqrt(1 - abar))
    fwd_noise: str = "sqrt"  # "sqrt": sqrt(1 - abar) | "linear": 1 - abar | "signal-coef" (sqrt(abar))
    # the DDPM loop
    net_t: str = "t"  # "t" | "t-prev": the network is asked at t'
    loop: str = "course"  # "course" | "skip-first" | "stop-early"
    t_swapped: bool = False  # abar_t and abar_t' exchanged
    variance: bool = True  # add_variance applied
    x0_sqrt: bool = True  # x0_hat = (x_t - sqrt(1 - abar) eps) / sqrt(abar); False: without the roots
    clip_x0: bool = False  # x0_hat clamped to [-1, 1] (accepted)
    # guidance, and which branch's variance (cfg: cond/uncond; anagram, hybrid: prompt 1/2)
    cfg: str = "course"  # "course" | "reversed" | "base-cond" | "no-base" | "scale-cond"
    variance_from: str = "first"  # "first" | "second" | "second-raw" (anagram, not flipped) | "mean"
    # anagram
    flip_back: bool = True
    flip_dims: tuple[int, ...] = FLIP_DIMS
    # hybrid
    bands_swapped: bool = False
    blur: str = "reflect"  # "reflect" (torchvision's gaussian_blur) | "zeros" (a zero-padded conv)
    # flow-matching loss
    net_input: str = "x_t"  # "x_t" | "x1"
    target: str = "x1-x0"  # "x1-x0" | "x0-x1"
    path: str = "course"  # "course": (1 - t) x0 + t x1 | "reversed": t x0 + (1 - t) x1
    # Euler sampler
    times: str = "course"  # "course": i / n | "reversed": 1 - i / n | "end": (i + 1) / n | "linspace"
    step: str = "course"  # "course": x + u / n | "one": x + u | "minus": x - u / n
    clamp: bool = False  # the sample clamped to [0, 1] (accepted)


CORRECT = Variant()


# ----------------------------------------------------------------------------- A1.1 forward


def forward_coefficients(abar, v: Variant = CORRECT):
    """(coefficient of x_0, coefficient of eps) of ``v``'s forward process at abar_t."""
    abar = torch.as_tensor(abar, dtype=torch.float64)
    sig = {"sqrt": abar.sqrt(), "abar": abar, "noise-coef": (1 - abar).sqrt()}[v.fwd_signal]
    noise = {"sqrt": (1 - abar).sqrt(), "linear": 1 - abar, "signal-coef": abar.sqrt()}[v.fwd_noise]
    return float(sig), float(noise)


def forward(env, v: Variant, im, t, generator=None):
    """im_noisy = sqrt(abar_t) im + sqrt(1 - abar_t) eps (Eq. A.2)."""
    a, b = forward_coefficients(env.alphas_cumprod[t], v)
    return a * im + b * torch.randn(im.shape, generator=generator, dtype=im.dtype)


# ----------------------------------------------------------------------------- A1.4-A1.9 loops


def estimate(env, image, t, prompt_embeds):
    """The notebook's call: noise estimate and variance channels."""
    out = env.stage_1.unet(image, t, encoder_hidden_states=prompt_embeds, return_dict=False)[0]
    return torch.split(out, image.shape[1], dim=1)


def guided(env, v: Variant, image, t, cond, uncond, scale):
    """CFG (A1.6): eps = eps_u + scale (eps_c - eps_u); the conditional branch's variance."""
    eps_c, var_c = estimate(env, image, t, cond)
    eps_u, var_u = estimate(env, image, t, uncond)
    eps = {
        "course": lambda: eps_u + scale * (eps_c - eps_u),
        "reversed": lambda: eps_c + scale * (eps_u - eps_c),
        "base-cond": lambda: eps_c + scale * (eps_c - eps_u),
        "no-base": lambda: scale * (eps_c - eps_u),
        "scale-cond": lambda: eps_u + scale * eps_c,
    }[v.cfg]()
    return eps, var_c, var_u


def ddpm_loop(env, v: Variant, im_noisy, i_start, timesteps, noise_fn):
    """The course's loop (A1.4): from timesteps[i_start] down to 0; ``noise_fn(image, t)`` gives
    (noise estimate, predicted variance)."""
    image = im_noisy
    ac = env.alphas_cumprod
    first = i_start + (v.loop == "skip-first")
    last = len(timesteps) - 1 - (v.loop == "stop-early")
    for i in range(first, last):
        t, prev_t = timesteps[i], timesteps[i + 1]
        # 1. abar at t and t', alpha and beta of the strided step
        a_t, a_prev = (ac[prev_t], ac[t]) if v.t_swapped else (ac[t], ac[prev_t])
        alpha = a_t / a_prev
        beta = 1 - alpha
        # 2. noise and variance estimate
        noise_est, predicted_variance = noise_fn(image, prev_t if v.net_t == "t-prev" else t)
        # 3. clean estimate (Eq. A.2 solved for x_0)
        if v.x0_sqrt:
            x0 = (image - torch.sqrt(1 - a_t) * noise_est) / torch.sqrt(a_t)
        else:
            x0 = (image - (1 - a_t) * noise_est) / a_t
        if v.clip_x0:
            x0 = x0.clamp(-1, 1)
        # 4. the posterior mean (Eq. A.3), then its noise
        image_prev = (torch.sqrt(a_prev) * beta / (1 - a_t)) * x0 + (
            torch.sqrt(alpha) * (1 - a_prev) / (1 - a_t)
        ) * image
        if v.variance:
            image_prev = env.add_variance(predicted_variance, t, image_prev)
        image = image_prev
    return image


def iterative_denoise(env, v, im_noisy, i_start, prompt_embeds, timesteps, display=False):
    return ddpm_loop(env, v, im_noisy, i_start, timesteps, lambda x, t: estimate(env, x, t, prompt_embeds))


def iterative_denoise_cfg(
    env, v, im_noisy, i_start, prompt_embeds, uncond_prompt_embeds, timesteps, scale, display=False
):
    def noise_fn(x, t):
        eps, var_c, var_u = guided(env, v, x, t, prompt_embeds, uncond_prompt_embeds, scale)
        return eps, var_u if v.variance_from == "second" else var_c

    return ddpm_loop(env, v, im_noisy, i_start, timesteps, noise_fn)


def visual_anagrams(
    env, v, im_noisy, i_start, prompt_embeds_1, prompt_embeds_2, uncond_prompt_embeds, timesteps, scale
):
    """A1.8: eps = (eps_1(x) + flip(eps_2(flip(x)))) / 2, flip upside down."""

    def flip(x):
        return torch.flip(x, dims=list(v.flip_dims))

    def noise_fn(x, t):
        eps_1, var_1, _ = guided(env, v, x, t, prompt_embeds_1, uncond_prompt_embeds, scale)
        eps_2, var_2, _ = guided(env, v, flip(x), t, prompt_embeds_2, uncond_prompt_embeds, scale)
        eps = (eps_1 + (flip(eps_2) if v.flip_back else eps_2)) / 2
        var = {"first": var_1, "second": flip(var_2), "second-raw": var_2, "mean": (var_1 + flip(var_2)) / 2}[
            v.variance_from
        ]
        return eps, var

    return ddpm_loop(env, v, im_noisy, i_start, timesteps, noise_fn)


def make_hybrids(
    env,
    v,
    im_noisy,
    i_start,
    prompt_embeds_1,
    prompt_embeds_2,
    uncond_prompt_embeds,
    timesteps,
    scale,
    kernel_size=HYBRID_KERNEL,
    sigma=HYBRID_SIGMA,
):
    """A1.9: eps = lowpass(eps_1) + highpass(eps_2), highpass = x - lowpass(x)."""

    def lowpass(x):
        return gaussian_blur(x, kernel_size, sigma, v.blur)

    def noise_fn(x, t):
        eps_1, var_1, _ = guided(env, v, x, t, prompt_embeds_1, uncond_prompt_embeds, scale)
        eps_2, var_2, _ = guided(env, v, x, t, prompt_embeds_2, uncond_prompt_embeds, scale)
        if v.bands_swapped:
            eps_1, eps_2 = eps_2, eps_1
        eps = lowpass(eps_1) + (eps_2 - lowpass(eps_2))
        var = {"first": var_1, "second": var_2, "mean": (var_1 + var_2) / 2}[v.variance_from]
        return eps, var

    return ddpm_loop(env, v, im_noisy, i_start, timesteps, noise_fn)


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: float, padding: str = "reflect") -> torch.Tensor:
    """torchvision's ``gaussian_blur`` (same kernel, reflect padding), or zero padding."""
    half = (kernel_size - 1) * 0.5
    pdf = torch.exp(-0.5 * (torch.linspace(-half, half, kernel_size) / sigma) ** 2)
    k1 = pdf / pdf.sum()
    kernel = (k1[:, None] * k1[None, :]).to(x.dtype).expand(x.shape[1], 1, kernel_size, kernel_size)
    pad = kernel_size // 2
    if padding == "reflect":
        x = torch.nn.functional.pad(x, [pad] * 4, mode="reflect")
        pad = 0
    return torch.nn.functional.conv2d(x, kernel, padding=pad, groups=x.shape[1])


# ----------------------------------------------------------------------------- B2 flow matching


def flow_matching_loss(env, v, unet, x1, x0, t):
    """B2.1: mean (u(x_t, t) - (x1 - x0))^2 with x_t = (1 - t) x0 + t x1."""
    tb = t.view(-1, 1, 1, 1)
    x_t = (1 - tb) * x0 + tb * x1 if v.path == "course" else tb * x0 + (1 - tb) * x1
    target = x1 - x0 if v.target == "x1-x0" else x0 - x1
    pred = unet(x1 if v.net_input == "x1" else x_t, t)
    return ((pred - target) ** 2).mean()


def flow_sample(env, v, unet, x0, num_ts):
    """B2.2: Euler from t = 0 to 1, x <- x + (1 / num_ts) u(x, t), t = i / num_ts."""
    x = x0
    for i in range(num_ts):
        t = {
            "course": i / num_ts,
            "reversed": 1 - i / num_ts,
            "end": (i + 1) / num_ts,
            "linspace": i / max(num_ts - 1, 1),
        }[v.times]
        u = unet(x, torch.full((x.shape[0],), t))
        if v.step == "one":
            x = x + u
        elif v.step == "minus":
            x = x - u / num_ts
        else:
            x = x + u / num_ts
    return x.clamp(0, 1) if v.clamp else x


IMPLEMENTATIONS = {
    "forward": forward,
    "iterative_denoise": iterative_denoise,
    "iterative_denoise_cfg": iterative_denoise_cfg,
    "visual_anagrams": visual_anagrams,
    "make_hybrids": make_hybrids,
    "flow_matching_loss": flow_matching_loss,
    "flow_sample": flow_sample,
}
