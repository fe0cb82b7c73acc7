"""Results kept on disk, so that no page view waits for a computation a server already did.

``st.cache_data`` keeps results in one server's memory: a fresh server, or each replica behind
``scripts/serve_class.sh``, would compute every page's default view again (up to ~8 CPU-s each
on a 2-core laptop). ``on_disk`` sits under ``st.cache_data`` and keeps each result as one
safetensors file (arrays as tensors, the rest as JSON in its header; never a pickle) in
``cache/app/views`` (``DIFFLAB_VIEW_CACHE_DIR``), named by the hash of

- the function's name and its arguments (a model's folder and mtimes are left out: the stamps
  below stand for them);
- each model it reads: the SHA-256 of its ``model.safetensors`` and ``manifest.json``, so a
  retrained model never meets an old entry;
- the code that computes (``CODE_FILES``: every ``.py`` under ``engine/`` and the dashboard's
  computing modules), so an entry is never served after that code changed.

At start-up the app fills the folder in the background (``start_fill``: one niced child
process, ``python -m dashboard.viewfill``, that opens every page once; replicas sharing the
folder leave it to the first). The oldest entries go past ``MAX_ENTRIES``.
``DIFFLAB_VIEW_CACHE=off`` turns the disk layer off, ``DIFFLAB_VIEW_CACHE_FILL=off`` the fill.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from streamlit.logger import get_logger

from engine.checkpoints import CheckpointError, load_tensors, save_tensors

_log = get_logger(__name__)
ROOT = Path(__file__).resolve().parent.parent
CODE_FILES = ("engine/**/*.py", "dashboard/parta/*.py", "dashboard/partb.py", "dashboard/pack.py",
              "dashboard/previews.py", "dashboard/likelihood.py", "dashboard/cache.py",
              "dashboard/cache_partb.py", "dashboard/viewcache.py")
MAX_ENTRIES = 400  # in the app's folder; ~0.1-1 MB each
VERSION = 1
STATS: Counter = Counter()  # "hit", "miss", "stored", "unreadable": for tests and the benchmark
FILL_STATE = "fill.json"  # what the last fill did, and for which code and models
_fill_lock = threading.Lock()
_fill_started = False


def enabled() -> bool:
    return os.environ.get("DIFFLAB_VIEW_CACHE", "on") != "off"


def app_folder() -> Path:
    """Where entries live: ``DIFFLAB_VIEW_CACHE_DIR``, else ``<app dir>/views`` (cache/app/views)."""
    from dashboard.partb import app_dir

    return Path(os.environ.get("DIFFLAB_VIEW_CACHE_DIR") or app_dir() / "views")


# ----------------------------------------------------------------------------- stamps


@functools.lru_cache(maxsize=1)
def code_stamp() -> str:
    """SHA-256 over the computing code (``CODE_FILES``), once per process."""
    h = hashlib.sha256()
    for pattern in CODE_FILES:
        for path in sorted(ROOT.glob(pattern)):
            h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=64)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_stamp(name: str) -> str | None:
    """SHA-256 of model ``name``'s weights and manifest in the models folder (re-read when a file
    changes size or mtime); None when the model is missing."""
    from dashboard.partb import models_dir

    parts = []
    for file in ("model.safetensors", "manifest.json"):
        path = models_dir() / name / file
        try:
            info = path.stat()
        except OSError:
            if file == "model.safetensors":
                return None
            continue
        parts.append(_file_hash(str(path), info.st_size, info.st_mtime_ns))
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def current_stamps() -> dict:
    """The code's stamp and every model's in the models folder: what a finished fill was for."""
    from dashboard.partb import models_dir

    names = sorted(p.parent.name for p in models_dir().glob("*/model.safetensors"))
    return {"code": code_stamp(), "models": {n: model_stamp(n) for n in names}}


def fill_state() -> dict | None:
    """The last fill's report (``dashboard.viewfill``), or None when there was none."""
    try:
        return json.loads((app_folder() / FILL_STATE).read_text())
    except (OSError, ValueError):
        return None


