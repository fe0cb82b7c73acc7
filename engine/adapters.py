"""Model adapters: every backend is a callable ``(x_t, t, cond) -> prediction`` plus a spec.

The built-in MNIST models are thin wrappers around the Part B UNets trained by ``engine.train``
and shipped in ``cache/models/<name>/model.safetensors``. DeepFloyd IF (``engine.deepfloyd.model``)
plugs in behind the same ``DiffusionBackend`` interface, so the Part A algorithms never know
which model they run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoints as ckpt
from .config import TrainConfig
from .data import CACHE_DIR
from .schedule import Schedule
from .unet import inference_copy, one_hot

MODELS_DIR = CACHE_DIR / "models"
RUNS_DIR = CACHE_DIR / "runs"
MODEL_NAMES = (
    "denoiser", "denoiser-pure-noise", "flow-time", "flow-class", "flow-class-constant-lr",
    "flow-class-constant-lr-1e-4", "flow-class-reflow", "ddpm-class", "classifier",
)


class ModelNotFound(ckpt.CheckpointError):
    """A built-in model that is not trained yet; ``fix`` is the command that trains it."""

    def __init__(self, message: str, fix: str = ""):
        super().__init__(f"{message} Train it with: {fix}" if fix else message)
        self.reason, self.fix = message, fix


@dataclass(frozen=True)
class ModelSpec:
    """What a backend expects. ``value_range`` is the pixel range the model works in."""

    name: str
    kind: str  # "ddpm" | "flow" | "denoiser" | "classifier"
    image_size: int = 28
    channels: int = 1
    value_range: tuple[float, float] = (0.0, 1.0)
    conditioning: str = "none"  # "none" | "class" | "text"
    classes: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()


DIGITS = tuple(str(i) for i in range(10))


def model_path(name: str, root: Path | None = None) -> Path:
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    return (root or MODELS_DIR) / name / "model.safetensors"


def load_builtin(name: str, root: Path | None = None):
    """(torch module in eval mode, TrainConfig, manifest) of a shipped or trained model."""
    path = model_path(name, root)
    if not path.exists():
        raise ModelNotFound(f"model {name!r} is not in {path.parent}.",
                            f"python -m engine train {name} --out {path.parent}")
    module, cfg, meta = ckpt.load_weights(path)
    return module, cfg, meta.get("manifest", {})


def load_run(folder: str | Path):
    """(torch module in eval mode, TrainConfig, manifest) of any trained run: the
    ``model.safetensors`` that ``python -m engine train ... --out FOLDER`` wrote when it finished."""
    path = Path(folder) / "model.safetensors"
    if not path.exists():
        hint = " (the run has a checkpoint: it has not finished; --resume it)" if (
            path.parent / "checkpoint.safetensors").exists() else ""
        raise ModelNotFound(f"no finished model in {path.parent}{hint}.",
                            f"python -m engine train MODEL --out {path.parent} --resume")
    module, cfg, meta = ckpt.load_weights(path)
    return module, cfg, meta.get("manifest", {})


def load_model(name: str | None, root: Path | None = None, model_dir: str | Path | None = None):
    """A shipped model by ``name`` (from ``root``), or any trained run's folder ``model_dir``."""
    return load_run(model_dir) if model_dir is not None else load_builtin(name, root)


def read_quality(name: str, root: Path | None = None) -> dict | None:
    """The model's ``quality.json`` (written by ``python -m engine evaluate NAME --write``)."""
    path = model_path(name, root).parent / "quality.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def quality_summary(q: dict | None) -> str:
    """One line a teacher can read: how good the model is, from its ``quality.json``."""
    if not q:
        return ""
    try:
        if "test_accuracy" in q:
            return f"{100 * q['test_accuracy']:.2f} % MNIST test accuracy"
        if "per_class_accuracy" in q:
            acc = q["per_class_accuracy"]
            worst = min((v, k) for k, v in acc.items() if k != "overall")
            loop = f"stride {q['stride']}" if "stride" in q else f"{q.get('steps')} steps"
            return (f"{100 * acc['overall']:.1f} % of {q.get('samples')} samples classified as the "
                    f"asked digit (γ {q.get('guidance')}, {loop}; worst digit {worst[1]}: "
                    f"{100 * worst[0]:.0f} %)")
        if "psnr_by_sigma" in q:
            trained = q["psnr_by_sigma"].get(str(q.get("trained_sigma")), {})
            return (f"test PSNR at σ {q.get('trained_sigma')}: {trained.get('denoised_psnr')} dB "
                    f"(noisy input {trained.get('noisy_psnr')} dB)")
        if "rms_to_mean_image" in q:
            return f"RMS to the training-set mean image: {q['rms_to_mean_image']}"
        if "class_share" in q:
            share = list(q["class_share"].values())
            return (f"mean classifier confidence {q.get('mean_confidence')}; each digit "
                    f"{100 * min(share):.0f}-{100 * max(share):.0f} % of {q.get('samples')} samples")
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return "see quality.json"


