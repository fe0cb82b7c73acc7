"""Links are input too (issue 24): every key a page binds to its URL, given hostile values, on
every page, under AppTest through the entrypoint (the sidebar's ``seed``, ``presenter`` and
``backend`` come first, as in the browser).

- The keys are found in the source, as a new page would add them (``ui.linked("key", ...)``),
  and in the running page (every widget whose proto carries a ``query_param_key``, which also
  finds keys built at run time such as ``f"{prefix}_stride"``). Nothing may bind a widget to the
  URL without ``ui.linked``: the source may not say ``bind="query-params"`` anywhere else.
- For each hostile value, one run sets it on every key of the page at once; then: no exception,
  each widget holds what the link rules give (worked out here from the widget's domain: the
  default, or the nearer end for a number beyond its range, or the value itself where it is
  valid, e.g. ``presenter=true``), and every key whose value was not used as given has its notice.
- The domain ``dashboard.links`` checked is the one the widget shows (its options and range).

Models: tiny ones trained here (a page at a clamped maximum, e.g. 8 samples, stays cheap).
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import links

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))
HOSTILE = [
    "-1",
    "99999999",
    "abc",
    "nan",
    "inf",
    "1e309",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "",
    "0x10",
    "%00",
    "[1,2]",
    "true",
    "x" * 10_000,
    "ß∂ƒ©˙∆˚¬…",
]
SIDEBAR = {"seed", "presenter", "backend"}
# keys the source binds today: the discovery must find at least these (it cannot silently find none)
KNOWN = SIDEBAR | {
    "a1_source", "a1_photo", "a1_t", "a2_cond", "a2_auto_sigma", "a2_sigma", "a3_prompts", "a3_classes",
    "a3_step", "a3_sweep_class", "a4_source", "a4_mode", "a4_mask_kind", "a5_kind", "a5_show", "a5_animate",
    "a5_distance", "ab_digit", "ab_seed", "ab_count", "ab_mode", "ab_stride", "ab_ddim_steps", "ab_g_ddpm",
    "ab_solver", "ab_steps", "ab_g_flow", "b1_seed", "b1_count", "b2_model", "b2_gamma", "b2_sampler",
    "b2_steps", "b2_seed", "b2_which", "b2_speed", "b2_lr_digits", "fs_model", "fs_steps", "fs_which",
    "fs_grid", "b2_reflow_steps",
}  # fmt: skip


# ----------------------------------------------------------------------------- discovery


SOURCES = sorted((ROOT / "pages").glob("*.py")) + sorted((ROOT / "dashboard").rglob("*.py"))


def _own(scope):
    """The calls made in ``scope`` itself (not in functions defined inside it), and the names it
    assigns (``key = f"{prefix}_pack_seed"``)."""
    calls, names, todo = [], {}, list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Call):
            calls.append(node)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            names[node.targets[0].id] = node.value
        if not isinstance(node, ast.FunctionDef):
            todo.extend(ast.iter_child_nodes(node))
    return calls, names


def _templates(expr, params, names, depth=0) -> set[str]:
    """The keys an expression can be: "a1_t"; "{prefix}_stride" where it uses a parameter of the
    function it is in; through names assigned in that function, conditionals and tuples (every
    string they hold); ".*" for anything else (a loop variable, a computed value)."""
    if depth > 5:
        return {".*"}
    again = lambda e: _templates(e, params, names, depth + 1)  # noqa: E731
    if isinstance(expr, ast.Constant):
        return {expr.value} if isinstance(expr.value, str) else set()
    if isinstance(expr, ast.Name):
        if expr.id in params:
            return {"{" + expr.id + "}"}
        return again(names[expr.id]) if expr.id in names else {".*"}
    if isinstance(expr, ast.JoinedStr):
        out = {""}
        for v in expr.values:
            parts = {v.value} if isinstance(v, ast.Constant) else again(v.value)
            out = {a + b for a in out for b in parts}
        return out
    if isinstance(expr, ast.IfExp):
        return again(expr.body) | again(expr.orelse)
    if isinstance(expr, ast.Tuple | ast.List):
        return set().union(*map(again, expr.elts))
    if isinstance(expr, ast.Subscript):
        return again(expr.value)
    return {".*"}


def source_keys() -> dict[str, set[str]]:
    """file -> the URL keys it binds: the key of every ``ui.linked(key, ...)``, followed through
    the helpers that pass a parameter on as the key (``controls.pick(label, "a3_gamma", ...)``,
    ``controls.seed(backend, "a3")`` -> ``a3_pack_seed``) to the literal at the call. A key
    nothing fixes in the source is a pattern (``a4_r.*``)."""
    scopes = []  # (file, module, function name or None, parameters, calls, assigned names)
    for f in SOURCES:
        tree = ast.parse(f.read_text())
        scopes.append((f, f.stem, None, [], *_own(tree)))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                params = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
                scopes.append((f, f.stem, node.name, params, *_own(node)))
    keys = {i: set() for i in range(len(scopes))}
    binders: dict[tuple[str, str], tuple[list[str], set[str]]] = {}
    changed = True
    while changed:
        changed = False
        for i, (_, module, name, params, calls, names) in enumerate(scopes):
            for call in calls:
                fn = call.func
                callee = (
                    (fn.value.id, fn.attr)
                    if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name)
                    else (module, fn.id)
                    if isinstance(fn, ast.Name)
                    else None
                )
                if callee and callee[1] == "linked" and call.args:
                    new = _templates(call.args[0], params, names)
                elif callee in binders:
                    their_params, templates = binders[callee]
                    given = dict(zip(their_params, call.args, strict=False))
                    given |= {k.arg: k.value for k in call.keywords if k.arg}
                    new = set(templates)
                    for p in their_params:
                        subs = _templates(given[p], params, names) if p in given else {".*"}
                        new = {t.replace("{" + p + "}", v) for t in new for v in subs} if subs else new
                else:
                    continue
                if not new <= keys[i]:
                    keys[i] |= new
                    changed = True
            if name and any("{" in t for t in keys[i]):
                binders[(module, name)] = (params, keys[i])
    out: dict[str, set[str]] = {}
    for i, (f, *_) in enumerate(scopes):
        done = {t for t in keys[i] if "{" not in t and t != ".*"}
        if done:
            out.setdefault(str(f.relative_to(ROOT)), set()).update(done)
    return out


def test_discovery_finds_every_bound_key():
    found = source_keys()
    everywhere = set().union(*found.values())
    assert everywhere >= KNOWN, sorted(KNOWN - everywhere)
    assert found["dashboard/app.py"] == SIDEBAR
    # keys built by the helpers of controls.py, found at the call that names them
    assert {"a3_gamma", "a3_sampler", "a3_stride", "a3_pack_seed"} <= found["pages/a3_sampling.py"]
    assert {"a2_rgb_source", "a2_photo", "a2_index", "a2_prompt"} <= found["pages/a2_denoising.py"]
    assert {"fs_samplers_ddpm", "fs_samplers_flow", "a4_r.*"} <= everywhere
    assert len(everywhere) >= 100


def test_only_ui_linked_binds_a_widget_to_the_url():
    """A widget bound with ``bind="query-params"`` anywhere else would skip the link checks."""
    binding = []
    for f in SOURCES:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "bind":
                binding.append(str(f.relative_to(ROOT)))
            if isinstance(node, ast.Constant) and node.value == "query-params":
                binding.append(str(f.relative_to(ROOT)))
    assert set(binding) == {"dashboard/ui.py"}, binding


# ----------------------------------------------------------------------------- the rules, worked out here


def expected(field: links.Field, text: str):
    """``(value, noticed)`` for a widget with domain ``field`` opened with ``?key=text``: derived
    here from the domain (issue 24's rules), not by calling dashboard.links."""
    if field.kind == "flag":
        flag = {"true": True, "false": False}.get(text.lower())
        return (field.default, True) if flag is None else (flag, False)
    if field.kind in ("choice", "choices"):
        multi = field.kind == "choices"
        if text == "" and field.clearable:
            return ([] if multi else None), False
        if text in field.labels:
            v = field.values[field.labels.index(text)]
            return ([v] if multi else v), False
        return field.default, True
    if field.kind == "text":
        return (text, False) if field.max_len is None or len(text) <= field.max_len else (field.default, True)
    try:
        x = int(text) if field.whole else float(text)
    except ValueError:
        return field.default, True
    if not math.isfinite(x) or len(text) > links.MAX_NUMBER_CHARS:
        return field.default, True
    if x < field.lo or x > field.hi:
        return min(max(x, field.lo), field.hi), True
    steps = (x - field.lo) / field.step if field.step and not field.whole else 0
    if abs(steps - round(steps)) > 1e-9:
        return field.default, True
    return x, False


# ----------------------------------------------------------------------------- running pages


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny models for every name (trained here in seconds) and a scratch runs folder."""
    from engine.adapters import MODEL_NAMES
    from tests.support.tiny import train_tiny

    models = tmp_path_factory.mktemp("fuzz-models")
    for name in MODEL_NAMES:
        train_tiny(name, models / name)
    mp = pytest.MonkeyPatch()
    mp.setenv("DIFFLAB_MODELS_DIR", str(models))
    mp.setenv("DIFFLAB_RUNS_DIR", str(tmp_path_factory.mktemp("fuzz-runs")))
    yield models
    mp.undo()


@pytest.fixture
def fields(monkeypatch):
    """Every ``links.check`` call of a run: key -> the domain it was checked against."""
    seen: dict[str, links.Field] = {}
    check = links.check

    def recording(key, field):
        seen[key] = field
        return check(key, field)

    monkeypatch.setattr(links, "check", recording)
    return seen


def visit(page: str, params: dict[str, str]) -> AppTest:
    """The entrypoint showing ``page`` (the sidebar first, as in the browser), opened with ``params``."""
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    if page != "home.py":
        at.switch_page(f"../pages/{page}")
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def bound_widgets(at: AppTest) -> dict:
    """key -> the AppTest widget, for every widget bound to the URL in this run."""
    bound = (n for n in at._tree if getattr(getattr(n, "proto", None), "query_param_key", ""))
    return {n.proto.query_param_key: n for n in bound}


def shown_domain(widget):
    """What the widget itself offers: its option labels, or its (min, max)."""
    p = widget.proto
    if hasattr(p, "options") and len(p.options):
        return tuple(o.content if hasattr(o, "content") else o for o in p.options)
    return (p.min, p.max)


def checked_domain(field: links.Field):
    return field.labels if field.kind in ("choice", "choices") else (field.lo, field.hi)


def notices(at: AppTest) -> list[str]:
    return [t.value for t in at.toast]


def plain_visit(page: str, fields: dict) -> tuple[list[str], dict]:
    """A visit without a link: the page's keys (bound in this run, or named in its source) and
    their domains, after checking that every bound widget went through ``ui.linked`` and that
    the domain ``links`` checked is the one the widget shows."""
    at = visit(page, {})
    assert not at.exception, [e.value for e in at.exception]
    widgets = bound_widgets(at)
    assert set(widgets) >= SIDEBAR, sorted(widgets)
    assert set(widgets) <= set(fields), f"bound without ui.linked: {sorted(set(widgets) - set(fields))}"
    for key, widget in widgets.items():
        if fields[key].kind in ("number", "choice", "choices"):
            assert checked_domain(fields[key]) == shown_domain(widget), key
    static = {k for k in source_keys().get(f"pages/{page}", ()) if ".*" not in k}
    return sorted(set(widgets) | static), dict(fields)


def hostile_visit(page: str, params: dict[str, str], domains: dict, fields: dict) -> set[str]:
    """Open ``page`` with ``params``: no exception, each linked widget holds what the rules give,
    a notice for exactly the keys whose value was not used as given, and none of those values
    left in the address. Returns the keys bound in this visit."""
    fields.clear()
    at = visit(page, params)
    shown = f"{page} {[(k, v[:20]) for k, v in params.items()][:3]}"
    assert not at.exception, (shown, [e.value for e in at.exception])
    widgets, told = bound_widgets(at), notices(at)
    for key, widget in widgets.items():
        if key not in params:
            continue
        value, noticed = expected(fields.get(key, domains.get(key)), params[key])
        assert widget.value == (pytest.approx(value) if isinstance(value, float) else value), (shown, key)
        assert noticed == any(f"`{key}=" in n or f"`{key}` " in n for n in told), (shown, key, told)
        if noticed and key in at.query_params:
            assert at.query_params[key] != params[key], (shown, key)
    assert all(any(f"`{k}" in n for k in params) for n in told), told  # every notice names a link key
    return set(widgets)


@pytest.mark.parametrize("page", PAGES)
def test_hostile_links_on_every_page(page, env, fields):
    """Per page: a plain visit (the keys and domains), then one visit per hostile value set on
    all its keys at once."""
    keys, domains = plain_visit(page, fields)
    for text in HOSTILE:
        hostile_visit(page, dict.fromkeys(keys, text), domains, fields)


def test_sidebar_keys_one_at_a_time(env, fields):
    """The entrypoint's keys, each value alone (no other key in the link to mask it): Home."""
    _, domains = plain_visit("home.py", fields)
    for key in sorted(SIDEBAR):
        for text in HOSTILE:
            hostile_visit("home.py", {key: text}, domains, fields)


# widgets a plain visit does not show, revealed by a valid link value (kept valid in the visit)
REVEAL = [
    ("a4_image_to_image.py", {"a4_mode": "Inpainting"}),
    ("a4_image_to_image.py", {"a4_mode": "Change the class"}),
    ("a5_illusions.py", {"a5_kind": "Hybrid image"}),
    ("ab_ddpm_vs_flow.py", {"ab_mode": "Two ODEs: DDIM (η = 0) vs flow matching"}),
]


@pytest.mark.parametrize(("page", "reveal"), REVEAL, ids=lambda v: v if isinstance(v, str) else str(v)[:30])
def test_hostile_links_behind_a_valid_choice(page, reveal, env, fields):
    keys, plain = plain_visit(page, fields)
    fields.clear()
    at = visit(page, reveal)
    assert not at.exception and not notices(at), notices(at)
    more = sorted(set(bound_widgets(at)) - set(plain))
    assert more, f"{reveal} shows no new bound widget"
    domains = dict(fields)
    shown = set()  # (a clamped value can make the page stop early: an empty inpainting rectangle)
    for text in ("inf", "99999999", "-1", "<script>alert(1)</script>", "2.5"):
        shown |= hostile_visit(page, dict.fromkeys(more + keys, text) | reveal, domains, fields)
    assert set(more) <= shown, sorted(set(more) - shown)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_every_key_one_at_a_time(page, env, fields):
    """Every key of every page, each hostile value alone: ~2000 visits, ~25 min on 2 cores."""
    keys, domains = plain_visit(page, fields)
    for key in keys:
        for text in HOSTILE:
            hostile_visit(page, {key: text}, domains, fields)


def test_repeated_keys_take_the_first(env, fields):
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.query_params["seed"] = ["7", "2"]
    at.query_params["presenter"] = ["false", "true"]
    at.run()
    assert not at.exception
    assert at.sidebar.number_input(key="seed").value == 7
    assert at.sidebar.toggle(key="presenter").value is False
    assert any("`seed` 2 values; using the first, 7" in n for n in notices(at)), notices(at)
    assert at.query_params["seed"] == "7"


def test_a_valid_link_is_used_without_a_notice(env, fields):
    at = visit("a1_forward.py", {"seed": "3", "presenter": "true", "a1_t": "700", "a1_index": "7"})
    assert not at.exception and not notices(at)
    assert at.sidebar.number_input(key="seed").value == 3 and at.slider(key="a1_t").value == 700


# ----------------------------------------------------------------------------- the rules on their own


@pytest.mark.parametrize(
    ("domain", "raw", "value", "notice"),
    [
        (dict(value=0, min_value=0, max_value=2**31 - 1), ["inf"], 0, "a whole number from 0 to 2147483647"),
        (dict(value=500, min_value=0, max_value=999), ["5000"], 999, "is above 999; using 999"),
        (dict(value=500, min_value=0, max_value=999), ["٣"], 500, "not a whole number"),  # int() takes it
        (dict(value=500, min_value=0, max_value=999), ["1_0"], 500, "not a whole number"),
        (dict(value=2.0, min_value=0.25, max_value=6.0, step=0.25), ["2.3"], 2.0, "in steps of 0.25"),
        (dict(value=2.0, min_value=0.25, max_value=6.0, step=0.25), ["2.25"], None, None),
        (dict(value=2.0, min_value=0.25, max_value=6.0, step=0.25), ["1e308"], 6.0, "above 6"),
        (dict(value=False), ["TRUE"], None, None),
        (dict(value=False), ["1"], False, "not true or false"),
        (dict(value="x", max_chars=5), ["abcdef"], "x", "at most 5 characters"),
        (dict(value=3, options=list(range(10)), arg="default"), [""], None, None),  # nothing selected
        (dict(value=3, options=list(range(10)), arg="index"), [""], 3, "is not one of: 0, 1, 2, 3, 4, 5, …"),
        (dict(value=[1], options=[1, 2, 3], arg="default"), ["1", "3"], None, None),  # a list: every value
        (dict(value=[1], options=[1, 2, 3], arg="default"), ["1", "1"], [1], "different options"),
        (dict(value=[1], options=[1, 2, 3], arg="default", max_selections=1), ["1", "2"], [1], "up to 1"),
        (dict(value="a", options=["a", "b"], arg="index"), ["b", "a"], "b", "2 values; using the first, b"),
    ],
)
def test_link_rules(domain, raw, value, notice):
    d = dict(domain)
    field = links.Field.of(d.pop("value"), d.pop("options", None), d.pop("arg", "value"), d)
    got = links.resolve("k", raw, field)
    if notice is None:
        assert got is None
    else:
        assert got.value == value and notice in got.notice, got


def test_the_notice_repeats_a_value_safely():
    field = links.Field.of(0, None, "value", dict(min_value=0, max_value=9))
    got = links.resolve("seed", ["`<b>\x00" + "9" * 100], field)
    assert "`seed='<b>�999" in got.notice and "…" in got.notice and "\x00" not in got.notice
    assert len(got.notice) < 120


def test_a_number_needs_its_range():
    with pytest.raises(TypeError, match="min_value and max_value"):
        links.Field.of(5, None, "value", {})
