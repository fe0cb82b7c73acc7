"""Training for every built-in model (CS180 Part B, plus the Part A MNIST DDPM).

Nothing here is specific to one network: a ``TrainConfig`` (frozen, saved in every checkpoint)
names the architecture and the objective:

- ``denoiser``: z = x + sigma eps -> x, L2 (Part B1.2); ``pure_noise``: z = eps.
- ``flow``: flow matching, x_0 = noise, x_1 = data, target u = x_1 - x_0 (Part B2).
- ``ddpm``: epsilon-prediction on pixels in [-1, 1], t ~ U{0..999} with the cosine schedule.
- ``classifier``: the small MNIST CNN used to score samples.

Reproducibility and resumption: the data order of epoch e is ``DistributedSampler(seed,
epoch)``; the noise of global step k comes from a generator seeded with (seed, k, rank). So a
checkpoint needs only (model, optimizer, LR scheduler, epoch, step) to continue exactly where it
stopped, mid-epoch included. Checkpoints are written atomically at every epoch end and every
``checkpoint_every_s`` seconds; the loss log (JSON lines) is trimmed back to the checkpoint's
step on resume, so it has neither gaps nor duplicates.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from . import checkpoints as ckpt
from .data import ROOT, load_mnist
from .flow import flow_matching_loss
from .forward import forward
from .schedule import Schedule
from .unet import ClassConditionalUNet, TimeConditionalUNet, UnconditionalUNet, one_hot


@dataclass(frozen=True)
class TrainConfig:
    name: str
    objective: str  # "denoiser" | "flow" | "ddpm" | "classifier"
    arch: str  # "unconditional" | "time" | "class" | "cnn"
    num_hiddens: int = 64
    sigma: float = 0.5
    pure_noise: bool = False
    batch_size: int = 64
    epochs: int = 10
    lr: float = 1e-2
    lr_schedule: str = "exponential"  # or "constant"
    lr_final_factor: float = 0.1  # ExponentialLR gamma = factor ** (1 / epochs)
    p_uncond: float = 0.1
    num_classes: int = 10
    seed: int = 0
    snapshot_epochs: tuple[int, ...] = ()
    train_count: int = 0  # 0: all 60000 training images; tests train on a slice


PRESETS: dict[str, TrainConfig] = {
    "denoiser": TrainConfig(
        "denoiser", "denoiser", "unconditional", 128, sigma=0.5, batch_size=256, epochs=5,
        lr=1e-4, lr_schedule="constant", snapshot_epochs=(1, 5),
    ),
    "denoiser-pure-noise": TrainConfig(
        "denoiser-pure-noise", "denoiser", "unconditional", 128, pure_noise=True, batch_size=256,
        epochs=5, lr=1e-4, lr_schedule="constant", snapshot_epochs=(1, 5),
    ),
    "flow-time": TrainConfig(
        "flow-time", "flow", "time", 64, batch_size=64, epochs=10, lr=1e-2,
        snapshot_epochs=(1, 5, 10),
    ),
    "flow-class": TrainConfig(
        "flow-class", "flow", "class", 64, batch_size=64, epochs=10, lr=1e-2,
        snapshot_epochs=(1, 5, 10),
    ),
    # Deliverable B2.6b: no scheduler. 1e-3 won a sweep of constant rates (1e-2, 3e-3, 1e-3,
    # 3e-4; same seed, so the same batches and noise): lowest epoch-mean loss in epochs 1-6 and
    # summed over all 10 (3e-4 is under 0.6 % lower in epochs 7-10). Curves:
    # cache/models/flow-class-constant-lr/lr_sweep.json, shown on the Flow page.
    "flow-class-constant-lr": TrainConfig(
        "flow-class-constant-lr", "flow", "class", 64, batch_size=64, epochs=10, lr=1e-3,
        lr_schedule="constant", snapshot_epochs=(1, 5, 10),
    ),
    "ddpm-class": TrainConfig(
        "ddpm-class", "ddpm", "class", 64, batch_size=128, epochs=8, lr=2e-3,
        snapshot_epochs=(1, 4, 8),
    ),
    "classifier": TrainConfig(
        "classifier", "classifier", "cnn", 32, batch_size=128, epochs=3, lr=1e-3,
        lr_final_factor=0.1,
    ),
}


class MNISTClassifier(nn.Module):
    """Small CNN for scoring generated digits (input in [0, 1])."""

    def __init__(self, num_hiddens: int = 32, num_classes: int = 10):
        super().__init__()
        d = num_hiddens
        self.net = nn.Sequential(
            nn.Conv2d(1, d, 3, padding=1), nn.BatchNorm2d(d), nn.ReLU(),
            nn.Conv2d(d, d, 3, padding=1), nn.BatchNorm2d(d), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(d, 2 * d, 3, padding=1), nn.BatchNorm2d(2 * d), nn.ReLU(),
            nn.Conv2d(2 * d, 2 * d, 3, padding=1), nn.BatchNorm2d(2 * d), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * d * 49, 128), nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_model(cfg: TrainConfig) -> nn.Module:
    if cfg.arch == "unconditional":
        return UnconditionalUNet(1, cfg.num_hiddens)
    if cfg.arch == "time":
        return TimeConditionalUNet(1, cfg.num_hiddens)
    if cfg.arch == "class":
        return ClassConditionalUNet(1, cfg.num_classes, cfg.num_hiddens)
    if cfg.arch == "cnn":
        return MNISTClassifier(cfg.num_hiddens, cfg.num_classes)
    raise ValueError(f"unknown architecture {cfg.arch!r}")


# ----------------------------------------------------------------------------- objectives


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 64 + rank)


def compute_loss(model, cfg: TrainConfig, x, labels, gen: torch.Generator, schedule: Schedule):
    """One batch's loss. ``x`` (B, 1, 28, 28) in [0, 1]; all noise from ``gen``."""
    b = x.shape[0]
    dev = x.device

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(dev)

    def rand(*shape):
        return torch.rand(*shape, generator=gen).to(dev)

    if cfg.objective == "classifier":
        return F.cross_entropy(model(x).float(), labels)
    if cfg.objective == "denoiser":
        eps = randn(x.shape)
        z = eps if cfg.pure_noise else x + cfg.sigma * eps
        return F.mse_loss(model(z).float(), x.float())
    if cfg.arch == "class":
        keep = (rand(b) >= cfg.p_uncond).float()[:, None]
        c = one_hot(labels.cpu(), cfg.num_classes).to(dev) * keep
    if cfg.objective == "flow":
        noise, t = randn(x.shape), rand(b)
        if cfg.arch == "class":
            return flow_matching_loss(model, x, noise, t, c)
        return flow_matching_loss(model, x, noise, t)
    if cfg.objective == "ddpm":
        x0 = x * 2 - 1
        t = torch.randint(0, schedule.num_timesteps, (b,), generator=gen)
        eps = randn(x.shape)
        x_t = forward(x0, t, schedule, noise=eps)
        t_in = t.float().to(dev) / (schedule.num_timesteps - 1)
        pred = model(x_t, t_in, c) if cfg.arch == "class" else model(x_t, t_in)
        return F.mse_loss(pred.float(), eps)
    raise ValueError(f"unknown objective {cfg.objective!r}")


