"""The models a check runs on, dressed as the course's notebook sees them.

``stage_1`` behaves like DeepFloyd IF's stage 1 as the notebook uses it:
``stage_1.unet(x, t, encoder_hidden_states=E, return_dict=False)[0]`` has 2C channels (the noise
estimate, then the learned-variance channels, diffusers' "learned_range" in [-1, 1]) and
``stage_1.scheduler.alphas_cumprod`` is the schedule (float32, (1000,)). Behind it:

- ``builtin``: the lab's ``ddpm-class`` (eps-prediction on [-1, 1], 1x28x28, class conditioned).
  It predicts no variance, so its variance channels are 0 (halfway between beta_t and the
  posterior variance in log space). Prompt embeddings are opaque (1, 8, 16) tensors: an
  orthonormal code per digit class and one for the empty prompt, decoded linearly into the
  model's one-hot condition (so ``torch.cat`` of two embeddings works as with IF).
  The flow functions get ``flow-time`` (u(x_t, t), t (B,) in [0, 1]).
- ``tiny``: small random IF-layout nets (3x24x24 for Part A, real variance channels), for tests.

Both sides of a check (the student's sandboxed process and the checker) build the same ``Lab``
from its ``LabSpec``, and record every network call (t, x) for the divergence report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..schedule import Schedule

EMBED_SHAPE = (8, 16)  # an opaque "prompt embedding": (1, 8, 16) per prompt
UNCOND = 10  # the empty prompt's code (digit classes are 0-9)


@dataclass(frozen=True)
class LabSpec:
    """How to build a ``Lab``: JSON-able, sent to the sandboxed process."""

    kind: str = "builtin"  # "builtin" | "tiny"
    root: str | None = None  # models folder (None: cache/models)
    ddpm: str = "ddpm-class"
    flow: str = "flow-time"
    seed: int = 0  # the tiny nets' weights

    def to_dict(self) -> dict:
        return {"kind": self.kind, "root": self.root, "ddpm": self.ddpm, "flow": self.flow, "seed": self.seed}


class PromptBook:
    """Opaque prompt embeddings: ``encode(label)`` (1, 8, 16), ``decode(E)`` -> (B, 11) codes."""

    def __init__(self, seed: int = 1234):
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(math.prod(EMBED_SHAPE), UNCOND + 1, generator=g))
        self.basis = q.T.contiguous()  # (11, 128), orthonormal rows

    def encode(self, label: int) -> torch.Tensor:
        return self.basis[label].reshape(1, *EMBED_SHAPE).clone()

    def decode(self, e: torch.Tensor) -> torch.Tensor:
        return e.float().flatten(1) @ self.basis.T


@torch.no_grad()
def _seeded(net: nn.Module, seed: int) -> None:
    """Weights drawn from a generator of their own (never the process-global seed)."""
    g = torch.Generator().manual_seed(seed)
    for p in net.parameters():
        fan_in = math.prod(p.shape[1:]) if p.ndim > 1 else 10
        p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))


class TinyIFUNet(nn.Module):
    """A small random net with IF's output layout (eps, variance in [-1, 1]), for tests."""

    def __init__(self, channels: int = 3, hidden: int = 8, seed: int = 0):
        super().__init__()
        self.c = channels
        self.inp = nn.Conv2d(channels, hidden, 3, padding=1)
        self.out = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        self.cond = nn.Linear(UNCOND + 1, hidden)
        self.time = nn.Linear(2, hidden)
        _seeded(self, seed)

    def forward(self, x, t, codes):
        s = t.float()[:, None] / 1000
        h = self.inp(x) + (self.cond(codes) + self.time(torch.cat([s.sin(), s.cos()], 1)))[:, :, None, None]
        eps, v = self.out(torch.tanh(h)).split(self.c, 1)
        return torch.cat([eps + 0.5 * x, torch.tanh(v)], 1)


class TinyVelocity(nn.Module):
    """A small random u(x_t, t) for tests."""

    def __init__(self, channels: int = 1, hidden: int = 8, seed: int = 1):
        super().__init__()
        self.inp = nn.Conv2d(channels, hidden, 3, padding=1)
        self.out = nn.Conv2d(hidden, channels, 3, padding=1)
        self.time = nn.Linear(1, hidden)
        _seeded(self, seed)

    def forward(self, x, t):
        return self.out(torch.tanh(self.inp(x) + self.time(t.float()[:, None])[:, :, None, None]))


