"""T5 prompt embeddings of DeepFloyd IF, stored one safetensors file per prompt.

``EmbeddingStore`` keeps ``cache/embeddings/<model-key>/<sha256(prompt)>.safetensors``, each
(1, 77, width) float: T5 runs once (``engine.deepfloyd.model.encode_with_t5``) or the course's
``prompt_embeds_dict.pth`` is imported (``import_file``, ``torch.load(weights_only=True)``). The
empty prompt "" is classifier-free guidance's null branch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import checkpoints as ckpt
from ..data import CACHE_DIR
from .weights import EmbeddingShapeError, EmbeddingsMissingError

MAX_LENGTH = 77
EMBEDDINGS_DIR = CACHE_DIR / "embeddings"


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
