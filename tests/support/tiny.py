"""Tiny real models for tests: trained by ``engine.train`` in seconds (used by conftest's
``page_models`` and by tests that need a run folder)."""

from __future__ import annotations


def _tiny_snapshot(net, cfg, epoch):
    """Epoch snapshots for tiny runs: the denoiser's real one (cheap), random digits for the
    generative models (sampling 300 steps would only cost time and test nothing here)."""
    import torch

    from engine.sampling import digit_labels, snapshot

    if cfg.objective == "denoiser":
        return snapshot(net, cfg, epoch)
    g = torch.Generator().manual_seed(epoch)
    return {"samples": torch.rand(40, 1, 28, 28, generator=g), "labels": digit_labels(range(10), 4)}, {
        "epoch": epoch
    }


def train_tiny(name: str, out, num_hiddens: int = 4, train_count: int = 128) -> None:
    """A real model of preset ``name`` trained by ``engine.train`` in seconds: D=4, 128 images,
    one epoch, fp32, one thread."""
    from dataclasses import replace

    import torch

    from engine.config import PRESETS
    from engine.train import train

    cfg = replace(PRESETS[name], num_hiddens=num_hiddens, train_count=train_count, epochs=1,
                  batch_size=64, snapshot_epochs=(1,))
    if cfg.pairs:  # reflow: a tiny flow on MNIST stands in (no teacher pairs here); guidance stays baked
        cfg = replace(cfg, pairs="", init_from="")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, out, device="cpu", precision="fp32", snapshot_fn=_tiny_snapshot)
    finally:
        torch.set_num_threads(threads)
