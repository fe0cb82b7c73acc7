"""The starter file a student downloads from the "Check your code" page: the checked functions'
signatures and docstrings, no bodies, and the globals the checker defines. ``starter_text()``
builds it from the contract (``engine.check.contract.FUNCTIONS``), so the two cannot drift.
"""

from __future__ import annotations

from .contract import FUNCTIONS

HEADER = '''"""My CS180 Project 5 functions, for the Diffusion Lab's "Check your code".

The checker defines these globals before this file runs, as the course's notebook does:
  stage_1        stage_1.unet(x, t, encoder_hidden_states=E, return_dict=False)[0] has 2C channels:
                 the noise estimate, then the variance channels (DeepFloyd IF's stage 1);
                 stage_1.scheduler.alphas_cumprod is the schedule
  alphas_cumprod a tensor of shape (1000,): abar_t
  add_variance   add_variance(predicted_variance, t, image): the course's helper
  device         where tensors live
Prompt embeddings are opaque tensors the checker passes in. Fill in the bodies; a function you
delete is reported as "missing". Check with: python -m engine check this_file.py
"""
import torch
import torchvision.transforms.functional as TF
'''

DETAILS = {
    "forward": (
        "im: (B, C, H, W) clean image in [-1, 1]; t: int timestep (0..999)",
        "im_noisy = sqrt(abar_t) im + sqrt(1 - abar_t) eps, eps ~ N(0, I) (Eq. A.2)",
    ),
    "iterative_denoise": (
        "im_noisy: the image at timesteps[i_start]; i_start: int; prompt_embeds: tensor; "
        "timesteps: the strided list 990, 960, ..., 0",
        "the image at t = 0: for i from i_start, t = timesteps[i], t' = timesteps[i + 1], "
        "Eq. A.3 with the noise estimate, then add_variance(predicted_variance, t, image)",
    ),
    "iterative_denoise_cfg": (
        "as iterative_denoise, plus uncond_prompt_embeds and the CFG scale",
        "the image at t = 0, with eps = eps_uncond + scale * (eps_cond - eps_uncond)",
    ),
    "visual_anagrams": (
        "im_noisy, i_start, the two prompts, the empty prompt, timesteps, scale",
        "an image that reads as prompt 1 upright and prompt 2 upside down: "
        "eps = (eps_1(x_t) + flip(eps_2(flip(x_t)))) / 2, flip = torch.flip(x, dims=[-2])",
    ),
    "make_hybrids": (
        "im_noisy, i_start, the two prompts, the empty prompt, timesteps, scale, Gaussian "
        "kernel_size and sigma",
        "a hybrid image: eps = lowpass(eps_1) + highpass(eps_2), lowpass a Gaussian blur, "
        "highpass(x) = x - lowpass(x)",
    ),
    "flow_matching_loss": (
        "unet(x_t, t) gives the velocity, t (B,) in [0, 1]; x1: data; x0: noise; t: (B,)",
        "a scalar tensor: mean of (unet(x_t, t) - (x1 - x0))^2 with x_t = (1 - t) x0 + t x1",
    ),
    "flow_sample": (
        "unet: the velocity net; x0: noise (B, C, H, W); num_ts: number of Euler steps",
        "x1: Euler steps x <- x + (1 / num_ts) unet(x, t) for t = 0, 1/num_ts, ..., (num_ts - 1)/num_ts",
    ),
}

MODEL = '''

def build_unet():
    """Optional (Part B): return your flow-matching nn.Module, forward(x, t) or, class-conditioned,
    forward(x, c, t) with c one-hot (B, 10). Upload its weights (safetensors, or a .pt state dict)
    with this file to have the lab sample and score it next to the shipped model."""
'''


def starter_text() -> str:
    parts = [HEADER]
    for f in FUNCTIONS:
        args, returns = DETAILS[f.name]
        parts.append(
            f'\n\ndef {f.signature}:\n    """{f.doc}\n\n    Args: {args}.\n    Returns: {returns}.\n    """\n'
        )
    return "".join(parts) + MODEL