def read_manifest(name: str, root: Path | None = None) -> dict | None:
    path = model_path(name, root).parent / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def device_of(net) -> torch.device:
    """Where ``net``'s weights live (CPU for a net without any, or a plain callable)."""
    params = net.parameters() if isinstance(net, torch.nn.Module) else iter(())
    p = next(params, None)
    return p.device if p is not None else torch.device("cpu")


def _fast_net(net: torch.nn.Module, amp: torch.dtype | None) -> torch.nn.Module:
    """What the adapters run: ``net`` itself in fp32 (the plain reference), or, with ``amp``
    (bf16 on CPUs that have it), a folded copy in that dtype (``unet.inference_copy``)."""
    return net if amp is None else inference_copy(net, amp)


@dataclass(eq=False)
class MNISTDDPM:
    """The built-in Part A model: class-conditioned eps-prediction on [-1, 1] pixels.

    ``cond`` is a (B, 10) one-hot tensor; zeros are the CFG null condition.
    """

    net: torch.nn.Module
    schedule: Schedule = field(default_factory=Schedule.cosine)
    spec: ModelSpec = ModelSpec("ddpm-class", "ddpm", 28, 1, (-1.0, 1.0), "class", DIGITS)
    amp: torch.dtype | None = None

    def __post_init__(self):
        self._run = _fast_net(self.net, self.amp)
        self._dev = device_of(self.net)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Inputs and output live on the CPU (the sampling loops' tensors); the net may be on
        a GPU (snapshots during CUDA training), so inputs go to its device and come back."""
        if cond is None:
            cond = self.null_cond(x_t.shape[0])
        t_in = torch.as_tensor(t, dtype=torch.float32) / (self.schedule.num_timesteps - 1)
        dt, dev = self.amp or torch.float32, self._dev
        with torch.inference_mode():
            out = self._run(x_t.to(dev, dt), t_in.expand(x_t.shape[0]).to(dev, dt), cond.to(dev, dt))
        return out.float().cpu()

    def null_cond(self, n: int) -> torch.Tensor:
        return torch.zeros(n, 10)

    def encode(self, labels) -> torch.Tensor:
        return one_hot(torch.as_tensor(labels))


@dataclass(eq=False)
class FlowModel:
    """A Part B flow model: ``(x_t, t in [0, 1], cond) -> velocity``; cond ignored when
    the network is only time-conditioned."""

    net: torch.nn.Module
    config: TrainConfig
    amp: torch.dtype | None = None

    @property
    def class_conditioned(self) -> bool:
        return self.config.arch == "class"

    def __post_init__(self):
        self._run = _fast_net(self.net, self.amp)
        self._dev = device_of(self.net)

    def __call__(self, x_t, t, cond=None):
        """CPU tensors in and out, whatever device the net is on (as ``MNISTDDPM``)."""
        dt, dev = self.amp or torch.float32, self._dev
        t = torch.as_tensor(t).to(dev, dt)
        with torch.inference_mode():
            if self.class_conditioned:
                if cond is None:
                    cond = self.null_cond(x_t.shape[0])
                out = self._run(x_t.to(dev, dt), t, cond.to(dev, dt))
            else:
                out = self._run(x_t.to(dev, dt), t)
        return out.float().cpu()

    def null_cond(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.config.num_classes)

    def encode(self, labels) -> torch.Tensor:
        return one_hot(torch.as_tensor(labels), self.config.num_classes)
