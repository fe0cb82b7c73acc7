"""Which model the Part A pages use: the built-in MNIST DDPM, DeepFloyd IF, or a precomputed pack.

The sidebar (``dashboard/app.py``) writes the choice into session state; pages, which also run
on their own, call ``resolve()``. DeepFloyd IF is loaded once per settings with
``st.cache_resource`` (read-only weights shared by every session); a pack is opened and verified
once per set of file stamps. Anything a user can fix (``DeepFloydError``, ``PackError``, no GPU,
no weights, no prompt embeddings) becomes ``Active.error``: the page shows that message and runs
on the built-in backend instead. Never a stack trace.

Convention (DDPM, Part A): x_0 is clean and t counts down from 999, as for the built-in model.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from engine.data import CACHE_DIR
from engine.deepfloyd import DEFAULT_MODEL_ID, DEFAULT_PROMPT, EMBEDDINGS_DIR, NULL_PROMPT

MNIST, DEEPFLOYD, PACK = "mnist", "deepfloyd", "pack"
CHOICES = {
    MNIST: "Built-in MNIST DDPM",
    DEEPFLOYD: "DeepFloyd IF",
    PACK: "Precomputed pack",
}
PACK_FIX = "python -m engine precompute --backend deepfloyd --model-path MODEL --pack cache/packs/NAME"


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


@dataclass(frozen=True)
class DeepFloydConfig:
    """What a loaded DeepFloyd IF depends on; also part of every cached result's key."""

    model: str = DEFAULT_MODEL_ID
    embeddings_dir: str = ""
    allow_cpu: bool = False
    offline: bool = True


@st.cache_resource(max_entries=2, show_spinner="Loading DeepFloyd IF stage I…")
def deepfloyd(cfg: DeepFloydConfig):
    """The shared, read-only ``DeepFloydIF`` adapter; raises ``DeepFloydError``."""
    from engine.deepfloyd import SlowOnCPUWarning, load_deepfloyd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SlowOnCPUWarning)  # said on the page instead, every run
        return load_deepfloyd(
            cfg.model,
            device="auto",
            allow_cpu=cfg.allow_cpu,
            embeddings_dir=cfg.embeddings_dir or None,
            offline=cfg.offline,
        )


@st.cache_resource(max_entries=16, show_spinner="Importing prompt embeddings…")
def imported_prompts(cfg: DeepFloydConfig, path: str, stamp: tuple) -> tuple[str, ...]:
    """Import a prompt -> embedding file into the model's store once per file version."""
    return tuple(deepfloyd(cfg).embeddings.import_file(path))


def _stamp(folder: Path) -> tuple:
    files = [folder / "manifest.json", *sorted((folder / "figures").glob("*"))]
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())


@st.cache_resource(max_entries=8, show_spinner="Opening and verifying the pack…")
def _open_pack(path: str, stamp: tuple):
    from engine.packs import open_pack

    return open_pack(path)


def open_pack(path: str | Path):
    """A verified, read-only ``engine.packs.Pack`` (re-verified when any of its files change)."""
    folder = Path(path)
    return _open_pack(str(folder), _stamp(folder) if folder.is_dir() else ())


@dataclass(frozen=True, eq=False)
class Active:
    """The backend a page runs on. ``requested`` is the sidebar's choice, ``backend`` what is
    used; ``error`` says why they differ (the page shows it)."""

    requested: str
    backend: str
    error: str | None = None
    df: DeepFloydConfig | None = None
    model: object | None = None  # the DeepFloydIF adapter
    pack: object | None = None  # the engine.packs.Pack
    notes: tuple[str, ...] = ()

    @property
    def fell_back(self) -> bool:
        return self.error is not None


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
    from engine.deepfloyd import DeepFloydError, ModelNotFoundError, NoGPUError

    cfg = deepfloyd_config()
    try:
        model = deepfloyd(cfg)
        notes = []
        emb = _embeddings_file()
        if emb is not None:
            got = imported_prompts(cfg, *emb)
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
        return Active(DEEPFLOYD, DEEPFLOYD, df=cfg, model=model, notes=tuple(notes))
    except DeepFloydError as e:
        hint = ""
        if isinstance(e, NoGPUError):
            hint = " In this app: turn on “Allow the CPU (very slow)” in the sidebar."
        elif isinstance(e, ModelNotFoundError) and cfg.offline and "/" in cfg.model:
            hint = " In this app: turn on “Download from the Hub if missing” in the sidebar."
        return Active(DEEPFLOYD, MNIST, error=f"DeepFloyd IF is not available: {e}{hint}")
    except Exception as e:  # noqa: BLE001 -- diffusers/torch failures we did not foresee: say it, fall back
        return Active(DEEPFLOYD, MNIST, error=f"DeepFloyd IF could not be loaded ({type(e).__name__}: {e}).")


