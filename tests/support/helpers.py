"""Helpers several test files share: pages under AppTest, and what a run folder holds."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.checkpoints import load_tensors
from engine.runs import read_log

PAGES = Path(__file__).resolve().parents[2] / "pages"


def page(name: str, timeout: float = 60, **state) -> AppTest:
    """A page on its own, widget values preset through session state, run once."""
    at = AppTest.from_file(str(PAGES / name), default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def ok(at: AppTest) -> None:
    """No exception and no error box."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def image_ids(at: AppTest) -> list[str]:
    """Media URLs name the image bytes' hash: equal URLs = identical pictures."""
    return [im.proto.imgs[0].url for im in at.image]


def logged_steps(folder: Path) -> list[int]:
    return [r["step"] for r in read_log(folder / "log.jsonl")]


def checkpoint_step(folder: Path) -> int | None:
    """The checkpoint's global step; fails the test if the file exists but does not load."""
    path = folder / "checkpoint.safetensors"
    if not path.exists():
        return None
    _, meta = load_tensors(path)  # raises CheckpointError on a torn file
    return int(meta["global_step"])
