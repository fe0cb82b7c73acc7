"""The playground's particle animation, drawn in the browser: the runs' states and fields packed
once into a self-contained HTML page (``dashboard/web/playground_animation.html`` and ``.js``,
read at run time), so playing and scrubbing never go back to the server.

Every run is shown against its *progress* from noise (0) to data (1), so flow matching (t runs
0 -> 1) and DDPM (t counts down 990 -> 0) line up; each panel also prints its own t.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import numpy as np

from dashboard import web
from engine.toy2d.data import BOX

from .sampling import Run, hue_palette
from .training import label

QRANGE = 2 * BOX  # the animation's int16 positions cover [-QRANGE, QRANGE]


def field_scale(field: np.ndarray) -> np.ndarray:
    """(K,) the 95th percentile of the arrow lengths of each state's field (K, G, G, 2): arrows are
    drawn in units of it, so each moment's field reads at a glance. One scale for all moments
    would show nothing early on: near t = 1 a flow's field off the data grows like 1 / (1 - t)."""
    speed = np.linalg.norm(field.reshape(field.shape[0], -1, 2), axis=-1)
    return np.maximum(np.percentile(speed, 95, axis=1), 1e-6)


def _b64(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def time_labels(run: Run, times: Sequence) -> list[str]:
    """Each state's time as the panel prints it: DDPM's integer t, a flow's t in [0, 1]."""
    return [f"t = {int(t)}" if run.objective == "ddpm" else f"t = {float(t):.2f}" for t in times]


def _frames_within(k: int, budget: int) -> np.ndarray:
    """At most ``budget`` evenly spaced state indices of ``k`` (first and last kept)."""
    if k <= budget:
        return np.arange(k)
    return np.unique(np.round(np.linspace(0, k - 1, budget)).astype(int))


def layout(panels: int, presenter: bool = False) -> tuple[int, int]:
    """(columns, canvas px) of the animation for ``panels`` panels."""
    if panels == 1:
        return 1, 560 if presenter else 520
    return 2, 440 if presenter else 380


def animation_html(runs: dict[str, Run], noise_colors: np.ndarray, *, size: int = 380, columns: int = 2,
                   duration_ms: int = 4000, trails: int = 150, max_values: int = 1_600_000) -> str:
    """A self-contained HTML/JS block: every run's particles travel from noise (progress 0) to
    data (1) on its own canvas, over the learned field (arrows) at that moment and the paths of
    ``trails`` particles so far. Play/pause and an <input type=range> scrub the progress;
    positions between two stored states are interpolated linearly, so nothing goes back to the
    server. States travel once as int16 over twice the box (2.4e-4 resolution; a particle outside
    the box is drawn off the canvas, not piled on its edge), at most ``max_values`` coordinates
    in all (fewer states per run for many particles).

    Timing hooks for browser tests: ``window.__frameTimes`` (ms between animation frames while
    playing), ``window.__scrubLatencies`` (ms from an input event to its redraw done),
    ``window.__drawMs`` (ms per redraw), ``window.__play(on)`` and ``window.__state()``."""
    n = next(iter(runs.values())).states.shape[1]
    budget = max(9, min(101, max_values // (2 * n * len(runs))))
    panels = []
    for run in runs.values():
        idx = _frames_within(len(run.times), budget)
        states = np.clip(np.round(run.states[idx] / QRANGE * 32767), -32767, 32767)
        field = run.field[idx]
        g = field.shape[1]
        spacing = size / (g + 1)
        panels.append({
            "title": f"{label(run.objective)} · {run.sampler}, {run.steps} steps, NFE {run.nfe}",
            "k": len(idx), "times": time_labels(run, [run.times[i] for i in idx]),
            "states": _b64(states, "<i2"), "field": _b64(field, "<f4"),
            "fscale": [round(float(0.9 * spacing / v), 6) for v in field_scale(field)],
            "caption": f"straightness {run.straightness:.3f} · MMD {run.quality.mmd:.3f}",
        })
    grid = int(next(iter(runs.values())).field.shape[1])
    data = {"n": n, "box": BOX, "qrange": QRANGE, "size": size, "grid": grid,
            "duration_ms": duration_ms, "hold_ms": 900, "trails": trails, "palette": hue_palette(),
            "colors": _b64(noise_colors, "u1"), "panels": panels}
    payload = json.dumps(data).replace("</", "<\\/")  # nothing in the data can close the <script>
    return web.page("playground_animation", DATA=payload, COLS=str(int(columns)), SIZE=str(int(size)))


def animation_height(panels: int, size: int, columns: int) -> int:
    """The iframe height (px) that shows ``animation_html``'s panels and its control bar."""
    rows = -(-panels // columns)
    return rows * (size + 48) + 56

