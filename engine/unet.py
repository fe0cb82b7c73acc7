"""The CS180 Project 5 Part B UNets for 28x28 MNIST.

Building blocks (Part B, Fig. 1-3): Conv, DownConv, UpConv, Flatten (AvgPool 7 -> 1x1),
Unflatten (1x1 -> 7x7), ConvBlock, DownBlock, UpBlock, FCBlock. Three networks share one body:

- ``UnconditionalUNet(in_channels, num_hiddens)``: the single-step denoiser D(z) ~ x (Part B1).
- ``TimeConditionalUNet``: u(x_t, t) with t in [0, 1] (Part B2.1); ``unflatten * t1``,
  ``up1 * t2`` where t1, t2 are FCBlock embeddings of t.
- ``ClassConditionalUNet``: u(x_t, t, c) with one-hot c (Part B2.4);
  ``unflatten = c1 * unflatten + t1``, ``up1 = c2 * up1 + t2``. A zero c vector is the
  unconditional branch used for classifier-free guidance.

Shapes: x (B, C, 28, 28); t (B,) or (B, 1) float; c (B, num_classes) float.
"""

from __future__ import annotations

import torch
from torch import nn


class Conv(nn.Sequential):
    """3x3 conv that keeps the resolution, then BatchNorm and GELU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
        )


class DownConv(nn.Sequential):
    """3x3 conv with stride 2: halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, 2, 1),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
        )


class UpConv(nn.Sequential):
    """4x4 transposed conv with stride 2: doubles the resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
        )


class Flatten(nn.Sequential):
    """7x7 -> 1x1 by average pooling."""

    def __init__(self):
        super().__init__(nn.AvgPool2d(7), nn.GELU())


class Unflatten(nn.Sequential):
    """1x1 -> 7x7 by a 7x7 transposed conv."""

    def __init__(self, in_channels: int):
        super().__init__(
            nn.ConvTranspose2d(in_channels, in_channels, 7, 7, 0),
            nn.BatchNorm2d(in_channels),
            nn.GELU(),
        )


class ConvBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(Conv(in_channels, out_channels), Conv(out_channels, out_channels))


class DownBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(DownConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))


class UpBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(UpConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))


class FCBlock(nn.Sequential):
    """Linear -> GELU -> Linear: embeds t or c into a per-channel vector."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Linear(in_channels, out_channels),
            nn.GELU(),
            nn.Linear(out_channels, out_channels),
        )


class _UNetBody(nn.Module):
    """Encoder/decoder shared by all three networks; ``modulate`` hooks inject conditioning."""

    def __init__(self, in_channels: int, num_hiddens: int):
        super().__init__()
        d = num_hiddens
        self.in_channels = in_channels
        self.num_hiddens = d
        self.conv_in = ConvBlock(in_channels, d)  # (d, 28, 28)
        self.down1 = DownBlock(d, d)  # (d, 14, 14)
        self.down2 = DownBlock(d, 2 * d)  # (2d, 7, 7)
        self.flatten = Flatten()  # (2d, 1, 1)
        self.unflatten = Unflatten(2 * d)  # (2d, 7, 7)
        self.up1 = UpBlock(4 * d, d)  # (d, 14, 14)
        self.up2 = UpBlock(2 * d, d)  # (d, 28, 28)
        self.conv_out = ConvBlock(2 * d, d)
        self.head = nn.Conv2d(d, in_channels, 3, 1, 1)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[-2:] != (28, 28):
            raise ValueError(
                f"expected x of shape (B, {self.in_channels}, 28, 28), got {tuple(x.shape)}"
            )

    def body(self, x: torch.Tensor, mod1=None, mod2=None) -> torch.Tensor:
        self._check(x)
        h0 = self.conv_in(x)
        h1 = self.down1(h0)
        h2 = self.down2(h1)
        u = self.unflatten(self.flatten(h2))
        if mod1 is not None:
            u = mod1(u)
        u1 = self.up1(torch.cat([u, h2], dim=1))
        if mod2 is not None:
            u1 = mod2(u1)
        u2 = self.up2(torch.cat([u1, h1], dim=1))
        return self.head(self.conv_out(torch.cat([u2, h0], dim=1)))


