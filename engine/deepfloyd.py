"""DeepFloyd IF stage I as an engine model (CS180 Part A's model), loaded through diffusers.

The only engine module that imports diffusers, transformers or huggingface_hub, and only inside
functions, so ``import engine`` stays fast. ``load_deepfloyd`` returns ``DeepFloydIF``, a callable
``(x_t, t, cond) -> [eps, v]`` (B, 6, 64, 64) like ``engine.models.MNISTDDPM``: the UNet's six
output channels are the noise estimate and diffusers' "learned_range" variance, which
``engine.denoise.iterative_denoise`` uses. Convention (DDPM): x_0 is clean, t counts down from 999,
pixels in [-1, 1]; abar_t comes from the model's own ``DDPMScheduler`` (its alphas only: diffusers
schedulers mutate themselves, so none is shared between requests).

Text conditioning is a T5-XXL embedding (1, 77, 4096). ``EmbeddingStore`` keeps one safetensors
file per prompt under ``cache/embeddings/<model-key>/<sha256(prompt)>.safetensors``; T5 runs once
(``encode_with_t5``) and is freed, or the course's ``prompt_embeds_dict.pth`` is imported
(``EmbeddingStore.import_file``). The empty prompt "" is classifier-free guidance's null branch.
Every failure a user can fix (licence, token, offline, memory, embeddings) is a ``DeepFloydError``.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoints as ckpt
from .data import CACHE_DIR
from .denoise import DenoiseTrajectory, iterative_denoise
from .guidance import CFGModel
from .models import ModelSpec
from .schedule import Schedule, strided_timesteps

DEFAULT_MODEL_ID = "DeepFloyd/IF-I-XL-v1.0"
MODEL_IDS = (DEFAULT_MODEL_ID, "DeepFloyd/IF-I-L-v1.0", "DeepFloyd/IF-I-M-v1.0")
STAGE2_MODEL_ID = "DeepFloyd/IF-II-L-v1.0"
DEFAULT_PROMPT = "a high quality photo"
NULL_PROMPT = ""
MAX_LENGTH = 77
EMBEDDINGS_DIR = CACHE_DIR / "embeddings"
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


def pick_device(device: str = "auto", allow_cpu: bool = True) -> torch.device:
    """ "auto" -> CUDA when available. CPU works (float32) but is slow, hence the warning."""
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
    )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NoGPUError(
            "no CUDA GPU is available to PyTorch. Run on a machine with an NVIDIA GPU and a CUDA build "
            "of torch, or use --device cpu (float32, minutes per image)."
        )
    if dev.type == "cpu":
        if not allow_cpu:
            raise NoGPUError(
                "DeepFloyd IF needs a GPU here and none is available; use the built-in model, or load "
                "with allow_cpu=True (float32 on the CPU: minutes per image)."
            )
        warnings.warn(
            "DeepFloyd IF on the CPU runs in float32 and is slow (minutes per 64x64 image with IF-I-XL).",
            SlowOnCPUWarning,
            stacklevel=2,
        )
    return dev


# ----------------------------------------------------------------------------- embeddings


@dataclass(frozen=True)
class EmbeddingStore:
    """T5 prompt embeddings (1, length, width), one atomic safetensors file per prompt."""

    root: Path
    key: str
    width: int
    length: int = MAX_LENGTH

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.key

    def path(self, prompt: str) -> Path:
        return self.folder / f"{hashlib.sha256(prompt.encode()).hexdigest()}.safetensors"

    def __contains__(self, prompt: str) -> bool:
        return self.path(prompt).is_file()

    def check(self, emb: torch.Tensor, prompt: str, source: str = "") -> torch.Tensor:
        """(length, width) or (1, length, width) -> (1, length, width), else EmbeddingShapeError."""
        if (
            not isinstance(emb, torch.Tensor)
            or emb.ndim not in (2, 3)
            or (emb.ndim == 3 and emb.shape[0] != 1)
        ):
            shape = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
            raise EmbeddingShapeError(self._shape_message(prompt, shape, source))
        emb = emb if emb.ndim == 3 else emb[None]
        if tuple(emb.shape[1:]) != (self.length, self.width) or not emb.is_floating_point():
            raise EmbeddingShapeError(self._shape_message(prompt, tuple(emb.shape), source))
        return emb

    def _shape_message(self, prompt: str, shape, source: str) -> str:
        where = f" in {source}" if source else ""
        return (
            f"the embedding of {prompt!r}{where} has shape {shape}, but this model expects "
            f"[1, {self.length}, {self.width}] (T5 hidden states, max_length {self.length}). The embeddings "
            "were made for a different model or text encoder; re-encode the prompts with this model's T5."
        )

    def put(self, prompt: str, emb: torch.Tensor, source: str = "t5") -> None:
        emb = self.check(emb, prompt, source)
        ckpt.save_tensors(
            self.path(prompt),
            {"prompt_embeds": emb.detach().to("cpu")},
            {"prompt": prompt, "model_key": self.key, "source": source},
        )

    def get(self, prompt: str) -> torch.Tensor:
        if prompt not in self:
            raise EmbeddingsMissingError(
                f"no embedding for the prompt {prompt!r} in {self.folder}. Import the course's "
                "prompt_embeds_dict.pth (--prompt-embeds FILE) or encode the prompt with T5 "
                "(python -m engine embed --model-path MODEL --prompt ...)."
            )
        try:
            tensors, _ = ckpt.load_tensors(self.path(prompt))
        except ckpt.CheckpointError as e:
            raise EmbeddingsMissingError(f"{e}. Delete the file and encode {prompt!r} again.") from e
        return self.check(tensors.get("prompt_embeds"), prompt, str(self.path(prompt)))

    def prompts(self) -> list[str]:
        from safetensors import safe_open

        found = []
        for f in sorted(self.folder.glob("*.safetensors")):
            try:
                with safe_open(str(f), framework="pt") as h:
                    found.append(json.loads((h.metadata() or {}).get("meta", "{}"))["prompt"])
            except Exception:  # noqa: BLE001 -- a torn or foreign file is simply not listed
                continue
        return sorted(found)

    def import_file(self, path: str | os.PathLike) -> list[str]:
        """Import a dict prompt -> embedding (.pth via torch.load(weights_only=True), or
        .safetensors). All entries are validated before any is written; returns the prompts."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise EmbeddingsMissingError(
                f"prompt embeddings file not found: {path}. Give the course's prompt_embeds_dict.pth "
                "or a safetensors file of prompt -> [1, 77, 4096] tensors."
            )
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                data = load_file(str(path))
            else:
                data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise EmbeddingsMissingError(
                f"cannot read prompt embeddings from {path} ({type(e).__name__}: {str(e)[:200]}). It must "
                "be a safetensors file or a torch file holding a plain dict of prompt -> tensor."
            ) from e
        if not isinstance(data, dict) or not data or not all(isinstance(k, str) for k in data):
            raise EmbeddingsMissingError(f"{path} does not hold a non-empty dict of prompt -> tensor")
        checked = {p: self.check(v, p, str(path)) for p, v in data.items()}
        for p, v in checked.items():
            self.put(p, v, source=f"import:{path.name}")
        return list(checked)


