"""Links are input too: the one place where a value from the page's address becomes a widget's value.

A page's key controls live in its URL (``?a1_t=700&seed=3``, Streamlit's ``bind="query-params"``),
and anyone can type, paste or mangle a URL. Every bound widget gets its keyword arguments from
``ui.linked``, which first calls ``check``: the link's value of that key is held against the
domain that same call gives the widget (``Field.of``: its kind, min, max and step, its options as
the widget labels them, its length), so the domain is written once and a bound widget cannot skip
the check. What happens to a link's value (docs/hardening.md, "Links"):

- valid: the widget starts there (a link reproduces its view exactly);
- a whole or decimal number beyond min..max: the nearer end, as the slider itself does;
- anything else that fails (not a number, NaN or infinite, off the step grid, not one of the
  options, true/false misspelt, too long): the page's default;
- repeated keys (``?seed=1&seed=2``): the first value counts (a multiselect takes them all: that
  is how Streamlit writes a list);
- empty (``?a1_source=``): nothing selected, for the widgets that can hold nothing (segmented
  controls, multiselects); the default for the rest.

Whatever is not used as given is named in a notice: ``st.toast`` with ``duration="infinite"``,
small, in the corner, closed with its ×, shown on the run that opened the link ("The link's
`seed=inf` is not a whole number from 0 to 2147483647; using 0."). The address is corrected too.

Streamlit reads a bound widget's URL value itself while it creates the widget (and raises on
``inf`` or on a number beyond max), from a copy of the query string taken when the run started.
So a failing value is corrected in ``st.query_params`` *and* in that copy before the widget exists
(``_rewrite``: the one use of Streamlit's internals here; requirements.txt pins streamlit 1.67.0).
This happens where the widget is defined, not once at the top of the app: only there is the domain
known (a pack's seeds, the trajectory's length), and the entrypoint's own widgets come first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import streamlit as st

SEEN = "_links_seen"  # session-state keys whose link value has been checked in this session
MAX_NUMBER_CHARS = 40  # longer is not a number anyone meant (and int() of 10^5 digits is slow)
SHOWN_CHARS = 24  # how much of a bad value the notice repeats
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Field:
    """What one bound widget can hold, from the arguments of its ``ui.linked`` call.

    ``kind``: "number", "flag", "choice" (one option), "choices" (a list of options) or "text".
    ``labels`` are the options as the URL writes them (the widget's ``format_func``)."""

    kind: str
    default: object
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    whole: bool = False
    values: tuple = ()
    labels: tuple[str, ...] = ()
    clearable: bool = False  # nothing selected is a value of its own
    max_len: int | None = None  # text: max_chars; choices: max_selections

    @classmethod
    def of(cls, value, options: Sequence | None = None, arg: str = "value", domain: dict | None = None):
        """The domain a widget gets from ``ui.linked(key, value, options, arg, **domain)``; a
        number's default is clamped into its range (a sidebar seed of 2³¹−1 must not break a page
        whose own seed stops at 10 000)."""
        d = domain or {}
        if options is not None:
            values = tuple(options)
            fmt: Callable = d.get("format_func") or str
            multi = arg == "default" and isinstance(value, list | tuple)
            return cls(
                "choices" if multi else "choice",
                list(value) if multi else value,
                values=values,
                labels=tuple(str(fmt(v)) for v in values),
                clearable=arg == "default",  # segmented controls, pills, multiselects
                max_len=d.get("max_selections"),
            )
        if arg != "value":
            raise TypeError(f'ui.linked(..., arg="{arg}") needs the widget\'s options')
        if isinstance(value, bool):
            return cls("flag", value)
        if isinstance(value, str):
            return cls("text", value, max_len=d.get("max_chars"))
        if isinstance(value, int | float):
            lo, hi, step = d.get("min_value"), d.get("max_value"), d.get("step")
            if lo is None or hi is None:
                raise TypeError("a linked number needs min_value and max_value (pass them to ui.linked)")
            whole = all(isinstance(x, int) for x in (value, lo, hi, step) if x is not None)
            return cls("number", min(max(value, lo), hi), lo=lo, hi=hi, step=step, whole=whole)
        raise TypeError(f"ui.linked cannot check a {type(value).__name__} value")

    def label(self, value) -> str:
        """A value as the notice names it."""
        if self.kind == "choice":
            return "nothing" if value is None else self.labels[self.values.index(value)]
        if self.kind == "choices":
            return ", ".join(self.labels[self.values.index(v)] for v in value) or "nothing"
        if self.kind == "flag":
            return str(value).lower()
        if self.kind == "number":
            return str(int(value)) if self.whole else f"{value:g}"
        return f"“{value}”"

    def wants(self) -> str:
        """What a valid value is, in words: "a whole number from 0 to 999"."""
        if self.kind == "number":
            what = "a whole number" if self.whole else "a number"
            grid = f" in steps of {self.step:g}" if self.step is not None and not self.whole else ""
            return f"{what} from {self.label(self.lo)} to {self.label(self.hi)}{grid}"
        if self.kind == "flag":
            return "true or false"
        if self.kind == "text":
            return f"text of at most {self.max_len} characters"
        shown = ", ".join(self.labels[:6]) + (", …" if len(self.labels) > 6 else "")
        if self.kind == "choices":
            most = f"up to {self.max_len} " if self.max_len else ""
            return f"{most}different options from: {shown}"
        return f"one of: {shown}"


@dataclass(frozen=True)
class Resolved:
    """What a link's value comes to: the widget's value, the address's new value (None: drop
    the key) and, when the link is not used as given, why."""

    value: object
    url: str | list[str] | None
    notice: str | None = None


def resolve(key: str, raw: list[str], field: Field) -> Resolved | None:
    """The value a widget with domain ``field`` takes from the link's values ``raw`` of ``key``
    (``st.query_params.get_all(key)``); None when the link is fine as it is."""
    if field.kind == "choices":
        return _resolve_list(key, raw, field)
    text = raw[0]
    value, problem = _parse(text, field)
    if problem is None and len(raw) == 1:
        return None
    shown = f"`{key}={_shown(text)}`" + (f" (the first of {len(raw)} values)" if len(raw) > 1 else "")
    if problem is None:
        return Resolved(value, text, f"The link gives `{key}` {len(raw)} values; using the first, "
                                     f"{field.label(value)}.")
    if problem == "clamped":
        side = "below" if value == field.lo else "above"
        return Resolved(value, _url_text(value, field), f"The link's {shown} is {side} "
                                                        f"{field.label(value)}; using {field.label(value)}.")
    return Resolved(field.default, None, f"The link's {shown} is not {field.wants()}; "
                                         f"using {field.label(field.default)}.")


def _resolve_list(key: str, raw: list[str], field: Field) -> Resolved | None:
    texts = [t for t in raw if t != ""]  # Streamlit's "nothing selected" is an empty value
    ok = (
        all(t in field.labels for t in texts)
        and len(set(texts)) == len(texts)
        and (field.max_len is None or len(texts) <= field.max_len)
    )
    if ok:
        return None
    bad = next((t for t in texts if t not in field.labels), texts[-1])
    return Resolved(field.default, None, f"The link's `{key}={_shown(bad)}` is not "
                                         f"{field.wants()}; using {field.label(field.default)}.")


def _parse(text: str, field: Field):
    """``(value, problem)``: problem None (valid), "clamped" (value is the nearer end) or "bad"."""
    if field.kind == "text":
        return (text, None) if field.max_len is None or len(text) <= field.max_len else (None, "bad")
    if field.kind == "flag":
        return {"true": (True, None), "false": (False, None)}.get(text.lower(), (None, "bad"))
    if field.kind == "choice":
        if text == "" and field.clearable:
            return None, None
        return (field.values[field.labels.index(text)], None) if text in field.labels else (None, "bad")
    if len(text) > MAX_NUMBER_CHARS or not (_WHOLE if field.whole else _DECIMAL).fullmatch(text):
        return None, "bad"
    x = int(text) if field.whole else float(text)
    if not math.isfinite(x):
        return None, "bad"
    if x < field.lo or x > field.hi:
        return min(max(x, field.lo), field.hi), "clamped"
    if field.step is not None and not field.whole and not _on_grid(x, field.lo, field.step):
        return None, "bad"
    return x, None


def _on_grid(x: float, lo: float, step: float) -> bool:
    k = (x - lo) / step
    return abs(k - round(k)) <= 1e-9 * max(1.0, abs(k))


def _url_text(value, field: Field) -> str:
    return str(int(value)) if field.whole or float(value).is_integer() else repr(float(value))


def _shown(text: str) -> str:
    """A link's value, safe to repeat in the notice: printable, no backticks, shortened."""
    clean = "".join(c if c.isprintable() else "�" for c in text).replace("`", "'")
    return clean if len(clean) <= SHOWN_CHARS else clean[:SHOWN_CHARS] + "…"


def value_of(text: str, default):
    """A link's value read early, before its widget and so without its domain (``ui.default``):
    the default's type only (a finite number, true/false); else the default. The widget's
    ``check`` still runs and wins."""
    kind = "flag" if isinstance(default, bool) else "number" if isinstance(default, int | float) else None
    if kind is None:
        return default
    inf = math.inf
    field = Field(kind, default, lo=-inf, hi=inf, whole=isinstance(default, int) and kind == "number")
    value, problem = _parse(text, field)
    return default if problem else value


def check(key: str, field: Field) -> Resolved | None:
    """Hold the link's value of ``key`` against ``field`` before the widget is created. A value
    that fails is corrected in the address; the first time this session sees ``key`` (the run
    that opened the link) it is also named in a notice and returned, for the caller to put in
    session state. Later runs fix a stale address quietly (options can change under a widget)."""
    seen = st.session_state.setdefault(SEEN, set())
    first = key not in seen
    seen.add(key)
    raw = st.query_params.get_all(key)
    got = resolve(key, raw, field) if raw else None
    if got is None:
        return None
    _rewrite(key, got.url)
    if not first:
        return None
    st.toast(got.notice, icon=":material/link_off:", duration="infinite")
    return got


def _rewrite(key: str, url: str | list[str] | None) -> None:
    """Replace (or drop) ``key`` in the address, and in the copy Streamlit seeds widgets from."""
    from streamlit.runtime.state.session_state_proxy import get_session_state

    with get_session_state().query_params() as qp:
        if url is None:
            qp.remove_param(key)
        else:
            kind = "string_array_value" if isinstance(url, list) else "string_value"
            qp.set_corrected_value(key, url, kind)
        qp.set_initial_query_params_from_current()
