# ruff: noqa: F821  -- stage_1, alphas_cumprod, add_variance: globals the checker defines
# A correct Project 5 solution, written as a student would in the course's notebook.
# The checker defines stage_1, alphas_cumprod, add_variance and device before this file runs.
# tests/engine/test_check_catalogue.py plants each known mistake in a copy of it (the lines marked
# "# plant: NAME" are the ones a mutation rewrites).
import torch
import torchvision.transforms.functional as TF


def forward(im, t):
    with torch.no_grad():
        alpha_cumprod = alphas_cumprod[t]
        noise = torch.randn_like(im)
        im_noisy = torch.sqrt(alpha_cumprod) * im + torch.sqrt(1 - alpha_cumprod) * noise  # plant: forward
    return im_noisy


def denoise_step(image, noise_est, predicted_variance, t, prev_t):
    alpha_cumprod = alphas_cumprod[t]  # plant: abar_t
    alpha_cumprod_prev = alphas_cumprod[prev_t]  # plant: abar_prev
    alpha = alpha_cumprod / alpha_cumprod_prev
    beta = 1 - alpha
    x0 = (image - torch.sqrt(1 - alpha_cumprod) * noise_est) / torch.sqrt(alpha_cumprod)  # plant: x0
    pred_prev_image = (torch.sqrt(alpha_cumprod_prev) * beta / (1 - alpha_cumprod)) * x0 + (
        torch.sqrt(alpha) * (1 - alpha_cumprod_prev) / (1 - alpha_cumprod)
    ) * image
    pred_prev_image = add_variance(predicted_variance, t, pred_prev_image)  # plant: variance
    return pred_prev_image


def unet_eps(image, t, embeds):
    model_output = stage_1.unet(image, t, encoder_hidden_states=embeds, return_dict=False)[0]
    return torch.split(model_output, image.shape[1], dim=1)


def cfg_eps(image, t, cond, uncond, scale):
    noise_est, predicted_variance = unet_eps(image, t, cond)
    uncond_noise_est, _ = unet_eps(image, t, uncond)
    noise_est = uncond_noise_est + scale * (noise_est - uncond_noise_est)  # plant: cfg
    return noise_est, predicted_variance


def iterative_denoise(im_noisy, i_start, prompt_embeds, timesteps, display=True):
    image = im_noisy
    with torch.no_grad():
        for i in range(i_start, len(timesteps) - 1):  # plant: loop
            t = timesteps[i]
            prev_t = timesteps[i + 1]
            noise_est, predicted_variance = unet_eps(image, t, prompt_embeds)  # plant: net_t
            image = denoise_step(image, noise_est, predicted_variance, t, prev_t)
    return image.cpu().detach().numpy()


def iterative_denoise_cfg(
    im_noisy, i_start, prompt_embeds, uncond_prompt_embeds, timesteps, scale=7, display=True
):
    image = im_noisy
    with torch.no_grad():
        for i in range(i_start, len(timesteps) - 1):  # plant: loop
            t = timesteps[i]
            prev_t = timesteps[i + 1]
            eps, var = cfg_eps(image, t, prompt_embeds, uncond_prompt_embeds, scale)  # plant: net_t
            noise_est, predicted_variance = eps, var
            image = denoise_step(image, noise_est, predicted_variance, t, prev_t)
    return image


def visual_anagrams(
    im_noisy, i_start, prompt_embeds_1, prompt_embeds_2, uncond_prompt_embeds, timesteps, scale=7
):
    image = im_noisy
    with torch.no_grad():
        for i in range(i_start, len(timesteps) - 1):  # plant: loop
            t = timesteps[i]
            prev_t = timesteps[i + 1]
            eps_1, var_1 = cfg_eps(image, t, prompt_embeds_1, uncond_prompt_embeds, scale)  # plant: net_t
            flipped = torch.flip(image, dims=[-2])  # plant: flip_view
            eps_2, _ = cfg_eps(flipped, t, prompt_embeds_2, uncond_prompt_embeds, scale)  # plant: net_t
            eps_2 = torch.flip(eps_2, dims=[-2])  # plant: flip_back
            noise_est = (eps_1 + eps_2) / 2
            image = denoise_step(image, noise_est, var_1, t, prev_t)
    return image


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
    with torch.no_grad():
        for i in range(i_start, len(timesteps) - 1):  # plant: loop
            t = timesteps[i]
            prev_t = timesteps[i + 1]
            eps_1, var_1 = cfg_eps(image, t, prompt_embeds_1, uncond_prompt_embeds, scale)  # plant: net_t
            eps_2, _ = cfg_eps(image, t, prompt_embeds_2, uncond_prompt_embeds, scale)  # plant: net_t
            low = TF.gaussian_blur(eps_1, kernel_size, sigma)  # plant: low
            high = eps_2 - TF.gaussian_blur(eps_2, kernel_size, sigma)  # plant: high
            image = denoise_step(image, low + high, var_1, t, prev_t)
    return image


def flow_matching_loss(unet, x1, x0, t):
    tb = t.view(-1, 1, 1, 1)
    x_t = (1 - tb) * x0 + tb * x1  # plant: path
    target = x1 - x0  # plant: target
    pred = unet(x_t, t)  # plant: input
    return torch.nn.functional.mse_loss(pred, target)


def flow_sample(unet, x0, num_ts=300):
    x = x0
    dt = 1.0 / num_ts  # plant: dt
    with torch.no_grad():
        for i in range(num_ts):
            t = torch.full((x.shape[0],), i / num_ts)  # plant: time
            x = x + dt * unet(x, t)  # plant: step
    return x