# ----------------------------------------------------------------------------- the adapter


@dataclass(eq=False)
class DeepFloydIF:
    """IF stage I as an engine model: ``(x_t, t, cond) -> [eps, v]`` (B, 6, H, W), float32 on
    x_t's device. ``cond`` is (B or 1, 77, width) T5 hidden states; None means the null prompt.

    One instance serves every user: the weights are read-only, GPU work is serialized by a lock,
    randomness comes from the callers' generators.
    """

    unet: torch.nn.Module
    schedule: Schedule
    embeddings: EmbeddingStore
    model_id: str
    device: torch.device
    dtype: torch.dtype
    scheduler_config: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            self.model_id,
            "ddpm",
            int(self.unet.config.sample_size),
            3,
            (-1.0, 1.0),
            "text",
            prompts=tuple(p for p in self.embeddings.prompts() if p != NULL_PROMPT),
        )

    @property
    def embed_width(self) -> int:
        return self.embeddings.width

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        b = x_t.shape[0]
        cond = self.null_cond(b) if cond is None else cond
        if cond.ndim != 3 or cond.shape[-1] != self.embed_width or cond.shape[0] not in (1, b):
            raise EmbeddingShapeError(
                f"conditioning has shape {tuple(cond.shape)}; this model expects ({b}, "
                f"{self.embeddings.length}, {self.embed_width}) prompt embeddings from adapter.encode()."
            )
        cond = cond.expand(b, *cond.shape[1:]) if cond.shape[0] != b else cond
        t = torch.as_tensor(t, dtype=torch.long).reshape(-1).expand(b)
        with self._lock, torch.inference_mode(), translate_errors(self.model_id):
            out = self.unet(
                x_t.to(self.device, self.dtype),
                t.to(self.device),
                encoder_hidden_states=cond.to(self.device, self.dtype),
            ).sample
            return out.float().to(x_t.device)

    def encode(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """(len(prompts), 77, width) float32 embeddings from the store (never runs T5)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        missing = [p for p in dict.fromkeys(prompts) if p not in self.embeddings]
        if missing:
            raise EmbeddingsMissingError(
                f"no stored embedding for {', '.join(repr(p) for p in missing[:5])} "
                f"(model key {self.embeddings.key}, {self.embeddings.folder}). Import the course's "
                "prompt_embeds_dict.pth (--prompt-embeds FILE) or encode them once with T5: "
                "python -m engine embed --model-path MODEL --prompt PROMPT."
            )
        cache = {p: self.embeddings.get(p) for p in dict.fromkeys(prompts)}
        return torch.cat([cache[p] for p in prompts]).float()

    def null_cond(self, n: int) -> torch.Tensor:
        """The embedding of "" (classifier-free guidance's unconditional branch), (n, 77, width)."""
        null = self.encode([NULL_PROMPT])
        return null.expand(n, *null.shape[1:])

    def new_scheduler(self, timesteps: Sequence[int] | None = None):
        """A fresh diffusers DDPMScheduler with this model's config (per request, never shared),
        with ``set_timesteps(timesteps=strided)`` when given."""
        from diffusers import DDPMScheduler

        sched = DDPMScheduler.from_config(dict(self.scheduler_config))
        if timesteps is not None:
            sched.set_timesteps(timesteps=list(timesteps))
        return sched


def load_deepfloyd(
    model: str | os.PathLike = DEFAULT_MODEL_ID,
    *,
    device: str = "auto",
    dtype: torch.dtype | None = None,
    variant: str | None = "fp16",
    allow_cpu: bool = True,
    embeddings_dir: str | os.PathLike | None = None,
    embeddings_key: str | None = None,
    offline: bool | None = None,
    token: str | None = None,
) -> DeepFloydIF:
    """IF stage I from a Hub id or a local diffusers folder: UNet + its DDPMScheduler's alphas.

    fp16 weights and compute on a GPU; float32 on the CPU (with a SlowOnCPUWarning). The fp16
    weight files are used when present (half the download) and upcast on the CPU.
    """
    dev = pick_device(device, allow_cpu)
    dtype = dtype or (torch.float16 if dev.type == "cuda" else torch.float32)
    folder = resolve_model(model, ("unet", "scheduler"), variant=variant, offline=offline, token=token)
    from diffusers import DDPMScheduler, UNet2DConditionModel

    with translate_errors(str(model)):
        scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
        unet = UNet2DConditionModel.from_pretrained(
            folder,
            subfolder="unet",
            variant=_weights_variant(folder / "unet", variant),
            torch_dtype=dtype,
            use_safetensors=True,
        )
        unet = unet.to(dev).eval().requires_grad_(False)
    cfg = unet.config
    if cfg.in_channels != 3 or cfg.out_channels != 6:
        raise ModelNotFoundError(
            f"{model} is not a DeepFloyd IF stage I UNet: it maps {cfg.in_channels} to {cfg.out_channels} "
            "channels, stage I maps an RGB image to [eps, variance] (3 -> 6). Use one of "
            f"{', '.join(MODEL_IDS)}."
        )
    if scheduler.config.variance_type != "learned_range" or scheduler.config.prediction_type != "epsilon":
        raise ModelNotFoundError(
            f"{model}'s scheduler predicts {scheduler.config.prediction_type!r} with variance "
            f"{scheduler.config.variance_type!r}; the engine expects IF's epsilon + learned_range."
        )
    width = int(cfg.encoder_hid_dim or cfg.cross_attention_dim)
    store = EmbeddingStore(Path(embeddings_dir or EMBEDDINGS_DIR), embeddings_key or model_key(model), width)
    return DeepFloydIF(
        unet,
        Schedule.from_alphas_cumprod(scheduler.alphas_cumprod),
        store,
        str(model),
        dev,
        dtype,
        dict(scheduler.config),
    )


# ----------------------------------------------------------------------------- T5, sampling, stage II


def encode_with_t5(
    model: str | os.PathLike,
    prompts: Sequence[str],
    store: EmbeddingStore,
    *,
    device: str = "auto",
    variant: str | None = "fp16",
    offline: bool | None = None,
    token: str | None = None,
    batch_size: int = 8,
) -> list[str]:
    """Encode the prompts missing from ``store`` with the model repo's T5 encoder (padding to
    max_length 77, attention mask, last hidden state, as IF's ``encode_prompt``), write them,
    free T5. Returns the newly encoded prompts."""
    missing = [p for p in dict.fromkeys(prompts) if p not in store]
    if not missing:
        return []
    folder = resolve_model(
        model, ("text_encoder", "tokenizer"), variant=variant, offline=offline, token=token
    )
    dev = pick_device(device)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    from transformers import AutoTokenizer, T5EncoderModel

    with translate_errors(str(model)):
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
        except (ImportError, ValueError) as e:
            raise TextEncoderError(
                f"cannot load the T5 tokenizer in {folder / 'tokenizer'} ({e}). Install sentencepiece "
                "(pip install sentencepiece) or import precomputed embeddings instead."
            ) from e
        encoder = (
            T5EncoderModel.from_pretrained(
                folder,
                subfolder="text_encoder",
                variant=_weights_variant(folder / "text_encoder", variant),
                dtype=dtype,
                use_safetensors=True,
            )
            .to(dev)
            .eval()
        )
    try:
        with torch.inference_mode(), translate_errors(str(model)):
            for i in range(0, len(missing), batch_size):
                chunk = missing[i : i + batch_size]
                tok = tokenizer(
                    chunk,
                    padding="max_length",
                    max_length=store.length,
                    truncation=True,
                    add_special_tokens=True,
                    return_tensors="pt",
                )
                hidden = encoder(tok.input_ids.to(dev), attention_mask=tok.attention_mask.to(dev))[0]
                for p, h in zip(chunk, hidden, strict=True):
                    store.put(p, h[None].float().cpu(), source=f"t5:{model}")
    finally:
        del encoder
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return missing


def sample_images(
    adapter: Callable,
    prompts: Sequence[str],
    count: int = 1,
    stride: int = 30,
    guidance: float = 7.0,
    generator: torch.Generator | None = None,
    callback=None,
) -> DenoiseTrajectory:
    """Text -> image (Part A1.5/A1.6): ``count`` images per prompt from pure noise with CFG,
    strided DDPM with the learned variance. Trajectory in [-1, 1], (N, 3, H, W) per step,
    N = len(prompts) * count, grouped by prompt."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    cond = adapter.encode([p for p in prompts for _ in range(count)])
    size = adapter.spec.image_size
    model = adapter if guidance == 1 else CFGModel(adapter, adapter.null_cond(1), guidance, 3)
    noise = torch.randn(cond.shape[0], 3, size, size, generator=generator)
    return iterative_denoise(
        model, noise, 0, strided_timesteps(stride), adapter.schedule, cond, generator, callback=callback
    )


_STAGE2: dict = {}
_STAGE2_LOCK = threading.Lock()


def upscale_stage2(
    images: torch.Tensor,
    prompt_embeds: torch.Tensor,
    negative_embeds: torch.Tensor,
    *,
    model: str = STAGE2_MODEL_ID,
    device: str = "auto",
    generator: torch.Generator | None = None,
    steps: int = 50,
) -> torch.Tensor:
    """Display only: IF stage II, (N, 3, 64, 64) in [-1, 1] -> (N, 3, 256, 256) in [0, 1].

    Loaded lazily once per (model, device) through diffusers' IFSuperResolutionPipeline without
    its text encoder. Needs real weights (and in practice a GPU); not exercised by the tests.
    """
    dev = pick_device(device)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    with _STAGE2_LOCK:
        pipe = _STAGE2.get((model, str(dev)))
        if pipe is None:
            folder = resolve_model(model, ("unet", "scheduler", "image_noising_scheduler"))
            from diffusers import IFSuperResolutionPipeline

            with translate_errors(model):
                pipe = IFSuperResolutionPipeline.from_pretrained(
                    folder,
                    text_encoder=None,
                    tokenizer=None,
                    safety_checker=None,
                    feature_extractor=None,
                    watermarker=None,
                    requires_safety_checker=False,
                    torch_dtype=dtype,
                    variant=_weights_variant(folder / "unet", "fp16"),
                    use_safetensors=True,
                ).to(dev)
                pipe.set_progress_bar_config(disable=True)
            _STAGE2[(model, str(dev))] = pipe
        with translate_errors(model):
            out = pipe(
                image=images.to(dev, dtype),
                prompt_embeds=prompt_embeds.to(dev, dtype),
                negative_prompt_embeds=negative_embeds.to(dev, dtype),
                generator=generator,
                num_inference_steps=steps,
                output_type="pt",
            ).images
    return ((out.float().cpu() + 1) / 2).clamp(0, 1)
