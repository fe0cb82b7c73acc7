"""Cheap Part A pictures the pages compute without a model: the forward process on [0, 1] images,
anagram views and their animation, and the step count of a stride. Not cached (microseconds)."""

from __future__ import annotations

import numpy as np
import torch

from engine.illusions import get_view, transition_frames, viewing_distance
from engine.schedule import strided_timesteps

# The anagram page's starting point for 2, 3 and 4 views: per view (class, prompt, view).
ANAGRAM_DEFAULTS = {
    2: (
        (6, "an oil painting of people around a campfire", None),
        (9, "an oil painting of an old man", "flip"),
    ),
    3: (
        (6, "an oil painting of people around a campfire", None),
        (9, "an oil painting of an old man", "rot180"),
        (1, "an oil painting of a snowy mountain village", "rot90"),
    ),
    4: (
        (6, "an oil painting of people around a campfire", None),
        (9, "an oil painting of an old man", "rot180"),
        (1, "an oil painting of a snowy mountain village", "rot90"),
        (7, "a watercolor of a lighthouse", "rot270"),
    ),
}


def forward_image(x_0: np.ndarray, eps: np.ndarray, abar: float) -> np.ndarray:
    """Eq. A.2 on [0, 1] images: x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps in [-1, 1] units,
    shown back in [0, 1]."""
    x = np.sqrt(abar) * (np.asarray(x_0) * 2 - 1) + np.sqrt(1 - abar) * np.asarray(eps)
    return np.clip((x + 1) / 2, 0, 1)


def viewed(images: np.ndarray, view: str | None = None, distance: float = 1.0) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] under an anagram ``view`` or seen from ``distance``."""
    x = torch.as_tensor(np.array(images))
    if view is not None:
        x = get_view(view).apply_unit(x)
    return viewing_distance(x, distance).numpy() if distance > 1 else x.numpy()


def view_frames(images: np.ndarray, view: str, frames: int = 24) -> np.ndarray:
    """(frames, N, C, H, W) in [0, 1]: the images turning into their ``view``."""
    return transition_frames(torch.as_tensor(np.array(images)), view, frames).numpy()


def steps_of(stride: int) -> int:
    """Denoising steps of the strided grid 990 -> 0 (the course's stride 30: 33)."""
    return len(strided_timesteps(stride)) - 1
