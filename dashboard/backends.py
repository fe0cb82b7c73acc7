"""Which backend the Part A pages use: the built-in MNIST DDPM, DeepFloyd IF, or a precomputed pack.

The sidebar (``dashboard/app.py``) writes the choice into session state; pages, which also run
on their own, call ``resolve()``. It returns an ``Active``: the ``BackendKey`` the cached results
are keyed by and the backend that answers (``dashboard.parta.LiveBackend`` for a model that runs
here, ``dashboard.pack.PackBackend`` for a pack; both answer the same calls). Anything a user
can fix (``DeepFloydError``, ``PackError``, no GPU, no weights, no prompt embeddings) becomes
``Active.error``: the page shows that message and runs on the built-in backend instead. Never a
stack trace.

Convention (DDPM, Part A): x_0 is clean and t counts down from 999, as for the built-in model.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dashboard import cache, ui
from dashboard.cache import BackendKey, DeepFloydConfig
from dashboard.pack import PACK_FIX
from engine.adapters import MNISTDDPM
from engine.data import CACHE_DIR
from engine.deepfloyd.model import DEFAULT_MODEL_ID, DEFAULT_PROMPT, EMBEDDINGS_DIR, NULL_PROMPT

MNIST, DEEPFLOYD, PACK = "mnist", "deepfloyd", "pack"
CHOICES = {MNIST: "Built-in MNIST DDPM", DEEPFLOYD: "DeepFloyd IF", PACK: "Precomputed pack"}
DEFAULT_BACKEND = MNIST
MNIST_LABEL = "Built-in MNIST DDPM (ddpm-class)"
MNIST_SPEC = MNISTDDPM.spec
__all__ = ["PACK_FIX"]


def embeddings_dir() -> Path:
    """Prompt-embedding store (``DIFFLAB_EMBEDDINGS_DIR`` overrides; tests point it elsewhere)."""
    return Path(os.environ.get("DIFFLAB_EMBEDDINGS_DIR", EMBEDDINGS_DIR))


def packs_dir() -> Path:
    return Path(os.environ.get("DIFFLAB_PACKS_DIR", CACHE_DIR / "packs"))


def list_packs() -> list[str]:
    root = packs_dir()
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []


def pack_path(text: str) -> Path:
    """An absolute folder, ``cache/packs/NAME`` relative to the repository, or a name under it.

    A relative name never leaves the packs folder: ``../../etc`` raises ``PackError`` (checked
    on the text, so a pack the teacher symlinked into cache/packs still works). Absolute paths
    are the operator's choice (see docs/hardening.md)."""
    from engine.packs import PackError

    p = Path(text.strip()).expanduser()
    if p.is_absolute():
        return p
    if p.parts[:2] == ("cache", "packs"):
        p = Path(*p.parts[2:]) if len(p.parts) > 2 else Path(".")
    if ".." in p.parts or not os.path.normpath(p).strip("."):
        raise PackError(f"pack name {text!r} must name a folder inside {packs_dir()}")
    return packs_dir() / p


def _stamp(folder: Path) -> tuple:
    files = [folder / "manifest.json", *sorted((folder / "figures").glob("*"))]
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())


@dataclass(frozen=True, eq=False)
class Active:
    """The backend a page runs on. ``requested`` is the sidebar's choice, ``kind`` what is used;
    ``error`` says why they differ (the page shows it). ``backend`` answers the page's calls,
    ``key`` keys their cached results; ``model`` is the DeepFloyd adapter, ``pack`` the pack."""

    requested: str
    kind: str
    key: BackendKey
    error: str | None = None
    model: object | None = None
    pack: object | None = None
    notes: tuple[str, ...] = ()

    @property
    def backend(self):
        """``LiveBackend`` or ``PackBackend``; loading the built-in model may raise
        ``ModelNotFound`` (``ui.part_a`` says how to fix it)."""
        return cache.backend(self.key)


def requested() -> str:
    b = st.session_state.get("backend", MNIST)
    return b if b in CHOICES else MNIST


def deepfloyd_config() -> DeepFloydConfig:
    s = st.session_state
    return DeepFloydConfig(
        model=str(s.get("df_model", DEFAULT_MODEL_ID)).strip() or DEFAULT_MODEL_ID,
        embeddings_dir=str(embeddings_dir()),
        allow_cpu=bool(s.get("df_allow_cpu", False)),
        offline=not bool(s.get("df_download", False)),
    )


def _builtin(requested_kind: str = MNIST, error: str | None = None) -> Active:
    return Active(requested_kind, MNIST, BackendKey(MNIST, str(cache.models_dir())), error=error)


