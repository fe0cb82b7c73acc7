"""Finding DeepFloyd IF's weights, and every failure a user can fix, in plain words.

``resolve_model`` turns a Hub id (read from the Hugging Face cache, downloaded only when allowed)
or a local folder in diffusers' layout into a folder; ``translate_errors`` turns Hub, diffusers and
CUDA exceptions into ``DeepFloydError`` subclasses whose message says what happened and what to do
(licence, token, offline, memory). Imports ``huggingface_hub`` only inside functions.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from .. import device as devices

DEFAULT_MODEL_ID = "DeepFloyd/IF-I-XL-v1.0"
MODEL_IDS = (DEFAULT_MODEL_ID, "DeepFloyd/IF-I-L-v1.0", "DeepFloyd/IF-I-M-v1.0")
_IGNORE = ["*.bin", "*.ckpt", "*.msgpack", "*.h5", "*.onnx", "*.pb"]


class DeepFloydError(RuntimeError):
    """Something the user can fix; the message says what happened and what to do."""


class ModelNotFoundError(DeepFloydError):
    pass


class GatedModelError(DeepFloydError):
    pass


class TokenMissingError(DeepFloydError):
    pass


class NoGPUError(DeepFloydError):
    pass


class OutOfGPUMemoryError(DeepFloydError):
    pass


class EmbeddingsMissingError(DeepFloydError):
    pass


class EmbeddingShapeError(DeepFloydError):
    pass


class TextEncoderError(DeepFloydError):
    pass


class SlowOnCPUWarning(UserWarning):
    pass


# ----------------------------------------------------------------------------- finding weights


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def model_key(model: str | os.PathLike) -> str:
    """A folder name for the embedding cache: "DeepFloyd/IF-I-XL-v1.0" -> "DeepFloyd--IF-I-XL-v1.0"."""
    p = Path(model).expanduser()
    name = p.resolve().name if p.is_dir() else str(model).strip("/").replace("/", "--")
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "model"


def _looks_like_path(text: str) -> bool:
    """Hub ids are "org/name"; anything else (absolute, relative, no org) is meant as a folder."""
    return text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") != 1


def _weights_variant(folder: Path, wanted: str | None) -> str | None:
    """``wanted`` ("fp16") if the folder has those weight files, else None (the default files)."""
    if wanted and folder.is_dir() and any(f".{wanted}" in f.name for f in folder.iterdir()):
        return wanted
    return None


def _snapshot_download(repo_id: str, **kwargs) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, **kwargs)


def resolve_model(
    model: str | os.PathLike,
    components: Sequence[str] = ("unet", "scheduler"),
    *,
    variant: str | None = "fp16",
    offline: bool | None = None,
    token: str | None = None,
) -> Path:
    """A local folder in diffusers' layout holding ``components``: the folder itself, or the
    Hugging Face cache snapshot of a Hub id (downloaded unless offline)."""
    path = Path(model).expanduser()
    if path.is_dir():
        missing = [c for c in components if not (path / c).is_dir()]
        if missing:
            raise ModelNotFoundError(
                f"{path} has no {', '.join(m + '/' for m in missing)} subfolder. Point --model-path at a "
                f"folder in diffusers' layout with {', '.join(c + '/' for c in components)} (a copy of "
                f"the Hub repository), or at a Hub id such as {DEFAULT_MODEL_ID}"
                + (", or import precomputed embeddings." if "text_encoder" in missing else ".")
            )
        return path
    if _looks_like_path(str(model)):
        raise ModelNotFoundError(
            f"model folder {path} does not exist. Give an existing folder in diffusers' layout "
            f"(model_index.json, unet/, scheduler/) or a Hub id such as {DEFAULT_MODEL_ID}."
        )
    patterns = ["model_index.json"]
    for c in components:
        if c in ("unet", "text_encoder"):
            weights = (
                [f"{c}/*.{variant}*", f"{c}/*.index.{variant}.json"] if variant else [f"{c}/*.safetensors*"]
            )
            patterns += [f"{c}/config.json", *weights]
        else:
            patterns.append(f"{c}/*")
    offline = is_offline() if offline is None else offline
    with translate_errors(str(model)):
        folder = Path(
            _snapshot_download(
                str(model),
                allow_patterns=patterns,
                ignore_patterns=_IGNORE,
                local_files_only=offline,
                token=token,
            )
        )
    weighted = [c for c in components if c in ("unet", "text_encoder")]
    if variant and any(_weights_variant(folder / c, variant) is None for c in weighted):
        return resolve_model(model, components, variant=None, offline=offline, token=token)
    return folder


def _find(exc: BaseException | None, types) -> BaseException | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, types):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _has_token() -> bool:
    from huggingface_hub import get_token

    return bool(get_token())


@contextmanager
def translate_errors(model: str) -> Iterator[None]:
    """Turn Hub, diffusers and CUDA exceptions (also when wrapped by diffusers) into DeepFloydError."""
    try:
        yield
    except DeepFloydError:
        raise
    except Exception as e:
        from huggingface_hub import errors as hf

        page = f"https://huggingface.co/{model}"
        if _find(e, torch.cuda.OutOfMemoryError):
            raise OutOfGPUMemoryError(_oom_message()) from e
        if _find(e, (hf.GatedRepoError, hf.LocalTokenNotFoundError)):
            if not _has_token():
                raise TokenMissingError(
                    f"{model} is a gated model and no Hugging Face token was found. Accept the DeepFloyd "
                    f"IF licence at {page} while logged in, create a read token at "
                    "https://huggingface.co/settings/tokens, then run `hf auth login` or set HF_TOKEN."
                ) from e
            raise GatedModelError(
                f"access to {model} is restricted: the account of your Hugging Face token has not "
                f"accepted the DeepFloyd IF licence. Open {page}, log in with that account, accept the "
                "licence, then try again (access is usually granted at once)."
            ) from e
        if _find(e, hf.LocalEntryNotFoundError):
            raise ModelNotFoundError(
                f"{model} is not in the Hugging Face cache and downloading is off (HF_HUB_OFFLINE is set "
                "or the Hub cannot be reached). Download it once with network access (unset "
                "HF_HUB_OFFLINE), or pass --model-path to a local folder with the weights."
            ) from e
        if _find(e, hf.RepositoryNotFoundError):
            raise ModelNotFoundError(
                f"the Hub has no repository {model!r} (or it is private). Check the id (e.g. "
                f"{', '.join(MODEL_IDS)}) or pass a local folder."
            ) from e
        if isinstance(e, OSError):
            raise ModelNotFoundError(
                f"could not load {model}: {e}. Check that the folder holds complete diffusers weights "
                "(unet/, scheduler/) or re-download it."
            ) from e
        raise


def _oom_message() -> str:
    free = ""
    if torch.cuda.is_available():
        f, total = torch.cuda.mem_get_info()
        free = f" ({f / 2**30:.1f} of {total / 2**30:.1f} GiB free)"
    return (
        f"the GPU ran out of memory{free}. IF-I-XL needs about 10 GiB in fp16; close other GPU "
        "programs, use fewer images per request, or pick a smaller model (DeepFloyd/IF-I-L-v1.0, "
        "DeepFloyd/IF-I-M-v1.0)."
    )


def pick_deepfloyd_device(device: str = "auto", allow_cpu: bool = True) -> torch.device:
    """``engine.device.pick_device``, with IF's own words: CUDA missing is a ``NoGPUError``; the
    CPU works (float32) but is slow, hence the warning (or a refusal without ``allow_cpu``)."""
    try:
        dev = devices.pick_device(device)
    except ValueError:
        raise NoGPUError(
            "no CUDA GPU is available to PyTorch. Run on a machine with an NVIDIA GPU and a CUDA build "
            "of torch, or use --device cpu (float32, minutes per image)."
        ) from None
    if dev.type == "cpu":
        if not allow_cpu:
            raise NoGPUError(
                "DeepFloyd IF needs a GPU here and none is available; use the built-in model, or load "
                "with allow_cpu=True (float32 on the CPU: minutes per image)."
            )
        warnings.warn(
            "DeepFloyd IF on the CPU runs in float32 and is slow (minutes per 64x64 image with IF-I-XL).",
            SlowOnCPUWarning,
            stacklevel=3,
        )
    return dev
