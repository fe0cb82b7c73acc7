# ruff: noqa: F821  -- stage_1, alphas_cumprod, add_variance: globals the checker defines
# A correct solution in another style: everything here is allowed by the course and must pass.
# t as tensors, CFG batched in one call, the unconditional or the other prompt's variance, a
# clipped x0_hat, a zero-padded blur, a mean-reduced loss, a float t for the flow net, a clamp.
import math

import torch
import torch.nn.functional as F


def forward(im, t):
    t = torch.as_tensor(t)
    abar = alphas_cumprod[t].to(im.device)
    return abar.sqrt() * im + (1 - abar).sqrt() * torch.randn(im.shape, device=im.device)


def step(image, eps, var, t, prev_t, clip=True):
    a_t, a_prev = alphas_cumprod[t], alphas_cumprod[prev_t]
    alpha = a_t / a_prev
    x0 = (image - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    if clip:
        x0 = x0.clamp(-1, 1)
    mean = a_prev.sqrt() * (1 - alpha) / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_prev) / (1 - a_t) * image
    return add_variance(var, t, mean)


def guided(image, t, cond, uncond, scale):
    out = stage_1.unet(
        torch.cat([image, image]),
        torch.tensor([t, t]),
        encoder_hidden_states=torch.cat([cond, uncond]),
        return_dict=False,
    )[0]
    eps, var = out.split(image.shape[1], dim=1)
    eps_c, eps_u = eps.chunk(2)
    var_c, var_u = var.chunk(2)
    return eps_u + scale * (eps_c - eps_u), var_c, var_u


def iterative_denoise(im_noisy, i_start, prompt_embeds, timesteps, display=False):
    image = im_noisy
    for i in range(i_start, len(timesteps) - 1):
        t, prev_t = timesteps[i], timesteps[i + 1]
        out = stage_1.unet(image, torch.tensor([t]), encoder_hidden_states=prompt_embeds).sample
        eps, var = out[:, : image.shape[1]], out[:, image.shape[1] :]
        image = step(image, eps, var, t, prev_t, clip=False)
    return image


def iterative_denoise_cfg(
    im_noisy, i_start, prompt_embeds, uncond_prompt_embeds, timesteps, scale=7, display=False
):
    image = im_noisy
    for i in range(i_start, len(timesteps) - 1):
        t, prev_t = timesteps[i], timesteps[i + 1]
        eps, _, var_u = guided(image, t, prompt_embeds, uncond_prompt_embeds, scale)
        image = step(image, eps, var_u, t, prev_t)
    return image.numpy()


def visual_anagrams(
    im_noisy, i_start, prompt_embeds_1, prompt_embeds_2, uncond_prompt_embeds, timesteps, scale=7
):
    image = im_noisy
    for i in range(i_start, len(timesteps) - 1):
        t, prev_t = timesteps[i], timesteps[i + 1]
        eps_1, _, _ = guided(image, t, prompt_embeds_1, uncond_prompt_embeds, scale)
        eps_2, var_2, _ = guided(image.flip(-2), t, prompt_embeds_2, uncond_prompt_embeds, scale)
        image = step(image, (eps_1 + eps_2.flip(-2)) / 2, var_2.flip(-2), t, prev_t)
    return image


def blur(x, kernel_size, sigma):
    r = torch.arange(kernel_size, dtype=x.dtype) - (kernel_size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).expand(x.shape[1], 1, kernel_size, kernel_size)
    return F.conv2d(x, k, padding=kernel_size // 2, groups=x.shape[1])


def make_hybrids(
    im_noisy,
    i_start,
    prompt_embeds_1,
    prompt_embeds_2,
    uncond_prompt_embeds,
    timesteps,
    scale=7,
    kernel_size=33,
    sigma=2,
):
    image = im_noisy
    for i in range(i_start, len(timesteps) - 1):
        t, prev_t = timesteps[i], timesteps[i + 1]
        eps_1, var_1, _ = guided(image, t, prompt_embeds_1, uncond_prompt_embeds, scale)
        eps_2, var_2, _ = guided(image, t, prompt_embeds_2, uncond_prompt_embeds, scale)
        eps = blur(eps_1, kernel_size, sigma) + eps_2 - blur(eps_2, kernel_size, sigma)
        image = step(image, eps, (var_1 + var_2) / 2, t, prev_t)
    return image


def flow_matching_loss(unet, x1, x0, t):
    tb = t[:, None, None, None]
    x_t = x0 + tb * (x1 - x0)
    per_image = ((unet(x_t, tb) - (x1 - x0)) ** 2).mean(dim=(1, 2, 3))
    return per_image.mean().reshape(1)


def flow_sample(unet, x0, num_ts=300):
    x = x0.clone()
    for i in range(num_ts):
        x += unet(x, i / num_ts) / num_ts
    return x.clamp(0, 1) if math.isfinite(num_ts) else x
