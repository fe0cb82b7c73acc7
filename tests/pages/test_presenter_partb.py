"""Issue 25 under AppTest, after each page's main action: in presenter mode the picture a room
watches stands in the lead figure (``ui.lead``, the container keyed ``lead_figure``), the controls
that change it in the column beside it; at a desk the page keeps its old order.

- Flow matching: after **Sample**, the live samples are the lead figure, the sampler form beside
  them; at a desk the samples stay under "Sample live", after the epoch snapshots;
- 2D playground: the data leads until **Train**; then the particle animation leads, sized to
  the first screen, and the data moves down to its section;
- Training lab: before any run the start form leads and no picture is claimed; once a run
  exists its live loss curve is the lead figure and the run picker tops the controls.

Where these land on a real screen is tests/system/test_presenter_layout.py's part
(``python -m tests.support.first_screen`` to measure by hand).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import jobs
from dashboard import playground as pg
from dashboard.ui import LEAD_KEY

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.fixture
def env(page_models, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_MODELS_DIR", str(page_models))
    monkeypatch.setenv("DIFFLAB_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def app(name: str, presenter: bool = True, **state) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=300)
    at.session_state["presenter"] = presenter
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def walk(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from walk(child)


def lead_figure(at: AppTest):
    """The lead figure's container, or None (outside presenter mode there is none)."""
    found = [b for b in walk(at.main) if str(getattr(b.proto, "id", "")).endswith(f"-{LEAD_KEY}")]
    assert len(found) <= 1
    return found[0] if found else None


def lead_columns(at: AppTest):
    """The lead's (controls, figure) columns: the first row of columns on the page."""
    row = next(b for b in walk(at.main) if [type(c).__name__ for c in getattr(b, "children", {}).values()]
               == ["Column", "Column"])
    return tuple(row.children.values())


def kinds(node) -> list[str]:
    return [getattr(el, "type", "") for el in walk(node)]


def widget_keys(node) -> set[str]:
    return {el.key for el in walk(node) if getattr(el, "key", None)}


def captions(node) -> list[str]:
    return [img.caption for el in walk(node) if getattr(el, "type", "") == "image" for img in el.proto.imgs]


# ----------------------------------------------------------------------------- flow matching


def test_flow_live_samples_lead_and_the_desk_keeps_its_order(env):
    at = app("b2_flow.py", b2_steps=5)
    ok(at)
    controls, figure = lead_columns(at)
    assert {"b2_model", "b2_gamma", "b2_sampler", "b2_steps", "b2_seed"} <= widget_keys(controls)
    assert lead_figure(at) is not None and figure is not None
    assert any(c.startswith("Saved at the end of training") for c in captions(lead_figure(at)))
    at.button(key="FormSubmitter:b2_form-Sample").click().run()
    ok(at)
    lead = captions(lead_figure(at))
    assert len(lead) == 1 and lead[0].startswith("flow-class: γ = 5, 5 steps"), lead
    assert "Sample live" not in [h.value for h in at.header]  # the lead needs no heading

    desk = app("b2_flow.py", presenter=False, b2_steps=5)
    desk.button(key="FormSubmitter:b2_form-Sample").click().run()
    ok(desk)
    assert lead_figure(desk) is None and "What is happening" not in [e.label for e in desk.expander]
    shown = [c for c in captions(desk.main) if c]
    live = next(i for i, c in enumerate(shown) if c.startswith("flow-class: γ = 5, 5 steps"))
    assert live > max(i for i, c in enumerate(shown) if c.startswith("after epoch"))  # after the snapshots
    heads = [h.value for h in desk.header]
    assert heads.index("Samples after epochs 1, 5 and 10") < heads.index("Sample live") < heads.index(
        "The trajectory")


# ----------------------------------------------------------------------------- 2D playground


def animation_grid(html: str) -> tuple[int, int]:
    """(columns, canvas px) the animation's page was built with."""
    m = re.search(r"grid-template-columns:repeat\((\d+),(\d+)px\)", html)
    return int(m.group(1)), int(m.group(2))


def test_playground_data_then_particles_lead(env):
    at = app("b4_playground.py", b4_steps=250, b4_objectives=["fm", "ddpm"], b4_conditional=False)
    ok(at)
    lead = lead_figure(at)
    assert kinds(lead).count("plotly_chart") == 1 and not lead.get("iframe")  # the data, then "Train"
    assert any("Press **Train**" in i.value for i in lead.get("info"))
    controls, _ = lead_columns(at)
    assert {"b4_source", "b4_objectives", "b4_train"} <= widget_keys(controls)

    at.button(key="b4_train").click().run()
    ok(at)
    lead = lead_figure(at)
    frames = [el.proto.srcdoc for el in walk(lead) if getattr(el, "type", "") == "iframe"]
    assert len(frames) == 1 and "window.__frameTimes" in frames[0]
    assert animation_grid(frames[0]) == (2, 300)  # two panels side by side, fitted to the first screen
    assert kinds(lead).count("plotly_chart") == 0  # the data moved down to its own section
    assert [e.proto.srcdoc for e in at.get("iframe")] == frames  # one animation on the page
    assert "1 · The data" in [h.value for h in at.header]
    assert {"b4_particles", "b4_flow_steps"} <= widget_keys(lead_columns(at)[0])

    desk = app("b4_playground.py", presenter=False, b4_steps=250, b4_objectives=["fm", "ddpm"],
               b4_conditional=False)
    desk.button(key="b4_train").click().run()
    ok(desk)
    assert lead_figure(desk) is None
    assert animation_grid(desk.get("iframe")[0].proto.srcdoc) == pg.layout(2)


# ----------------------------------------------------------------------------- training lab


def test_training_lab_leads_with_the_start_form_then_the_run_curve(env):
    at = app("b3_training_lab.py")
    ok(at)
    controls, _ = lead_columns(at)
    assert {"b3_model", "b3_epochs_flow-class_class"} <= widget_keys(controls)
    assert "b3_watch" not in widget_keys(at.main) and not kinds(lead_figure(at)).count("plotly_chart")

    args = jobs.train_args("denoiser", 1, None, 16, 512, 4, 1)
    jobs.start("denoiser", args, "tiny-lead")
    assert jobs.wait("tiny-lead", timeout=300).status == "finished"
    at = app("b3_training_lab.py")
    ok(at)
    controls, _ = lead_columns(at)
    assert "b3_watch" in widget_keys(controls) and at.selectbox(key="b3_watch").value == "tiny-lead"
    lead = lead_figure(at)
    first = next(k for k in kinds(lead) if k in ("plotly_chart", "markdown"))
    assert first == "plotly_chart"  # the curve, then the run's state under it
    assert "tiny-lead: loss" in lead.get("plotly_chart")[0].proto.spec

    desk = app("b3_training_lab.py", presenter=False)
    ok(desk)
    assert lead_figure(desk) is None
    heads = [h.value for h in desk.header]
    assert heads[:3] == ["Start a run", "Watch a run", "Compare runs"], heads
