"""Classifier-free guidance (CS180 Part A1.6 and B2.5, Ho & Salimans 2022).

CS180 convention: eps = eps_u + gamma (eps_c - eps_u); gamma = 0 is unconditional, gamma = 1
conditional, gamma > 1 guided. (Papers that write (1 + w) eps_c - w eps_u use gamma = 1 + w.)
The same wrapper guides a DDPM noise estimate and a flow-matching velocity: guidance is a model
around a model (k-diffusion style), so every sampler gets it for free. Both branches run as one
batched call of size 2B: half the Python overhead of two calls and a better-filled matrix multiply.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def cfg_combine(cond_out: torch.Tensor, uncond_out: torch.Tensor, guidance: float) -> torch.Tensor:
    return uncond_out + guidance * (cond_out - uncond_out)


def expand_batch(cond: torch.Tensor, b: int) -> torch.Tensor:
    """A condition for one image (1, ...) repeated for a batch of ``b`` (a batch passes through)."""
    return cond if cond.shape[0] == b else cond[:1].expand(b, *cond.shape[1:])


class CFGModel:
    """Wrap ``model(x, t, cond)`` into a guided model with the same signature.

    Where the model also predicts a variance (DeepFloyd IF: [eps, v], twice the image's
    channels) only eps is guided; v is the conditional branch's, as in the CS180 reference loop.
    """

    def __init__(self, model: Callable, null_cond: torch.Tensor, guidance: float):
        if not 0 <= guidance < math.inf:  # also rejects NaN
            raise ValueError(f"CFG scale gamma must be a finite number >= 0, got {guidance}")
        self.model, self.null_cond, self.guidance = model, null_cond, guidance

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if cond is None:
            raise ValueError("classifier-free guidance needs a condition (a class or a prompt), got None")
        b, c = x.shape[0], x.shape[1]
        null = expand_batch(self.null_cond, b)
        out = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, null])).float()
        out_c, out_u = out[:b], out[b:]
        guided = cfg_combine(out_c[:, :c], out_u[:, :c], self.guidance)
        return guided if out.shape[1] == c else torch.cat([guided, out_c[:, c:]], dim=1)
