"""Safe, atomic checkpoint files: model weights, training state, and any tensors with metadata.

Weights are safetensors (never pickles); small metadata (the frozen config dataclass, step
counters) rides in the safetensors header as JSON. Every write goes to a temporary file in the
same folder, is flushed and fsync'd, then renamed over the target, so a crash or kill -9 leaves
either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, or does not fit the model."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` or leave the old file as it was. A full disk or a read-only
    folder raises ``OSError`` with the same errno and a message that names ``path``."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(
                e.errno, f"cannot write {path}: {e.strerror or e}; the previous file is unchanged"
            ) from e
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FolderBusy(OSError):
    """Another process holds the folder's lock (see ``exclusive_folder``). An ``OSError``, so the
    CLI prints it as one line (exit 1) like any other file-system refusal."""


@contextmanager
def exclusive_folder(folder: str | os.PathLike, name: str = ".lock"):
    """Hold an exclusive, non-blocking ``flock`` on ``folder/name`` for the ``with`` block.

    Two writers into one run folder would interleave logs and overwrite each other's
    checkpoints; the second one gets ``FolderBusy`` instead. The kernel drops the lock when the
    holder dies (kill -9 included), so a crash never leaves the folder locked.
    """
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # the file stays empty: its bytes never change, so "a refused run leaves the folder alone"
    f = open(folder / name, "a")  # noqa: SIM115  -- held for the block
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(
                errno.EBUSY,
                f"{folder} is in use by another process (a run is writing it); wait for it to end "
                "or choose another folder",
            ) from None
        yield
    finally:
        f.close()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_tensors(path, tensors: dict[str, torch.Tensor], meta: dict | None = None) -> None:
    """Write ``tensors`` and JSON-able ``meta`` atomically as one safetensors file."""
    header = {"meta": json.dumps(meta or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save_bytes(tensors, metadata=header))


def load_tensors(path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a file written by ``save_tensors``; clear ``CheckpointError`` when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    data = path.read_bytes()
    try:
        tensors = st_load_bytes(data)
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, ValueError, OSError, Exception) as e:  # noqa: BLE001
        raise CheckpointError(
            f"checkpoint is corrupt or not a safetensors file: {path} ({type(e).__name__}: {e})"
        ) from e
    try:
        meta = json.loads(header.get("meta", "{}"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint metadata is not valid JSON: {path}") from e
    return tensors, meta


def read_meta(path) -> dict:
    """Only the metadata of a file written by ``save_tensors`` (its header, not its tensors: a
    32 MB checkpoint's meta without reading the 32 MB); ``CheckpointError`` when unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {}).get("meta", "{}"))
    except (SafetensorError, ValueError, OSError, Exception) as e:  # noqa: BLE001
        raise CheckpointError(f"checkpoint unreadable: {path} ({type(e).__name__}: {e})") from e


def config_to_dict(config) -> dict:
    if not is_dataclass(config):
        raise TypeError("config must be a dataclass")
    return asdict(config)


def config_from_dict(cls, data: dict):
    """Rebuild a frozen config dataclass, ignoring unknown keys, with tuples restored."""
    names = {f.name: f for f in fields(cls)}
    kwargs = {}
    for k, v in data.items():
        if k in names:
            kwargs[k] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


def load_state_dict_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], path) -> None:
    """``load_state_dict`` that names the file and the mismatch instead of a bare traceback."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"missing {missing[:3]}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:3]}")
        if wrong:
            k = wrong[0]
            detail.append(f"shape of {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
        raise CheckpointError(f"checkpoint does not fit the model: {path}: " + "; ".join(detail))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


# ----------------------------------------------------------------------------- model weights


def save_weights(path, model: torch.nn.Module, cfg, extra: dict | None = None, dtype=torch.float16) -> None:
    """Final weights for shipping: floating tensors in ``dtype`` (fp16 halves the size), the
    config (a ``TrainConfig``) and ``extra`` (the manifest) in the header."""
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    save_tensors(path, tensors, {"config": config_to_dict(cfg), **(extra or {})})


def load_weights(path) -> tuple[torch.nn.Module, object, dict]:
    """(model in eval mode, float32; its ``TrainConfig``; the header) from a ``model.safetensors``
    written by training. The network is rebuilt from the config, as nanoGPT does."""
    from .config import TrainConfig, build_model

    tensors, meta = load_tensors(path)
    if "config" not in meta:
        raise CheckpointError(f"no config in {path}: not a Diffusion Lab model file")
    try:
        cfg = config_from_dict(TrainConfig, meta["config"])
    except TypeError as e:
        raise CheckpointError(f"config in {path} is not readable: {e}") from e
    model = build_model(cfg)
    load_state_dict_checked(model, tensors, path)
    return model.float().eval(), cfg, meta


# ----------------------------------------------------------------------------- training state


def save_train_state(path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched, cfg,
                     counters: dict, ema: torch.nn.Module | None = None) -> None:
    """Everything a run needs to continue exactly: model, Adam moments, LR scheduler, the EMA of
    the weights when the run keeps one, the config and ``counters`` (epoch, step_in_epoch,
    global_step, elapsed_s)."""
    opt_tensors, opt_meta = _optimizer_tensors(opt)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()} | opt_tensors
    if ema is not None:
        tensors |= {f"ema.{k}": v for k, v in ema.state_dict().items()}
    meta = {"config": config_to_dict(cfg), **counters, "optimizer": opt_meta,
            "lr_scheduler": sched.state_dict() if sched is not None else None}
    save_tensors(path, tensors, meta)


def load_train_state(path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched,
                     ema: torch.nn.Module | None = None) -> dict:
    """Restore what ``save_train_state`` wrote into ``model``, ``opt``, ``sched`` and ``ema``;
    the header."""
    tensors, meta = load_tensors(path)
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    load_state_dict_checked(model, model_state, path)
    if ema is not None:
        load_state_dict_checked(ema, {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}, path)
    try:
        _load_optimizer(opt, tensors, meta["optimizer"])
        if sched is not None and meta.get("lr_scheduler"):
            sched.load_state_dict(meta["lr_scheduler"])
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"checkpoint optimizer state unreadable: {path}: {e}") from e
    return meta


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