def start_fill() -> bool:
    """Once per server process: unless the folder was already filled for this code and these
    models, start ``python -m dashboard.viewfill`` in the background (niced; it holds a lock, so
    of several replicas one fills). True when it was started."""
    global _fill_started
    if not enabled() or os.environ.get("DIFFLAB_VIEW_CACHE_FILL", "on") == "off":
        return False
    with _fill_lock:
        if _fill_started:
            return False
        _fill_started = True
    state = fill_state() or {}
    if state.get("state") == "done" and state.get("stamps") == current_stamps():
        return False
    folder = app_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / "fill.log", "ab")  # noqa: SIM115  -- handed to the child
    except OSError as e:
        _log.warning("difflab: view cache folder %s not writable (%s); no background fill", folder, e)
        return False
    with log:
        child = subprocess.Popen([sys.executable, "-m", "dashboard.viewfill"], cwd=ROOT,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    threading.Thread(target=child.wait, name="view-cache-fill", daemon=True).start()  # reaped: no zombie
    _log.info("difflab: filling the view cache in the background (%s)", folder)
    return True


# ----------------------------------------------------------------------------- codec


class Uncacheable(TypeError):
    """A value the codec does not write (an object array, an unknown class): not kept on disk."""


def _registry() -> dict[str, type]:
    """The classes an entry may rebuild: results of the cached functions, nothing else."""
    from dashboard import partb
    from dashboard.parta import contract
    from engine.trajectory import Trajectory

    classes = [Trajectory, contract.DenoiseComparison, contract.HybridResult, partb.DenoiseGrid,
               partb.PureNoiseResult]
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


def encode(obj, tensors: dict[str, torch.Tensor]):
    """``obj`` as a JSON tree, its arrays moved into ``tensors`` (named by position)."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return {"float": repr(obj)}  # NaN and inf survive, exactly
    if isinstance(obj, np.generic):
        return encode(obj.item(), tensors)
    if isinstance(obj, np.ndarray | torch.Tensor):
        kind = "array" if isinstance(obj, np.ndarray) else "tensor"
        if isinstance(obj, np.ndarray):
            if obj.dtype == object or obj.dtype.kind in "USV":
                raise Uncacheable(f"array of {obj.dtype}")
            obj = torch.from_numpy(np.ascontiguousarray(obj))
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().cpu().contiguous()
        return {kind: name}
    if isinstance(obj, list | tuple):
        return {"list" if isinstance(obj, list) else "tuple": [encode(v, tensors) for v in obj]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise Uncacheable("dict with non-string keys")
        return {"dict": {k: encode(v, tensors) for k, v in obj.items()}}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = f"{type(obj).__module__}.{type(obj).__qualname__}"
        fields = {f.name: encode(getattr(obj, f.name), tensors) for f in dataclasses.fields(obj)}
        return {"class": name, "fields": fields}
    raise Uncacheable(type(obj).__name__)


def decode(tree, tensors: dict[str, torch.Tensor], classes: dict[str, type]):
    if not isinstance(tree, dict):
        return tree
    kind, value = next(iter(tree.items()))  # the first key names the kind ("class" has "fields" too)
    if kind == "float":
        return float(value)
    if kind == "array":  # encoded from numpy, so never bf16
        return tensors[value].numpy()
    if kind == "tensor":
        return tensors[value]
    if kind in ("list", "tuple"):
        items = [decode(v, tensors, classes) for v in value]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: decode(v, tensors, classes) for k, v in value.items()}
    if kind == "class":
        cls = classes.get(value)
        if cls is None:
            raise Uncacheable(f"class {value} is not one an entry may rebuild")
        return cls(**{k: decode(v, tensors, classes) for k, v in tree["fields"].items()})
    raise Uncacheable(f"unknown entry kind {kind}")


def key_of(name: str, arguments: dict, models: dict[str, str]) -> str:
    """The entry's file name: hash of the function, its arguments, the models' stamps, the code."""
    tensors: dict[str, torch.Tensor] = {}
    tree = encode(arguments, tensors)
    h = hashlib.sha256(json.dumps([VERSION, name, tree, models, code_stamp()], sort_keys=True).encode())
    for k in sorted(tensors):
        t = tensors[k]
        h.update(f"{k}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return f"{name}-{code_stamp()[:8]}-{h.hexdigest()[:32]}"


def drop_other_code() -> int:
    """Delete the entries another version of the code made (``key_of`` names files
    ``function-codestamp-hash``): they can never be served again. How many went."""
    code, gone = code_stamp()[:8], 0
    for entry in app_folder().glob("*.safetensors"):
        if entry.stem.split("-")[-2] != code:
            entry.unlink(missing_ok=True)
            gone += 1
    return gone


# ----------------------------------------------------------------------------- entries


def load(key: str):
    """The entry ``key``; ``KeyError`` if there is none (an unreadable one counts as none)."""
    path = app_folder() / f"{key}.safetensors"
    if not path.exists():
        raise KeyError(key)
    try:
        tensors, meta = load_tensors(path)
        return decode(json.loads(meta["tree"]), tensors, _registry())
    except (CheckpointError, OSError, KeyError, ValueError, TypeError) as e:
        STATS["unreadable"] += 1
        _log.warning("difflab: view cache entry %s unreadable (%s); computing it again", path, e)
        raise KeyError(key) from e


def store(key: str, value) -> None:
    """Write ``value`` as entry ``key`` in the app's folder (atomically); keep the folder under
    ``MAX_ENTRIES`` by dropping the oldest. A full disk or a value the codec refuses only costs
    the next server a computation."""
    folder = app_folder()
    tensors: dict[str, torch.Tensor] = {}
    try:
        tree = encode(value, tensors)
        save_tensors(folder / f"{key}.safetensors", tensors, {"tree": json.dumps(tree)})
        STATS["stored"] += 1
        entries = sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
        for old in entries[: max(0, len(entries) - MAX_ENTRIES)]:
            old.unlink(missing_ok=True)
    except (Uncacheable, OSError) as e:
        _log.warning("difflab: view cache could not keep %s (%s)", key, e)


def on_disk(models: tuple[str, ...] | Callable[[dict], tuple[str, ...] | None] = (),
            drop: tuple[str, ...] = ()):
    """Decorate a cached function so its results live on disk too. ``models``: the model names it
    reads, or a function of its arguments giving them (None: keep this call off disk, e.g. a
    DeepFloyd backend). ``drop``: arguments the model stamps stand for (a folder, mtimes); those
    starting with "_" (progress callbacks) are always left out."""

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def cached(*args, **kwargs):
            if not enabled():
                return fn(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = {k: v for k, v in bound.arguments.items() if not k.startswith("_") and k not in drop}
            names = models(bound.arguments) if callable(models) else models
            stamps = {n: model_stamp(n) for n in names} if names is not None else None
            if stamps is None or None in stamps.values():
                return fn(*args, **kwargs)
            try:
                key = key_of(fn.__name__, arguments, stamps)
            except Uncacheable:
                return fn(*args, **kwargs)
            try:
                value = load(key)
                STATS["hit"] += 1
                return value
            except KeyError:
                STATS["miss"] += 1
            value = fn(*args, **kwargs)
            store(key, value)
            return value

        return cached

    return decorate
