"""The course's settings live in ``engine/course.py`` only: a page, CLI, benchmark or dashboard module
that writes one of them out again (γ = 7 or 5, stride 30, 33 or 300 steps, the SDEdit i_starts, the
σ grid, the 10 % rule) fails here and should import the name instead."""

import io
import re
import tokenize
from pathlib import Path

import pytest

from engine import course

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for d in ("engine", "dashboard", "pages", "scripts") for p in (ROOT / d).rglob("*.py")
               if p != ROOT / "engine" / "course.py")
# a number right after one of these names (as an argument, a default or a comparison) is a setting
SETTING_NAMES = (r"(guidance|gamma|γ|g_ddpm|g_flow|cfg_scale|stride|num_ts|euler_steps|i_starts?"
                 r"|sigma_grid|fd_margin)")
NUMBERS = {"7", "7.0", "5", "5.0", "30", "300", "33", "0.10", "0.1"}
# a widget's default on its line about guidance, strides or steps: st.slider("CFG scale γ", 0.0, 10.0, 5.0)
WIDGET_NUMBERS = {"7.0", "5.0", "30", "300", "33"}
WIDGET_WORDS = re.compile(r"gamma|γ|guidance|stride|steps|num_ts|cfg", re.I)
WIDGETS = re.compile(r"slider|number_input|selectbox|select_slider|radio")
# the same settings in words a page shows
IN_WORDS = re.compile(r"γ\s*=\s*[57]\b|\bstride\s*(=\s*)?30\b|\b300 (Euler )?steps|\b33 steps"
                      r"|\(1, 3, 5, 7, 10, 20\)|\b10 % of")


SKIP = {tokenize.NL, tokenize.COMMENT}


def is_docstring(tokens: list, i: int, page: bool) -> bool:
    """A string that is a statement of its own: a docstring (in a page, Streamlit's magic shows such a
    string, so there only the module's docstring is documentation)."""
    before = [t for t in tokens[:i] if t.type not in SKIP]
    after = next((t for t in tokens[i + 1:] if t.type not in SKIP), None)
    alone = (not before or before[-1].type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)) and (
        after is None or after.type in (tokenize.NEWLINE, tokenize.ENDMARKER))
    return alone and (not page or not before)


def literals(path: Path) -> list[str]:
    """'file:line: text' for each course setting written out in ``path`` (docstrings describe the
    course and may name its numbers; code and the text a page shows may not)."""
    found = []
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    page = path.parent.name == "pages"
    for i, tok in enumerate(tokens):
        where = f"{path.relative_to(ROOT)}:{tok.start[0]}: {tok.line.strip()}"
        if tok.type == tokenize.STRING and IN_WORDS.search(tok.string) and not is_docstring(tokens, i, page):
            found.append(where)
        elif tok.type == tokenize.NUMBER and tok.string in NUMBERS:
            before = [t.string for t in tokens[max(0, i - 4):i] if t.type in (tokenize.NAME, tokenize.OP)]
            named = any(re.fullmatch(SETTING_NAMES, t, re.I) for t in before)
            line = tok.line
            widget = tok.string in WIDGET_NUMBERS and WIDGET_WORDS.search(line) and WIDGETS.search(line)
            if named or widget:
                found.append(where)
    return found


def test_the_settings_module_names_the_course():
    settings = (course.DDPM_GUIDANCE, course.FLOW_GUIDANCE, course.STRIDE, course.EULER_STEPS)
    assert settings == (7.0, 5.0, 30, 300)
    assert course.COURSE_DDPM_STEPS == 33 and course.SDEDIT_I_STARTS == (1, 3, 5, 7, 10, 20)
    assert course.matches_course(3.9, 3.6, 0.98, "flow") and not course.matches_course(4.0, 3.6, 0.98, "flow")
    assert not course.matches_course(3.7, 3.6, 0.96, "flow") and course.matches_course(3.7, 3.6, None, "flow")


def test_the_scan_finds_a_planted_literal(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('"""Docs may say γ = 7."""\nx = f(guidance=7.0)\n'
                     'def g(stride=30):\n    """stride 30"""\n'
                     'caption = "γ = 5, 300 Euler steps"\ny = 7\nst.slider("CFG scale γ", 0.0, 10.0, 5.0)\n')
    probe_root = tmp_path
    hits = [h for h in literals_in(probe, probe_root)]
    assert len(hits) == 4, hits


def literals_in(path: Path, root: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, root
    try:
        return literals(path)
    finally:
        ROOT = saved


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_course_literal_outside_the_settings_module(path):
    found = literals(path)
    assert not found, "write these with engine.course's names:\n" + "\n".join(found)