def _embeddings_file() -> tuple[str, tuple] | None:
    """The embeddings file to import: an upload (saved under cache/embeddings/uploads) or a path."""
    up = st.session_state.get("df_embeds_upload")
    if up is not None and hasattr(up, "getvalue"):
        data = up.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        suffix = ".safetensors" if str(getattr(up, "name", "")).endswith(".safetensors") else ".pth"
        path = embeddings_dir() / "uploads" / f"{digest[:16]}{suffix}"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return str(path), (digest,)
    text = str(st.session_state.get("df_embeds_path", "") or "").strip()
    if not text:
        return None
    p = Path(text).expanduser()
    stamp = (p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else (time.time(),)
    return str(p), stamp


def _resolve_deepfloyd() -> Active:
    from engine.deepfloyd.model import DeepFloydError, ModelNotFoundError, NoGPUError

    cfg = deepfloyd_config()
    try:
        model = ui.run_with_progress(cache.deepfloyd, cfg, label="Loading DeepFloyd IF stage I…")
        notes = []
        emb = _embeddings_file()
        if emb is not None:
            got = cache.imported_prompts(cfg, *emb)
            notes.append(f"Imported {len(got)} prompt embeddings from {Path(emb[0]).name}.")
        if NULL_PROMPT not in model.embeddings:
            raise DeepFloydError(
                f"the prompt-embedding store {model.embeddings.folder} has no embedding of the empty "
                "prompt \"\" (classifier-free guidance's unconditional branch). Import the course's "
                "prompt_embeds_dict.pth in the sidebar, or run: python -m engine embed --model-path "
                f'{cfg.model} --encode-missing --prompt "" --prompt "{DEFAULT_PROMPT}"'
            )
        if not model.spec.prompts:
            raise DeepFloydError(
                f"the prompt-embedding store {model.embeddings.folder} holds no prompt besides the "
                "empty one. Import prompt embeddings in the sidebar or encode prompts with "
                "python -m engine embed."
            )
        if model.device.type == "cpu":
            notes.append("DeepFloyd IF runs on the CPU in float32: expect minutes per 64×64 image.")
        key = BackendKey(DEEPFLOYD, cfg.model, cfg)
        return Active(DEEPFLOYD, DEEPFLOYD, key, model=model, notes=tuple(notes))
    except DeepFloydError as e:
        hint = ""
        if isinstance(e, NoGPUError):
            hint = " In this app: turn on “Allow the CPU (very slow)” in the sidebar."
        elif isinstance(e, ModelNotFoundError) and cfg.offline and "/" in cfg.model:
            hint = " In this app: turn on “Download from the Hub if missing” in the sidebar."
        return _builtin(DEEPFLOYD, f"DeepFloyd IF is not available: {e}{hint}")
    except Exception as e:  # noqa: BLE001 -- diffusers/torch failures we did not foresee: say it, fall back
        return _builtin(DEEPFLOYD, f"DeepFloyd IF could not be loaded ({type(e).__name__}: {e}).")


def _resolve_pack() -> Active:
    from engine.packs import PackError

    text = str(st.session_state.get("pack_path", "") or "").strip()
    if not text:
        return _builtin(PACK, f"no pack chosen. Give a folder under {packs_dir()} or an absolute path; "
                              f"make one on a GPU machine with: {PACK_FIX}")
    try:
        folder = pack_path(text)
        key = BackendKey(PACK, str(folder), stamp=_stamp(folder) if folder.is_dir() else ())
        return Active(PACK, PACK, key, pack=cache.open_pack(key.where, key.stamp))
    except PackError as e:
        return _builtin(PACK, f"this pack cannot be used: {e}")
    except Exception as e:  # noqa: BLE001
        return _builtin(PACK, f"this pack cannot be used ({type(e).__name__}: {e}).")


def resolve() -> Active:
    """The backend of this run, loading (cached) what the sidebar asked for."""
    choice = requested()
    if choice == DEEPFLOYD:
        return _resolve_deepfloyd()
    if choice == PACK:
        return _resolve_pack()
    return _builtin()


def pack_label(pack) -> str:
    created = str(pack.manifest.get("created", "?")).replace("T", " ").replace("Z", " UTC")
    s = pack.settings
    return (
        f"Precomputed by {pack.model_id} on {created}. Prompts: "
        + ", ".join(f"“{p}”" for p in s.get("prompts", ()))
        + f"; seeds: {', '.join(str(v) for v in s.get('seeds', ()))}; stride {s.get('stride')}, "
        f"γ = {s.get('guidance')}. Nothing is recomputed: controls are limited to what the pack holds."
    )


def prompt_options(spec) -> list[str]:
    """Stored prompts, the default first; "" (the null prompt) is not listed."""
    prompts = list(spec.prompts)
    if DEFAULT_PROMPT in prompts:
        prompts.remove(DEFAULT_PROMPT)
        prompts.insert(0, DEFAULT_PROMPT)
    return prompts


def prompt_label(p: str) -> str:
    return "(no prompt: the null branch)" if p == NULL_PROMPT else p
