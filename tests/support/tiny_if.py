"""A tiny random DeepFloyd IF stage I in diffusers' layout, for tests (no real weights here).

``build_tiny_if`` saves model_index.json, unet/ (fp32 + fp16 variant), scheduler/ and optionally a
tiny T5 text_encoder/ + tokenizer/; ``load_tiny`` loads it through the users' ``load_deepfloyd``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.deepfloyd import model as df
from engine.denoise import iterative_denoise

SIZE, WIDTH = 16, 24
PROMPTS = (
    "",
    "a high quality photo",
    "a rocket ship",
    "an oil painting of people around a campfire",
    "an oil painting of an old man",
    "a lithograph of a skull",
    "a lithograph of waterfalls",
    "an oil painting of a snowy mountain village",  # Part 0's other two prompts
    "a man wearing a hat",
)


def from_noise(model, shape, schedule, timesteps, cond, generator):
    """Sampling (A1.5): the strided loop from N(0, I) noise drawn from ``generator`` first."""
    noise = torch.randn(shape, generator=generator)
    return iterative_denoise(model, noise, timesteps, schedule=schedule, cond=cond, generator=generator)


def build_tiny_if(folder: Path, size: int = SIZE, width: int = WIDTH, with_text_encoder: bool = True) -> Path:
    """A random IF-layout stage I (3 -> 6 channels, text-pooled time embedding, T5 width ``width``)."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    with torch.random.fork_rng():
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=size,
            layers_per_block=1,
            block_out_channels=(16, 32),
            down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
            mid_block_type="UNetMidBlock2DSimpleCrossAttn",
            up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
            in_channels=3,
            out_channels=6,
            cross_attention_dim=32,
            encoder_hid_dim=width,
            attention_head_dim=8,
            addition_embed_type="text",
            addition_embed_type_num_heads=2,
            cross_attention_norm="group_norm",
            resnet_time_scale_shift="scale_shift",
            act_fn="gelu",
            norm_num_groups=8,
        )
    unet.save_pretrained(folder / "unet")
    unet.half().save_pretrained(folder / "unet", variant="fp16")
    DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        variance_type="learned_range",
        prediction_type="epsilon",
        thresholding=True,
        dynamic_thresholding_ratio=0.95,
        sample_max_value=1.5,
    ).save_pretrained(folder / "scheduler")
    index = {
        "_class_name": "IFPipeline",
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", "DDPMScheduler"],
        "unet": ["diffusers", "UNet2DConditionModel"],
    }
    if with_text_encoder:
        _tiny_t5(folder, width)
        index |= {
            "text_encoder": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "T5TokenizerFast"],
        }
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def _tiny_t5(folder: Path, width: int) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    words = sorted({w for p in PROMPTS for w in p.split()} | {"a", "cat", "dog"})
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: i + 3 for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=df.MAX_LENGTH,
    ).save_pretrained(folder / "tokenizer")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cfg = T5Config(vocab_size=len(vocab), d_model=width, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
        T5EncoderModel(cfg).save_pretrained(folder / "text_encoder")


def random_embeds(prompts=PROMPTS, width: int = WIDTH, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {p: torch.randn(1, df.MAX_LENGTH, width, generator=g).half() for p in prompts}


def write_embeds(folder: Path) -> Path:
    """A stand-in for the course's prompt_embeds_dict.pth (a plain dict prompt -> [1, 77, W])."""
    path = folder / "prompt_embeds_dict.pth"
    torch.save(random_embeds(), path)
    return path


def load_tiny(folder: Path, embeds: Path, emb_dir: Path) -> df.DeepFloydIF:
    with pytest.warns(df.SlowOnCPUWarning):
        a = df.load_deepfloyd(folder, device="cpu", embeddings_dir=emb_dir)
    a.embeddings.import_file(embeds)
    return a
