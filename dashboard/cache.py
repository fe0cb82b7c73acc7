"""The one place the dashboard caches things.

``st.cache_resource`` holds models (read-only, shared by every session); ``st.cache_data``
holds arrays keyed by small parameters (seed, t, model name) with bounded ``max_entries``.
Everything else in the dashboard calls these instead of the engine directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch

from engine.models import MODEL_NAMES, MODELS_DIR, FlowModel, MNISTDDPM, load_builtin
from engine.train import TrainConfig, cpu_supports_bf16


def models_dir() -> Path:
    """Shipped models, or ``DIFFLAB_MODELS_DIR`` (tests and development point it elsewhere)."""
    return Path(os.environ.get("DIFFLAB_MODELS_DIR", MODELS_DIR))


@dataclass(frozen=True, eq=False)
class LoadedModel:
    name: str
    net: torch.nn.Module
    config: TrainConfig
    manifest: dict


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def load_model(name: str, root: str | None = None) -> LoadedModel:
    """A built-in model by name; raises ``engine.models.ModelNotFound`` with the fix command."""
    net, cfg, manifest = load_builtin(name, Path(root) if root else models_dir())
    for p in net.parameters():
        p.requires_grad_(False)
    return LoadedModel(name, net, cfg, manifest)


def amp_dtype() -> torch.dtype | None:
    return torch.bfloat16 if cpu_supports_bf16() else None


def ddpm_adapter(name: str = "ddpm-class") -> MNISTDDPM:
    return MNISTDDPM(load_model(name, str(models_dir())).net, amp=amp_dtype())


def flow_adapter(name: str) -> FlowModel:
    m = load_model(name, str(models_dir()))
    return FlowModel(m.net, m.config, amp_dtype())


def available_models() -> dict[str, bool]:
    root = models_dir()
    return {n: (root / n / "model.safetensors").exists() for n in MODEL_NAMES}
