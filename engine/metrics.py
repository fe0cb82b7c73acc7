"""Image-quality metrics: MSE, PSNR (torch) and SSIM (scikit-image's implementation).

All take images of the same shape (B, C, H, W) or (C, H, W); ``data_range`` is max - min of the
value range the images live in (1 for [0, 1], 2 for [-1, 1]).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    _check(a, b)
    return float(((a.float() - b.float()) ** 2).mean())


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """10 log10(range^2 / MSE) in dB, over the whole batch; inf for identical images."""
    m = mse(a, b)
    if m == 0:
        return math.inf
    return 10 * math.log10(data_range**2 / m)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM over the batch (Wang et al. 2004, Gaussian-free 7x7 window as in skimage)."""
    from skimage.metrics import structural_similarity

    _check(a, b)
    a4 = a.detach().float().cpu().reshape(-1, *a.shape[-3:]).numpy()
    b4 = b.detach().float().cpu().reshape(-1, *b.shape[-3:]).numpy()
    scores = [
        structural_similarity(x, y, data_range=data_range, channel_axis=0)
        for x, y in zip(a4, b4, strict=True)
    ]
    return float(np.mean(scores))
