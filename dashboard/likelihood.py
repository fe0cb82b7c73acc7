"""The Flow matching page's "How likely?" section, without Streamlit: the inputs a student can
score (a test digit, the same digit inverted, a blank page, uniform noise, a stroke, or the
student's own drawing or upload), the shipped
reference (``cache/models/flow-class/likelihood.json``), one input's bits/dim under flow-class,
and the histogram that places it among the test digits. See docs/likelihood.md."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import torch

from dashboard import palette
from dashboard.partb import model_folder
from engine.likelihood import model_nll

MODEL = "flow-class"
STEPS, PROBES = 32, 4  # as the shipped reference (docs/likelihood.md: within 0.001 bits/dim)
INPUTS = ("a test digit", "the same digit inverted", "a blank page", "uniform noise", "a stroke (a letter T)",
          "your drawing", "your upload")
OWN = INPUTS[5:]  # the page supplies these images (a canvas, an uploaded file)


def reference() -> dict | None:
    """The shipped bits/dim of test digits and out-of-distribution sets, or None when missing."""
    try:
        data = json.loads((model_folder(MODEL) / "likelihood.json").read_text())
        return data if isinstance(data.get("sets"), dict) else None
    except (OSError, ValueError, AttributeError):
        return None


def make_input(kind: str, digit: np.ndarray, seed: int) -> np.ndarray:
    """(28, 28) in [0, 1] for one of ``INPUTS``; ``digit`` is the picked test digit."""
    if kind == INPUTS[1]:
        return 1.0 - digit
    if kind == INPUTS[2]:
        return np.zeros((28, 28), np.float32)
    if kind == INPUTS[3]:
        return np.random.default_rng(seed).random((28, 28)).astype(np.float32)
    if kind == INPUTS[4]:
        img = np.zeros((28, 28), np.float32)
        img[6:9, 6:22] = 1.0  # the bar of the T
        img[9:23, 13:16] = 1.0  # its stem
        return img
    return digit.astype(np.float32)


def score(net: torch.nn.Module, image: np.ndarray, seed: int, progress=None) -> dict:
    """Bits/dim of one (28, 28) image under flow-class, with the probes' standard error."""
    x = torch.from_numpy(np.asarray(image, np.float32)).reshape(1, 1, 28, 28)
    def on_step(done: int, total: int) -> None:
        if progress is not None:
            progress(done / total, f"Integrating the ODE back to noise: step {done} of {total}…")

    return model_nll(net, x, class_conditioned=True, steps=STEPS, probes=PROBES,
                     generator=torch.Generator().manual_seed(int(seed)), on_step=on_step)


def caption(kind: str, result: dict, ref: dict | None) -> str:
    """What the number says, next to the test digits' mean."""
    text = f"{kind}: **{result['bits_per_dim']:.2f} bits/dim** (± {result['probe_se']:.3f} from the probes)"
    if ref is not None and "test digits" in ref["sets"]:
        test = ref["sets"]["test digits"]
        text += f"; MNIST test digits average {test['bits_per_dim']:.2f} ({test['count']} digits)"
    return text + ". Lower is likelier."


def histogram(ref: dict, mine: tuple[str, float] | None = None) -> go.Figure:
    """Test digits' bits/dim as a histogram, each other shipped set's mean and ``mine`` as lines."""
    sets = ref["sets"]
    fig = go.Figure()
    if "test digits" in sets:
        fig.add_histogram(x=sets["test digits"]["per_image"], name="MNIST test digits", nbinsx=16,
                          marker_color=palette.color(0))
    others = [(k, v) for k, v in sets.items() if k != "test digits"]
    for i, (name, r) in enumerate(others, start=2):
        fig.add_vline(x=r["bits_per_dim"], line=palette.line(i),
                      annotation_text=f"{name} {r['bits_per_dim']:.2f}", annotation_textangle=-90)
    if mine is not None:
        fig.add_vline(x=mine[1], line=palette.line(1, width=3, dash="solid"),
                      annotation_text=f"yours: {mine[0]} {mine[1]:.2f}", annotation_position="top left")
    fig.update_layout(xaxis_title="bits per dimension (lower = likelier)", yaxis_title="test digits",
                      height=340, margin=dict(l=40, r=20, t=30, b=40), showlegend=False)
    return fig


def summary(ref: dict) -> str:
    """A text alternative for the histogram: each set's mean bits/dim."""
    parts = [f"{name} {r['bits_per_dim']:.2f}" for name, r in ref["sets"].items()]
    return "Bits per dimension under flow-class: " + ", ".join(parts) + "."
