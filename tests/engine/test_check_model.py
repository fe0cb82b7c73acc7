"""A student's own Part B model: ``build_unet()`` in their file plus weights (safetensors, or a
``.pt`` read with ``weights_only=True``), sampled in the sandbox with the course's Euler sampler
and scored with the lab's classifier (accuracy, Fréchet distance) next to the shipped model.
The scoring test needs the shipped classifier and flow models (``cache/models``)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from engine.adapters import MODELS_DIR
from engine.check.student_model import evaluate_model

DATA = Path(__file__).resolve().parents[1] / "check_data"
SOURCE = (DATA / "my_model.py").read_text()
sys.path.insert(0, str(DATA))
from my_model import build_unet  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread_module")
SHIPPED = all((MODELS_DIR / n / "model.safetensors").exists() for n in ("classifier", "flow-class"))


def weights(kind: str) -> bytes:
    state = build_unet().state_dict()
    if kind == "safetensors":
        return save(state)
    buf = io.BytesIO()
    torch.save({"state_dict": state}, buf)
    return buf.getvalue()


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED, reason="needs the shipped classifier and flow-class")
def test_student_model_is_sampled_and_scored_next_to_the_shipped_one():
    report = evaluate_model(SOURCE, weights("safetensors"), "mine.safetensors", steps=3, per_digit=2)
    assert report.status == "pass", report.message
    assert "class-conditioned" in report.message
    yours, shipped = report.yours, report.shipped
    assert yours.samples.shape == shipped.samples.shape == (20, 28, 28)
    assert 0 <= yours.accuracy <= 1 and shipped.name == "flow-class"
    assert yours.fd > 0 and shipped.fd > 0 and yours.fd_floor == shipped.fd_floor


def test_pt_weights_load_with_weights_only():
    report = evaluate_model(
        SOURCE.replace("return TinyClassUNet()", "raise SystemExit('sampled')"),
        weights("pt"),
        "mine.pt",
        steps=2,
        per_digit=1,
    )
    assert report.status == "error" and "sampled" in report.message  # got as far as build_unet()
    ok = evaluate_model(SOURCE, weights("pt"), "mine.pt", steps=2, per_digit=1, scored=False)
    assert ok.status == "pass" and ok.yours is None


@pytest.mark.parametrize(
    "source, data, name, text",
    [
        (SOURCE, b"not a checkpoint", "mine.pt", "could not be sampled"),
        (SOURCE, b"{}", "mine.pickle", "weights must be"),
        (SOURCE.replace("def build_unet", "def make_net"), b"", "mine.safetensors", "build_unet"),
        (SOURCE.replace("hidden=8", "hidden=4"), None, "mine.safetensors", "size mismatch"),
    ],
)
def test_model_errors_are_reported(source, data, name, text):
    report = evaluate_model(
        source, weights("safetensors") if data is None else data, name, steps=2, per_digit=1
    )
    assert report.status == "error" and text in report.message, report.message
    assert "Traceback" not in report.message
