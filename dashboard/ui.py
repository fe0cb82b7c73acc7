"""Small shared UI helpers: presenter mode, images as PNG, errors as messages."""

from __future__ import annotations

import io

import numpy as np
import streamlit as st
from PIL import Image


def presenter() -> bool:
    """Presenter mode (sidebar toggle): bigger images, fewer secondary controls."""
    return bool(st.session_state.get("presenter", False))


def to_uint8(img) -> np.ndarray:
    """(H, W), (C, H, W) or (H, W, C) float in [0, 1] (tensor or array) -> uint8 HxW or HxWx3."""
    a = img.detach().float().cpu().numpy() if hasattr(img, "detach") else np.asarray(img, dtype=np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return (np.clip(np.nan_to_num(a), 0, 1) * 255 + 0.5).astype(np.uint8)


def png_bytes(img, scale: int = 1) -> bytes:
    """PNG (lossless: JPEG ruins noise images), upscaled with nearest neighbour."""
    im = Image.fromarray(to_uint8(img))
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def error_box(message: str, fix: str | None = None) -> None:
    """A user-facing error: what happened and the command or action that fixes it."""
    st.error(message + (f"\n\nFix: `{fix}`" if fix else ""))