def _resolve_pack() -> Active:
    from engine.packs import PackError

    text = str(st.session_state.get("pack_path", "") or "").strip()
    if not text:
        return Active(
            PACK,
            MNIST,
            error=f"no pack chosen. Give a folder under {packs_dir()} or an absolute path; "
            f"make one on a GPU machine with: {PACK_FIX}",
        )
    try:
        return Active(PACK, PACK, pack=open_pack(pack_path(text)))
    except PackError as e:
        return Active(PACK, MNIST, error=f"this pack cannot be used: {e}")
    except Exception as e:  # noqa: BLE001
        return Active(PACK, MNIST, error=f"this pack cannot be used ({type(e).__name__}: {e}).")


def resolve() -> Active:
    """The backend of this run, loading (cached) what the sidebar asked for."""
    choice = requested()
    if choice == DEEPFLOYD:
        return _resolve_deepfloyd()
    if choice == PACK:
        return _resolve_pack()
    return Active(MNIST, MNIST)


# ----------------------------------------------------------------------------- pages


def show_status(active: Active) -> None:
    """At the top of a Part A page: why we fell back, or what the pack is."""
    if active.error:
        st.error(active.error)
        st.warning(f"Falling back to the built-in backend ({CHOICES[MNIST]}): this page shows MNIST digits.")
    for note in active.notes:
        st.caption(note)
    if active.pack is not None:
        st.info(pack_label(active.pack), icon=":material/inventory_2:")


def pack_label(pack) -> str:
    created = str(pack.manifest.get("created", "?")).replace("T", " ").replace("Z", " UTC")
    s = pack.settings
    return (
        f"Precomputed by {pack.model_id} on {created}. Prompts: "
        + ", ".join(f"“{p}”" for p in s.get("prompts", ()))
        + f"; seeds: {', '.join(str(v) for v in s.get('seeds', ()))}; stride {s.get('stride')}, "
        f"γ = {s.get('guidance')}. Nothing is recomputed: controls are limited to what the pack holds."
    )


def pack_figure(pack, name: str):
    """The figure, or None after saying the pack lacks it."""
    if name not in pack.figures:
        st.info(
            f"This pack has no “{name}” figure (it has {', '.join(pack.figures)}). Recompute it "
            f"with --figures {name}: {PACK_FIX}"
        )
        return None
    return pack.figure(name)


def pack_seed(pack, key: str) -> tuple[int, int]:
    """A seed picker limited to the pack's seeds: (index into the seed axis, seed)."""
    seeds = [int(v) for v in pack.settings.get("seeds", (0,))]
    if len(seeds) == 1:
        st.caption(f"Seed {seeds[0]} (the only one in this pack).")
        return 0, seeds[0]
    st.session_state[key] = st.session_state.get(key, seeds[0])
    if st.session_state[key] not in seeds:
        st.session_state[key] = seeds[0]
    seed = int(st.selectbox("Seed (from the pack)", seeds, key=key))
    return seeds.index(seed), seed


def prompt_options(model) -> list[str]:
    """Stored prompts, the default first; "" (the null prompt) is not listed."""
    prompts = list(model.spec.prompts)
    if DEFAULT_PROMPT in prompts:
        prompts.remove(DEFAULT_PROMPT)
        prompts.insert(0, DEFAULT_PROMPT)
    return prompts


def prompt_label(p: str) -> str:
    return "(no prompt: the null branch)" if p == NULL_PROMPT else p
