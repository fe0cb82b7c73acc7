"""DeepFloyd IF stage I as an engine model (CS180 Part A's model), loaded through diffusers.

The only engine module that imports diffusers or transformers, and only inside functions, so
``import engine`` stays fast. ``load_deepfloyd`` returns ``DeepFloydIF``, a callable
``(x_t, t, cond) -> [eps, v]`` (B, 6, 64, 64) like ``engine.adapters.MNISTDDPM``: the UNet's six
output channels are the noise estimate and diffusers' "learned_range" variance, which
``engine.denoise.iterative_denoise`` uses. Convention (DDPM): x_0 is clean, t counts down from 999,
pixels in [-1, 1]; abar_t comes from the model's own ``DDPMScheduler`` (its alphas only: diffusers
schedulers mutate themselves, so none is shared between requests).

Text conditioning is a T5-XXL embedding (1, 77, 4096) from the ``EmbeddingStore``
(``engine.deepfloyd.embeddings``); ``encode_with_t5`` fills it and frees T5. Finding the weights and the
errors a user can fix (licence, token, offline, memory, embeddings) are in
``engine.deepfloyd.weights``; every one is a ``DeepFloydError``.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..adapters import ModelSpec
from ..course import DDPM_GUIDANCE, STRIDE
from ..guidance import CFGModel
from ..samplers import sample
from ..schedule import Schedule
from ..trajectory import StepCallback, Trajectory
from .embeddings import EMBEDDINGS_DIR, MAX_LENGTH, EmbeddingStore  # noqa: F401
from .weights import (  # noqa: F401  -- the backend's errors, importable from here
    DEFAULT_MODEL_ID,
    MODEL_IDS,
    DeepFloydError,
    EmbeddingShapeError,
    EmbeddingsMissingError,
    GatedModelError,
    ModelNotFoundError,
    NoGPUError,
    OutOfGPUMemoryError,
    SlowOnCPUWarning,
    TextEncoderError,
    TokenMissingError,
    _weights_variant,
    model_key,
    pick_deepfloyd_device,
    resolve_model,
    translate_errors,
)

STAGE2_MODEL_ID = "DeepFloyd/IF-II-L-v1.0"
DEFAULT_PROMPT = "a high quality photo"
NULL_PROMPT = ""


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
    progress: Callable[[float, str], None] | None = None,
) -> DeepFloydIF:
    """IF stage I from a Hub id or a local diffusers folder: UNet + its DDPMScheduler's alphas.

    fp16 weights and compute on a GPU; float32 on the CPU (with a SlowOnCPUWarning). The fp16
    weight files are used when present (half the download) and upcast on the CPU. ``progress``
    hears ``(fraction, what is happening)`` at each stage (finding, reading, moving the weights).
    """
    say = progress or (lambda fraction, text: None)
    dev = pick_deepfloyd_device(device, allow_cpu)
    dtype = dtype or (torch.float16 if dev.type == "cuda" else torch.float32)
    say(0.05, f"Finding the weights of {model}…")
    folder = resolve_model(model, ("unet", "scheduler"), variant=variant, offline=offline, token=token)
    from diffusers import DDPMScheduler, UNet2DConditionModel

    with translate_errors(str(model)):
        say(0.2, "Reading the noise schedule…")
        scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
        say(0.25, f"Reading the stage I UNet ({str(dtype).removeprefix('torch.')})…")
        unet = UNet2DConditionModel.from_pretrained(
            folder,
            subfolder="unet",
            variant=_weights_variant(folder / "unet", variant),
            torch_dtype=dtype,
            use_safetensors=True,
        )
        say(0.8, f"Moving the UNet to {dev.type}…")
        unet = unet.to(dev).eval().requires_grad_(False)
    say(1.0, "DeepFloyd IF stage I is ready.")
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
    dev = pick_deepfloyd_device(device)
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
    stride: int | None = STRIDE,
    guidance: float = DDPM_GUIDANCE,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    eta: float | None = None,
) -> Trajectory:
    """Text -> image (Part A1.5/A1.6): ``count`` images per prompt from pure noise with CFG:
    the course's strided DDPM with the learned variance ("ddpm", stride or ``steps``), or DDIM /
    DPM-Solver++(2M) in ``steps`` steps. Trajectory in [-1, 1], (N, 3, H, W) per step,
    N = len(prompts) * count, grouped by prompt."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    cond = adapter.encode([p for p in prompts for _ in range(count)])
    size = adapter.spec.image_size
    model = adapter if guidance == 1 else CFGModel(adapter, adapter.null_cond(1), guidance)
    noise = torch.randn(cond.shape[0], 3, size, size, generator=generator)
    if sampler != "ddpm" or steps is not None:
        stride = None
    return sample(model, noise, sampler, steps, cond=cond, generator=generator, callback=callback,
                  schedule=adapter.schedule, stride=stride, eta=eta)


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
    dev = pick_deepfloyd_device(device)
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
