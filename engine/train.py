"""The training loop for every built-in model (CS180 Part B, and the Part A MNIST DDPM).

Nothing here is specific to one network: a ``TrainConfig`` (``engine.config``) names the
architecture and the objective, and each objective's loss lives beside its math:
``forward.denoiser_loss`` (B1), ``flow.flow_matching_loss`` (B2), ``forward.eps_loss`` (DDPM).

Reproducibility and resumption: the data order of epoch e is ``DistributedSampler(seed,
epoch)``; the noise of global step k comes from a generator seeded with (seed, k, rank). So a
checkpoint needs only (model, optimizer, LR scheduler, epoch, step) to continue exactly where it
stopped, mid-epoch included. Checkpoints are written atomically at every epoch end and every
``checkpoint_every_s`` seconds; the loss log (JSON lines) is trimmed back to the checkpoint's
step on resume, so it has neither gaps nor duplicates. bf16 autocast and channels_last where the
CPU runs them fast (``engine.device``); DDP when launched by torchrun.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.nn import functional as F

from . import checkpoints as ckpt
from .config import TrainConfig, build_model, check_config, lr_scheduler
from .data import ROOT, load_mnist
from .device import dist_rank_world, git_commit, machine_description, pick_device, pick_precision
from .flow import flow_matching_loss
from .forward import denoiser_loss, eps_loss
from .runs import RunFiles, read_log, trim_log
from .schedule import Schedule
from .unet import one_hot


class TrainingError(RuntimeError):
    """A run that cannot start or go on (the message says why and what to do)."""


@dataclass
class Progress:
    epoch: int
    step: int
    total_steps: int
    loss: float
    lr: float
    samples_per_s: float


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 64 + rank)


def ema_warmup_fn(decay: float):
    """AveragedModel's update with the decay warmed up, min(decay, (1 + n) / (10 + n)) after n
    updates (diffusers' ``EMAModel`` does the same): a plain 0.999 EMA still remembers the random
    initial weights after 1 000 steps, and a 10-minute run is about that long (measured: a
    2-epoch width-32 run scored 10 % accuracy, chance, at step 750 with a plain EMA)."""

    @torch.no_grad()
    def update(ema_params, model_params, num_averaged):
        n = int(num_averaged)
        w = 1 - min(decay, (1 + n) / (10 + n))
        for e, m in zip(ema_params, model_params, strict=True):
            if e.is_floating_point():
                e.lerp_(m, w)
            else:  # counters (BatchNorm's num_batches_tracked): the model's own
                e.copy_(m)

    return update


def compute_loss(net, cfg: TrainConfig, x, labels, gen: torch.Generator, schedule: Schedule, noise=None):
    """One batch's loss. ``x`` (B, 1, 28, 28) in [0, 1]; all noise from ``gen``, except a reflow
    coupling's ``noise`` (x's own z_0)."""
    b, dev = x.shape[0], x.device
    randn = lambda *shape: torch.randn(*shape, generator=gen).to(dev)
    rand = lambda *shape: torch.rand(*shape, generator=gen).to(dev)
    if cfg.objective == "classifier":
        return F.cross_entropy(net(x).float(), labels)
    if cfg.objective == "denoiser":
        return denoiser_loss(net, x, randn(x.shape), cfg.sigma, cfg.pure_noise)
    c = None
    if cfg.arch == "class":  # the class is dropped with probability p_uncond: CFG's null branch
        keep = (rand(b) >= cfg.p_uncond).float()[:, None]
        c = one_hot(labels.cpu(), cfg.num_classes).to(dev) * keep
    if cfg.objective == "flow":
        noise = randn(x.shape) if noise is None else noise
        # logit-normal times (Esser et al. 2024) put more steps mid-path, where the target is hardest
        t = torch.sigmoid(randn(b)) if cfg.t_sampling == "logit-normal" else rand(b)
        if cfg.t_zero_share > 0:  # reflow: at t = 0 the loss distils the pairs into one Euler step
            t = torch.where(rand(b) < cfg.t_zero_share, torch.zeros_like(t), t)
        return flow_matching_loss(net, x, noise, t, c)
    if cfg.objective == "ddpm":
        t = torch.randint(0, schedule.num_timesteps, (b,), generator=gen)

        def model(x_t, t, cond):  # the UNet takes t / 999 in [0, 1]
            t_in = t.float().to(dev) / (schedule.num_timesteps - 1)
            return net(x_t, t_in) if cond is None else net(x_t, t_in, cond)

        return eps_loss(model, x * 2 - 1, t, randn(x.shape), schedule, c)
    raise ValueError(f"unknown objective {cfg.objective!r}")


def train(cfg: TrainConfig, out_dir: str | os.PathLike, **kwargs) -> dict:
    """Train ``cfg`` into ``out_dir`` (keyword arguments: see ``_train``); returns the manifest.
    One writer per folder: a second ``train`` into a folder in use raises ``FolderBusy`` instead
    of interleaving logs (rank 0 alone writes, so it alone holds the lock)."""
    if dist_rank_world()[0] != 0:
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
    ``max_steps`` stops after that many global steps (tests of interruption)."""
    run = _Run(cfg, RunFiles(Path(out_dir)), device, precision, resume)
    run.checkpoint_every_s, run.on_progress = checkpoint_every_s, on_progress
    should_stop = lambda: (stop_event is not None and stop_event.is_set()) or (
        max_steps is not None and run.global_step >= max_steps)
    status = "finished"
    with torch.random.fork_rng(devices=[]), run.open_log():
        for epoch in range(run.start_epoch, cfg.epochs):
            # 1. an epoch of steps; a stop inside it has already written a checkpoint
            if not run.train_epoch(epoch, should_stop):
                status = "cancelled"
                break
            # 2. the epoch's end: LR step, checkpoint, snapshot
            run.end_epoch(epoch, snapshot_fn)
            if run.stopped:
                status = "cancelled" if epoch + 1 < cfg.epochs else "finished"
                break
    manifest = run.finish(command) if run.rank == 0 and status == "finished" else {}
    manifest["status"] = status
    return manifest