# ----------------------------------------------------------------------------- device


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA GPU is available")
    return torch.device(device)


def cpu_supports_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_precision(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype (None = plain fp32). bf16 on AVX-512-bf16/AMX CPUs and on CUDA."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return cpu_amp()


def cpu_amp() -> torch.dtype | None:
    """bf16 on CPUs that run it fast (AVX-512 bf16 / AMX), else None (plain fp32)."""
    return torch.bfloat16 if cpu_supports_bf16() else None


# ----------------------------------------------------------------------------- run files


class TrainingError(RuntimeError):
    pass


class Cancelled(Exception):
    pass


@dataclass
class RunFiles:
    """Files of one run directory."""

    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.safetensors"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def weights(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def snapshot(self, epoch: int) -> Path:
        return self.root / "snapshots" / f"epoch_{epoch:02d}.safetensors"


def read_log(path: Path) -> list[dict]:
    """Log records, skipping a torn last line left by a crash."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def epoch_means(records: list[dict]) -> list[float]:
    """Mean loss of each epoch from log records (their "epoch" runs (e, e + 1] through epoch
    e + 1): the curve in which runs with different learning rates compare fairly."""
    sums: dict[int, list[float]] = {}
    for r in records:
        e = max(math.ceil(r["epoch"]) - 1, 0)
        sums.setdefault(e, []).append(r["loss"])
    return [round(sum(v) / len(v), 6) for _, v in sorted(sums.items())]


def _trim_log(path: Path, keep_below_step: int) -> None:
    records = [r for r in read_log(path) if r.get("step", 0) < keep_below_step]
    ckpt.atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for key, v in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(files: RunFiles, model, opt, sched, cfg, epoch: int, step_in_epoch: int,
                    global_step: int, elapsed_s: float) -> None:
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()} | opt_tensors
    meta = {
        "config": ckpt.config_to_dict(cfg), "epoch": epoch, "step_in_epoch": step_in_epoch,
        "global_step": global_step, "optimizer": opt_meta, "elapsed_s": elapsed_s,
        "lr_scheduler": sched.state_dict() if sched is not None else None,
    }
    ckpt.save_tensors(files.checkpoint, tensors, meta)


def load_checkpoint(files: RunFiles, model, opt, sched) -> dict:
    tensors, meta = ckpt.load_tensors(files.checkpoint)
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    ckpt.load_state_dict_checked(model, model_state, files.checkpoint)
    try:
        _load_optimizer(opt, tensors, meta["optimizer"])
        if sched is not None and meta.get("lr_scheduler"):
            sched.load_state_dict(meta["lr_scheduler"])
    except (KeyError, ValueError) as e:
        raise ckpt.CheckpointError(
            f"checkpoint optimizer state unreadable: {files.checkpoint}: {e}"
        ) from e
    return meta


def save_weights(path: Path, model: nn.Module, cfg: TrainConfig, extra: dict | None = None,
                 dtype=torch.float16) -> None:
    """Final weights for shipping: floating tensors in ``dtype`` (fp16 halves the size)."""
    tensors = {
        k: (v.to(dtype) if v.is_floating_point() else v) for k, v in model.state_dict().items()
    }
    ckpt.save_tensors(path, tensors, {"config": ckpt.config_to_dict(cfg), **(extra or {})})


def load_weights(path) -> tuple[nn.Module, TrainConfig, dict]:
    """Model (eval mode, float32) and config from a ``model.safetensors`` written by training."""
    tensors, meta = ckpt.load_tensors(path)
    if "config" not in meta:
        raise ckpt.CheckpointError(f"no config in {path}: not a Diffusion Lab model file")
    try:
        cfg = ckpt.config_from_dict(TrainConfig, meta["config"])
    except TypeError as e:
        raise ckpt.CheckpointError(f"config in {path} is not readable: {e}") from e
    model = build_model(cfg)
    ckpt.load_state_dict_checked(model, tensors, path)
    return model.float().eval(), cfg, meta


def _git_commit() -> str:
    """HEAD of the checkout, or DIFFLAB_GIT_COMMIT when set: the code may run from a copy of
    the work tree whose .git is missing or stale (a GPU machine sent the tree of that commit)."""
    if os.environ.get("DIFFLAB_GIT_COMMIT"):
        return os.environ["DIFFLAB_GIT_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} threads"


# ----------------------------------------------------------------------------- the loop


@dataclass
class Progress:
    epoch: int
    step: int
    total_steps: int
    loss: float
    lr: float
    samples_per_s: float


def train(cfg: TrainConfig, out_dir: str | os.PathLike, **kwargs) -> dict:
    """Train ``cfg`` into ``out_dir`` (keyword arguments: see ``_train``); returns the manifest.

    One writer per folder: a second ``train`` into a folder in use raises
    ``checkpoints.FolderBusy`` instead of interleaving logs. Rank 0 alone writes, so it alone
    holds the lock.
    """
    if _dist_rank_world()[0] != 0:
        return _train(cfg, out_dir, **kwargs)
    with ckpt.exclusive_folder(out_dir, ".train.lock"):
        return _train(cfg, out_dir, **kwargs)


def _train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    device: str = "auto",
    precision: str = "auto",
    checkpoint_every_s: float = 300.0,
    stop_event: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    snapshot_fn: Callable | None = None,
    command: str = "",
    max_steps: int | None = None,
) -> dict:
    """Train ``cfg`` into ``out_dir``; returns the manifest. Safe to kill at any point.

    ``stop_event`` cancels (a checkpoint is written first, so ``resume`` continues);
    ``max_steps`` stops after that many global steps (tests of interruption).
    """
    rank, world = _dist_rank_world()
    dev = pick_device(device)
    if world > 1 and dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    amp = pick_precision(dev, precision)
    files = RunFiles(Path(out_dir))
    if rank == 0:
        files.root.mkdir(parents=True, exist_ok=True)
    if files.checkpoint.exists() and not resume:
        raise TrainingError(
            f"{files.root} already has a checkpoint; pass --resume to continue it, "
            "or choose another --out"
        )

    split = load_mnist("train")
    images, labels = split.images, split.labels
    if cfg.train_count:
        images, labels = images[: cfg.train_count], labels[: cfg.train_count]
    n = images.shape[0]
    if cfg.batch_size % world:
        raise TrainingError(f"batch size {cfg.batch_size} is not divisible by {world} processes")
    local_bs = cfg.batch_size // world

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # weight init is a function of the seed
        model = build_model(cfg).to(dev)
    if dev.type == "cpu" and amp is not None:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = None
    if cfg.lr_schedule == "exponential":
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_final_factor ** (1 / cfg.epochs))
    elif cfg.lr_schedule != "constant":
        raise ValueError(f"lr_schedule must be exponential or constant, got {cfg.lr_schedule!r}")

    start_epoch, start_step, global_step, elapsed = 0, 0, 0, 0.0
    if resume and files.checkpoint.exists():
        meta = load_checkpoint(files, model, opt, sched)
        saved_cfg = ckpt.config_from_dict(TrainConfig, meta["config"])
        if replace(saved_cfg, epochs=cfg.epochs) != replace(cfg, epochs=cfg.epochs):
            raise TrainingError(
                f"--resume with different settings than the checkpoint in {files.root}: "
                f"{saved_cfg} vs {cfg}"
            )
        start_epoch, start_step = meta["epoch"], meta["step_in_epoch"]
        global_step, elapsed = meta["global_step"], meta["elapsed_s"]
        if rank == 0:
            _trim_log(files.log, global_step)
    elif rank == 0 and files.log.exists():
        files.log.unlink()

    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model)
    schedule = Schedule.cosine()
    sampler = torch.utils.data.DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True
    )
    steps_per_epoch = len(sampler) // local_bs
    if steps_per_epoch < 1:
        raise TrainingError(f"{n} training images are fewer than one batch of {cfg.batch_size}")
    total_steps = steps_per_epoch * cfg.epochs
    log_f = open(files.log, "a", buffering=1) if rank == 0 else None  # noqa: SIM115  (line-buffered: live curves)
    last_ckpt = time.monotonic()
    t_start = time.monotonic() - elapsed
    rate_t, rate_n, rate = time.monotonic(), 0, 0.0
    status = "finished"
    stop = mid_epoch = False
    snap_s = 0.0

    def checkpoint(epoch, step_in_epoch):
        nonlocal last_ckpt
        if rank == 0:
            log_f.flush()
            os.fsync(log_f.fileno())
            save_checkpoint(files, model, opt, sched, cfg, epoch, step_in_epoch, global_step,
                            time.monotonic() - t_start)
        last_ckpt = time.monotonic()

    rng_guard = torch.random.fork_rng(devices=[])
    rng_guard.__enter__()
    try:
        for epoch in range(start_epoch, cfg.epochs):
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler))
            model.train()
            first = start_step if epoch == start_epoch else 0
            for i in range(first, steps_per_epoch):
                # 1. this step's batch and noise are functions of (seed, epoch, step, rank)
                idx = order[i * local_bs:(i + 1) * local_bs]
                x = images[idx].to(dev)
                if amp is not None and dev.type == "cpu":
                    x = x.contiguous(memory_format=torch.channels_last)
                gen = step_generator(cfg.seed, global_step, rank)
                torch.manual_seed(gen.initial_seed() + 1)  # dropout (classifier) draws from here
                # 2. forward under autocast, fp32 master weights
                with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                    loss = compute_loss(ddp_model, cfg, x, labels[idx].to(dev), gen, schedule)
                finite = bool(torch.isfinite(loss))
                if world > 1:  # every rank must stop together, or the others hang in backward
                    ok = torch.tensor([float(finite)], device=dev)
                    torch.distributed.all_reduce(ok, op=torch.distributed.ReduceOp.MIN)
                    finite = bool(ok.item())
                if not finite:
                    raise TrainingError(
                        f"loss became {loss.item()} at step {global_step} (epoch {epoch + 1}); "
                        f"stopped. The last good checkpoint is kept in {files.checkpoint}; "
                        "try a lower --lr."
                    )
                # 3. update
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                global_step += 1
                lr = opt.param_groups[0]["lr"]
                rate_n += x.shape[0] * world
                if time.monotonic() - rate_t > 2.0:
                    rate = rate_n / (time.monotonic() - rate_t)
                    rate_t, rate_n = time.monotonic(), 0
                if rank == 0:
                    log_f.write(json.dumps({
                        "step": global_step - 1, "epoch": epoch + (i + 1) / steps_per_epoch,
                        "loss": round(loss.item(), 6), "lr": lr,
                        "time": round(time.monotonic() - t_start, 2),
                    }) + "\n")
                    if on_progress is not None:
                        on_progress(Progress(epoch, global_step, total_steps, loss.item(), lr, rate))
                # 4. periodic and requested checkpoints (the epoch end writes its own)
                stop = stop_event is not None and stop_event.is_set()
                stop = stop or (max_steps is not None and global_step >= max_steps)
                if world > 1:
                    flag = torch.tensor([float(stop)], device=dev)
                    torch.distributed.all_reduce(flag)
                    stop = bool(flag.item())
                mid_epoch = i + 1 < steps_per_epoch
                if mid_epoch and (stop or time.monotonic() - last_ckpt > checkpoint_every_s):
                    checkpoint(epoch, i + 1)
                if stop:
                    break
            if stop and mid_epoch:
                status = "cancelled"
                break
            if sched is not None:
                sched.step()
            checkpoint(epoch + 1, 0)
            if rank == 0 and snapshot_fn is not None and (epoch + 1) in cfg.snapshot_epochs:
                t_snap = time.monotonic()
                model.eval()
                arrays, meta = snapshot_fn(model, cfg, epoch + 1)
                ckpt.save_tensors(files.snapshot(epoch + 1), arrays, meta)
                snap_s += time.monotonic() - t_snap
                t_start += time.monotonic() - t_snap  # "time" in the log counts training only
            if stop:
                status = "cancelled" if epoch + 1 < cfg.epochs else "finished"
                break
    finally:
        rng_guard.__exit__(None, None, None)
        if log_f is not None:
            log_f.close()

    manifest = {}
    if rank == 0 and status == "finished":
        wall = time.monotonic() - t_start
        records = read_log(files.log)
        tail = [r["loss"] for r in records[-50:]]
        manifest = {
            "name": cfg.name,
            "config": ckpt.config_to_dict(cfg),
            "command": command,
            "git_commit": _git_commit(),
            "machine": machine_description(dev),
            "device": str(dev),
            "precision": str(amp).replace("torch.", "") if amp else "float32",
            "world_size": world,
            "train_time_s": round(wall, 1),
            "wall_time_s": round(wall + snap_s, 1),
            "samples_per_s": round(global_step * cfg.batch_size / max(wall, 1e-9), 1),
            "steps": global_step,
            "final_loss": round(sum(tail) / max(len(tail), 1), 6),
            "torch": torch.__version__,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        model.eval()
        save_weights(files.weights, model, cfg, {"manifest": manifest})
        ckpt.atomic_write_text(files.manifest, json.dumps(manifest, indent=2) + "\n")
    manifest["status"] = status
    return manifest


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed() -> bool:
    """Join the torchrun process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch.distributed.init_process_group(backend)
    return True