@dataclass
class Recorder:
    """Every network call: (t as a float, x as float32 numpy)."""

    calls: list = field(default_factory=list)

    def add(self, t: float, x: torch.Tensor) -> None:
        self.calls.append((float(t), x.detach().float().cpu().numpy().copy()))


def _timesteps(t, batch: int, floating: bool) -> torch.Tensor:
    """An int, a float, a 0-dim or (1,) tensor, or one value per image -> (B,) tensor."""
    t = torch.as_tensor(t).detach().cpu().flatten()
    if t.numel() == 1:
        t = t.expand(batch)
    elif t.numel() != batch:
        raise ValueError(
            f"got {t.numel()} timesteps for a batch of {batch} images: give one t, or one per image"
        )
    return t.float() if floating else t.round().long()


class _Output(tuple):
    """What ``return_dict=True`` gives in diffusers: indexable, and with ``.sample``."""

    @property
    def sample(self):
        return self[0]


class Stage1UNet:
    """``stage_1.unet``: IF's call shape on the lab's noise model; records every call."""

    def __init__(self, lab: Lab, recorder: Recorder):
        self.lab, self.recorder = lab, recorder
        self.dtype, self.device = torch.float32, torch.device("cpu")

    def __call__(self, sample, timestep, encoder_hidden_states=None, return_dict=True, **_ignored):
        x = torch.as_tensor(sample)
        c = self.lab.image_shape[0]
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"stage_1.unet takes images (B, {c}, H, W); got shape {tuple(x.shape)}")
        if encoder_hidden_states is None:
            raise ValueError("stage_1.unet needs encoder_hidden_states (the prompt embeddings)")
        e = torch.as_tensor(encoder_hidden_states)
        if e.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"{e.shape[0]} prompt embeddings for a batch of {x.shape[0]} images")
        t = _timesteps(timestep, x.shape[0], floating=False)
        self.recorder.add(t[0], x)
        with torch.no_grad():
            out = self.lab.eps_model(x.float(), t, e.float().expand(x.shape[0], *e.shape[1:]))
        out = out.to(x.dtype)
        return _Output((out,)) if return_dict else (out,)


class Scheduler:
    def __init__(self, alphas_cumprod: torch.Tensor):
        self.alphas_cumprod = alphas_cumprod.clone()
        self.config = {"num_train_timesteps": alphas_cumprod.shape[0], "variance_type": "learned_range"}


class Stage1:
    """``stage_1``: ``.unet`` and ``.scheduler`` as the notebook uses them."""

    def __init__(self, lab: Lab, recorder: Recorder):
        self.unet, self.scheduler = Stage1UNet(lab, recorder), Scheduler(lab.alphas_cumprod)
        self.device = torch.device("cpu")


class FlowUNet(nn.Module):
    """The ``unet`` the flow functions receive: ``unet(x_t, t)``, t (B,) in [0, 1] (a float or
    a (B, 1, 1, 1) tensor works too); records every call."""

    def __init__(self, lab: Lab, recorder: Recorder):
        super().__init__()
        self.net, self._lab, self._recorder = lab.flow_net, lab, recorder

    def forward(self, x, t):
        x = torch.as_tensor(x)
        if x.ndim != 4:
            raise ValueError(f"unet takes images (B, C, H, W); got shape {tuple(x.shape)}")
        t = _timesteps(t, x.shape[0], floating=True)
        self._recorder.add(t[0], x)
        with torch.no_grad():
            return self.net(x.float(), t).to(x.dtype)