def repo_path(path: str) -> Path:
    """A config's file path: as given when it exists (or is absolute), else from the repo root."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else ROOT / p


def _training_data(cfg: TrainConfig):
    """(images, labels, noise or None): MNIST's training split, or a reflow coupling's pairs
    (z_1 as the images, z_0 as their noise); the first ``train_count`` when it is set."""
    if cfg.pairs:
        from .reflow import load_pairs

        pairs, _ = load_pairs(repo_path(cfg.pairs))
        images, labels, noise = pairs["z1"], pairs["labels"], pairs["z0"]
    else:
        split = load_mnist("train")
        images, labels, noise = split.images, split.labels, None
    n = cfg.train_count or images.shape[0]
    return images[:n], labels[:n], None if noise is None else noise[:n]


def _init_weights(model: torch.nn.Module, path: str) -> None:
    """A fresh run's starting weights from a finished model (reflow starts from its teacher)."""
    tensors, _ = ckpt.load_tensors(repo_path(path))
    ckpt.load_state_dict_checked(model, {k: v.float() for k, v in tensors.items()}, path)


class _Run:
    """One run's state: data, model, optimizer, LR scheduler, files and counters."""

    def __init__(self, cfg: TrainConfig, files: RunFiles, device: str, precision: str, resume: bool):
        check_config(cfg)
        self.cfg, self.files = cfg, files
        self.rank, self.world = dist_rank_world()
        self.dev = pick_device(device)
        if self.world > 1 and self.dev.type == "cuda":
            self.dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        self.amp = pick_precision(self.dev, precision)
        if self.rank == 0:
            files.root.mkdir(parents=True, exist_ok=True)
        if files.checkpoint.exists() and not resume:
            raise TrainingError(f"{files.root} already has a checkpoint; pass --resume to continue it, "
                                "or choose another --out")
        self.images, self.labels, self.noise = _training_data(cfg)
        if cfg.batch_size % self.world:
            raise TrainingError(f"batch size {cfg.batch_size} is not divisible by {self.world} processes")
        self.local_bs = cfg.batch_size // self.world
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # weight init is a function of the seed
            self.model = build_model(cfg)
        if cfg.init_from and not (resume and files.checkpoint.exists()):
            _init_weights(self.model, cfg.init_from)
        self.model = self.model.to(self.dev)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.sampler = torch.utils.data.DistributedSampler(
            range(len(self.images)), num_replicas=self.world, rank=self.rank, shuffle=True,
            seed=cfg.seed, drop_last=True)
        self.steps_per_epoch = len(self.sampler) // self.local_bs
        if self.steps_per_epoch < 1:
            raise TrainingError(
                f"{len(self.images)} training images are fewer than one batch of {cfg.batch_size}")
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.sched = lr_scheduler(self.opt, cfg, self.steps_per_epoch * cfg.epochs)
        self.sched_per_step = cfg.lr_schedule == "cosine"
        # the EMA of the weights (torch's AveragedModel), updated after every step; it is what ships
        self.ema = None
        if cfg.ema_decay > 0:
            self.ema = torch.optim.swa_utils.AveragedModel(
                self.model, multi_avg_fn=ema_warmup_fn(cfg.ema_decay), use_buffers=True)
        self._start_or_resume(resume)
        self.net = self.model if self.world == 1 else torch.nn.parallel.DistributedDataParallel(self.model)
        self.schedule = Schedule.cosine()
        self.stopped, self.snapshot_s, self.rate_n, self.rate = False, 0.0, 0, 0.0
        self.last_ckpt = self.rate_t = time.monotonic()
        self.t_start = time.monotonic() - self.elapsed

    @property
    def channels_last(self) -> bool:
        return self.dev.type == "cpu" and self.amp is not None

    def _start_or_resume(self, resume: bool) -> None:
        self.start_epoch, self.start_step, self.global_step, self.elapsed = 0, 0, 0, 0.0
        if resume and self.files.checkpoint.exists():
            meta = ckpt.load_train_state(self.files.checkpoint, self.model, self.opt, self.sched, self.ema)
            saved = ckpt.config_from_dict(TrainConfig, meta["config"])
            if replace(saved, epochs=self.cfg.epochs) != self.cfg:  # only more epochs may differ
                raise TrainingError(f"--resume with different settings than the checkpoint in "
                                    f"{self.files.root}: {saved} vs {self.cfg}")
            self.start_epoch, self.start_step = meta["epoch"], meta["step_in_epoch"]
            self.global_step, self.elapsed = meta["global_step"], meta["elapsed_s"]
            if self.rank == 0:
                trim_log(self.files.log, self.global_step)
        elif self.rank == 0 and self.files.log.exists():
            self.files.log.unlink()

    def open_log(self):
        """The loss log, line-buffered (live curves); a no-op context on ranks other than 0."""
        self.log_f = open(self.files.log, "a", buffering=1) if self.rank == 0 else None  # noqa: SIM115
        return self.log_f if self.log_f is not None else nullcontext()

    def train_epoch(self, epoch: int, should_stop: Callable[[], bool]) -> bool:
        """The steps of ``epoch``; False when a stop came before its last step."""
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(self.sampler))
        self.model.train()
        first = self.start_step if epoch == self.start_epoch else 0
        for i in range(first, self.steps_per_epoch):
            self._step(epoch, i, order[i * self.local_bs:(i + 1) * self.local_bs])
            self.stopped = self._all_agree(should_stop(), torch.distributed.ReduceOp.SUM)
            mid_epoch = i + 1 < self.steps_per_epoch
            if mid_epoch and (self.stopped or time.monotonic() - self.last_ckpt > self.checkpoint_every_s):
                self.checkpoint(epoch, i + 1)
            if self.stopped:
                return not mid_epoch
        return True

    def _step(self, epoch: int, i: int, idx: torch.Tensor) -> None:
        # 1. this step's batch and noise are functions of (seed, epoch, step, rank)
        x = self.images[idx].to(self.dev)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        gen = step_generator(self.cfg.seed, self.global_step, self.rank)
        torch.manual_seed(gen.initial_seed() + 1)  # dropout (classifier) draws from here
        # 2. forward under autocast, fp32 master weights
        with torch.autocast(self.dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            noise = None if self.noise is None else self.noise[idx].to(self.dev)
            labels = self.labels[idx].to(self.dev)
            loss = compute_loss(self.net, self.cfg, x, labels, gen, self.schedule, noise)
        # every rank must stop together, or the others hang in backward
        if not self._all_agree(bool(torch.isfinite(loss)), torch.distributed.ReduceOp.MIN):
            raise TrainingError(
                f"loss became {loss.item()} at step {self.global_step} (epoch {epoch + 1}); stopped. "
                f"The last good checkpoint is kept in {self.files.checkpoint}; try a lower --lr.")
        # 3. update
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.sched_per_step:
            self.sched.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.global_step += 1
        self._log(epoch, i, loss.item(), x.shape[0])

    def _log(self, epoch: int, i: int, loss: float, batch: int) -> None:
        lr = self.opt.param_groups[0]["lr"]
        self.rate_n += batch * self.world
        if time.monotonic() - self.rate_t > 2.0:
            self.rate = self.rate_n / (time.monotonic() - self.rate_t)
            self.rate_t, self.rate_n = time.monotonic(), 0
        if self.rank != 0:
            return
        self.log_f.write(json.dumps({
            "step": self.global_step - 1, "epoch": epoch + (i + 1) / self.steps_per_epoch,
            "loss": round(loss, 6), "lr": lr, "time": round(time.monotonic() - self.t_start, 2),
        }) + "\n")
        if self.on_progress is not None:
            total = self.steps_per_epoch * self.cfg.epochs
            self.on_progress(Progress(epoch, self.global_step, total, loss, lr, self.rate))

    def _all_agree(self, flag: bool, op) -> bool:
        """``flag`` combined over the ranks (MIN: all true; SUM: any true); itself alone."""
        if self.world == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.dev)
        torch.distributed.all_reduce(value, op=op)
        return bool(value.item())

    def checkpoint(self, epoch: int, step_in_epoch: int) -> None:
        if self.rank == 0:
            self.log_f.flush()
            os.fsync(self.log_f.fileno())
            counters = {"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": self.global_step,
                        "elapsed_s": time.monotonic() - self.t_start}
            ckpt.save_train_state(self.files.checkpoint, self.model, self.opt, self.sched, self.cfg, counters,
                                  self.ema)
        self.last_ckpt = time.monotonic()

    def end_epoch(self, epoch: int, snapshot_fn: Callable | None) -> None:
        if self.sched is not None and not self.sched_per_step:
            self.sched.step()
        self.checkpoint(epoch + 1, 0)
        if self.rank == 0 and snapshot_fn is not None and (epoch + 1) in self.cfg.snapshot_epochs:
            t0 = time.monotonic()
            self.shipped().eval()
            arrays, meta = snapshot_fn(self.shipped(), self.cfg, epoch + 1)
            ckpt.save_tensors(self.files.snapshot(epoch + 1), arrays, meta)
            self.snapshot_s += time.monotonic() - t0
            self.t_start += time.monotonic() - t0  # "time" in the log counts training only

    def shipped(self) -> torch.nn.Module:
        """The weights a snapshot and the final file hold: the EMA's when the run keeps one."""
        return self.ema.module if self.ema is not None else self.model

    def finish(self, command: str) -> dict:
        """The manifest, and the final fp16 weights beside it."""
        wall = time.monotonic() - self.t_start
        tail = [r["loss"] for r in read_log(self.files.log)[-50:]]
        manifest = {
            "name": self.cfg.name, "config": ckpt.config_to_dict(self.cfg), "command": command,
            "git_commit": git_commit(), "machine": machine_description(self.dev), "device": str(self.dev),
            "precision": str(self.amp).replace("torch.", "") if self.amp else "float32",
            "world_size": self.world, "train_time_s": round(wall, 1),
            "wall_time_s": round(wall + self.snapshot_s, 1),
            "samples_per_s": round(self.global_step * self.cfg.batch_size / max(wall, 1e-9), 1),
            "steps": self.global_step, "final_loss": round(sum(tail) / max(len(tail), 1), 6),
            "torch": torch.__version__, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.shipped().eval()
        ckpt.save_weights(self.files.weights, self.shipped(), self.cfg, {"manifest": manifest})
        ckpt.atomic_write_text(self.files.manifest, json.dumps(manifest, indent=2) + "\n")
        return manifest
