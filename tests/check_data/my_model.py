# A student's Part B model: a small class-conditioned UNet-like net (the checker calls build_unet()).
import torch
from torch import nn


class TinyClassUNet(nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.inp = nn.Conv2d(1, hidden, 3, padding=1)
        self.out = nn.Conv2d(hidden, 1, 3, padding=1)
        self.t_emb = nn.Linear(1, hidden)
        self.c_emb = nn.Linear(10, hidden)

    def forward(self, x, c, t):  # the course's order: x, c, t
        h = self.inp(x) + (self.t_emb(t.view(-1, 1)) + self.c_emb(c))[:, :, None, None]
        return self.out(torch.relu(h))


def build_unet():
    return TinyClassUNet()