class Lab:
    """The nets, schedule, prompts and sample images of one check (built from a ``LabSpec``)."""

    def __init__(self, spec: LabSpec):
        self.spec = spec
        self.prompts = PromptBook()
        self.alphas_cumprod = Schedule.cosine().alphas_cumprod.float()
        if spec.kind == "tiny":
            self.image_shape, self.flow_shape = (3, 24, 24), (1, 24, 24)
            self._eps, self.flow_net = TinyIFUNet(seed=spec.seed), TinyVelocity(seed=spec.seed + 1)
            self.variance_constant = False
        elif spec.kind == "builtin":
            from ..adapters import MNISTDDPM, FlowModel, load_builtin

            root = None if spec.root is None else Path(spec.root)
            net, _, _ = load_builtin(spec.ddpm, root)
            fnet, fcfg, _ = load_builtin(spec.flow, root)
            self._ddpm = MNISTDDPM(net.float().eval())
            self._flow = FlowModel(fnet.float().eval(), fcfg)
            self.flow_net = lambda x, t: self._flow(x, t)
            self.image_shape = self.flow_shape = (1, 28, 28)
            self.variance_constant = True
        else:
            raise ValueError(f"unknown lab kind {spec.kind!r}: 'builtin' or 'tiny'")
        for m in (getattr(self, "_eps", None), self.flow_net):
            if isinstance(m, nn.Module):
                m.eval().requires_grad_(False)

    def eps_model(self, x: torch.Tensor, t: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W), (B,) long, (B, 8, 16) -> (B, 2C, H, W): eps then variance channels."""
        codes = self.prompts.decode(e)
        if self.spec.kind == "tiny":
            return self._eps(x, t, codes)
        eps = self._ddpm(x, t, codes[:, :UNCOND])
        return torch.cat([eps, torch.zeros_like(eps)], 1)

    def stage_1(self, recorder: Recorder) -> Stage1:
        return Stage1(self, recorder)

    def flow_unet(self, recorder: Recorder) -> FlowUNet:
        return FlowUNet(self, recorder)

    def clean_images(self, count: int, seed: int, unit: bool = False, label: int | None = None
                     ) -> torch.Tensor:
        """``count`` clean images: MNIST test digits for the built-in lab (of class ``label`` if given,
        from index ``seed * count``), smooth random pictures for the tiny one; [-1, 1] (or [0, 1]
        with ``unit``)."""
        if self.spec.kind == "builtin":
            from ..data import load_mnist

            test = load_mnist("test")
            images = test.images if label is None else test.images[test.labels == label]
            images = images[seed * count : (seed + 1) * count]
        else:
            g = torch.Generator().manual_seed(seed)
            c, h, w = self.image_shape if not unit else self.flow_shape
            low = torch.rand(count, c, h // 4, w // 4, generator=g)
            images = nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
        return images if unit else images * 2 - 1


def make_add_variance(alphas_cumprod: torch.Tensor, timesteps, holder: dict):
    """The course's ``add_variance(predicted_variance, t, image)``: image + sqrt(var) * noise with
    diffusers' learned-range variance between t and the next strided timestep t' (exactly
    ``DDPMScheduler._get_variance``); the noise comes from ``holder["generator"]``."""
    grid = sorted(int(s) for s in timesteps)

    def add_variance(predicted_variance, t, image):
        t = int(torch.as_tensor(t).flatten()[0])
        earlier = [s for s in grid if s < t]
        prev_t = earlier[-1] if earlier else -1
        a_t = alphas_cumprod[t]
        a_prev = alphas_cumprod[prev_t] if prev_t >= 0 else torch.tensor(1.0)
        beta = 1 - a_t / a_prev
        variance = torch.clamp((1 - a_prev) / (1 - a_t) * beta, min=1e-20)
        frac = (torch.as_tensor(predicted_variance) + 1) / 2
        log_var = frac * torch.log(beta) + (1 - frac) * torch.log(variance)
        noise = torch.randn(image.shape, generator=holder["generator"], dtype=torch.float32).to(image.dtype)
        return image + torch.exp(0.5 * log_var) * noise

    return add_variance


def as_array(x) -> np.ndarray:
    """A student's output (tensor, numpy, float) as float32 numpy."""
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def notebook_globals(lab: Lab, recorder: Recorder, holder: dict, timesteps) -> dict:
    """The names a student's file (and the reference) read as globals: ``stage_1``,
    ``alphas_cumprod``, ``add_variance`` (noise from ``holder["generator"]``) and ``device``."""
    return {
        "stage_1": lab.stage_1(recorder),
        "alphas_cumprod": lab.alphas_cumprod.clone(),
        "add_variance": make_add_variance(lab.alphas_cumprod, timesteps, holder),
        "device": torch.device("cpu"),
    }
