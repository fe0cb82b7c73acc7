"""Shared fixtures for the engine tests: small, generic, no downloads."""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pytest

import engine  # noqa: F401  -- before torch loads: sets OMP_WAIT_POLICY=PASSIVE (see engine/__init__)

# The view cache (dashboard/viewcache.py): tests and the servers they start write entries into a
# folder of their own, never the checkout's cache/app/views, and start no background fill
# (test_viewcache.py runs one on purpose).
os.environ.setdefault("DIFFLAB_VIEW_CACHE_DIR", tempfile.mkdtemp(prefix="difflab-views-"))
os.environ.setdefault("DIFFLAB_VIEW_CACHE_FILL", "off")


def _cosine_abar_float64(num_timesteps: int = 1000, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule, written out independently of engine.schedule."""
    s = np.arange(num_timesteps + 1, dtype=np.float64) / num_timesteps
    f = np.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], max_beta)
    return np.cumprod(1.0 - betas)


@pytest.fixture(scope="session")
def abar_ref() -> np.ndarray:
    """Reference abar_t, t = 0..999, float64 numpy (never from the code under test)."""
    return _cosine_abar_float64()


@pytest.fixture(scope="session")
def schedule():
    from engine.schedule import Schedule

    return Schedule.cosine()


@pytest.fixture
def make_gen():
    """make_gen(seed) -> a fresh CPU torch.Generator; tests replay random draws with it."""
    import torch

    return lambda seed=0: torch.Generator().manual_seed(seed)


@pytest.fixture
def one_thread():
    """One intra-op thread for CPU-heavy tests: on a shared 2-core machine, two OpenMP threads
    competing with other processes run ~10x slower. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_thread_module():
    """``one_thread`` for a whole module (its tiny models are ~20x slower with two threads
    fighting a busy 2-core machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- models for page tests


@pytest.fixture(scope="session")
def page_models(tmp_path_factory):
    """A models folder for page and browser tests: links to the shipped ``cache/models/<name>``
    where it is trained (weights and manifest), a tiny model trained here for the rest. Tests
    must not write into it (the links lead to the shipped models)."""
    import time

    from engine.adapters import MODEL_NAMES, MODELS_DIR
    from tests.support.tiny import train_tiny

    root = tmp_path_factory.mktemp("models")
    tiny = []
    t0 = time.perf_counter()
    for name in MODEL_NAMES:
        shipped = MODELS_DIR / name
        if (shipped / "model.safetensors").exists() and (shipped / "manifest.json").exists():
            (root / name).symlink_to(shipped, target_is_directory=True)
        else:
            train_tiny(name, root / name)
            tiny.append(name)
    if tiny:
        print(f"\n[models] tiny {', '.join(tiny)} trained in {time.perf_counter() - t0:.0f} s")
    return root