def _as_column(t: torch.Tensor, batch: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=dtype)
    if t.ndim == 0:
        t = t.expand(batch)
    t = t.reshape(-1, 1)
    if t.shape[0] != batch:
        raise ValueError(f"expected {batch} time values, got {t.shape[0]}")
    return t


def _channels(v: torch.Tensor) -> torch.Tensor:
    return v[:, :, None, None]


class UnconditionalUNet(_UNetBody):
    """D(z) for z = x + sigma * eps (Part B1.2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TimeConditionalUNet(_UNetBody):
    """u_theta(x_t, t), t in [0, 1] (Part B2.1)."""

    def __init__(self, in_channels: int, num_hiddens: int):
        super().__init__(in_channels, num_hiddens)
        self.fc1_t = FCBlock(1, 2 * num_hiddens)
        self.fc2_t = FCBlock(1, num_hiddens)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = _as_column(t, x.shape[0], x.dtype).to(x.device)
        t1, t2 = _channels(self.fc1_t(t)), _channels(self.fc2_t(t))
        return self.body(x, lambda u: u * t1, lambda u: u * t2)


class ClassConditionalUNet(_UNetBody):
    """u_theta(x_t, t, c) with one-hot c; c = 0 is "no class" (Part B2.4)."""

    def __init__(self, in_channels: int, num_classes: int, num_hiddens: int):
        super().__init__(in_channels, num_hiddens)
        self.num_classes = num_classes
        self.fc1_t = FCBlock(1, 2 * num_hiddens)
        self.fc2_t = FCBlock(1, num_hiddens)
        self.fc1_c = FCBlock(num_classes, 2 * num_hiddens)
        self.fc2_c = FCBlock(num_classes, num_hiddens)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        t = _as_column(t, x.shape[0], x.dtype).to(x.device)
        if c.shape != (x.shape[0], self.num_classes):
            raise ValueError(
                f"expected c of shape ({x.shape[0]}, {self.num_classes}), got {tuple(c.shape)}"
            )
        c = c.to(dtype=t.dtype, device=x.device)
        t1, t2 = _channels(self.fc1_t(t)), _channels(self.fc2_t(t))
        c1, c2 = _channels(self.fc1_c(c)), _channels(self.fc2_c(c))
        return self.body(x, lambda u: c1 * u + t1, lambda u: c2 * u + t2)


def one_hot(labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Labels (B,) int -> (B, num_classes) float; label -1 means "no class" (all zeros)."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.numel() and (labels.max() >= num_classes or labels.min() < -1):
        raise ValueError(f"labels must be in [-1, {num_classes - 1}], got {labels.tolist()}")
    out = torch.zeros(labels.shape[0], num_classes)
    keep = labels >= 0
    out[keep] = nn.functional.one_hot(labels[keep], num_classes).float()
    return out


def inference_copy(net: nn.Module, dtype: torch.dtype | None = None) -> nn.Module:
    """A frozen copy of ``net`` for sampling: eval mode, every BatchNorm folded into the
    (transposed) convolution before it, weights cast to ``dtype`` (e.g. bf16; None keeps fp32).

    Measured on this 2-core CPU (D=64 class UNet, batch 80, idle machine): fp32 291 ms, bf16
    autocast 137 ms, folded bf16 weights 127 ms. Folding saves the BatchNorm passes; bf16
    weights save autocast's per-call weight casts. Inputs must then be given in ``dtype``."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    out = copy.deepcopy(net).eval()
    for module in out.modules():
        names = list(module._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = module._modules[a], module._modules[b]
            if isinstance(bn, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
                transposed = isinstance(conv, nn.ConvTranspose2d)
                module._modules[a] = fuse_conv_bn_eval(conv, bn, transpose=transposed)
                module._modules[b] = nn.Identity()
    out.requires_grad_(False)
    return out.to(dtype) if dtype is not None else out
