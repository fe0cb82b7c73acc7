"""Shared Streamlit rendering for every page, Part A and Part B: presenter mode, images as PNG,
downloads, charts, errors as messages, and progress bars fed by the engine's step callbacks.

Pages must run on their own (AppTest runs them one by one), so everything here reads the
sidebar's choices with ``st.session_state.get(..., default)``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st
import streamlit.components.v1 as components
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from dashboard import alt as alt_text
from dashboard import figures, images, links, web

SEED_DEFAULT = 0
SEED_MAX = 2**31 - 1  # the sidebar seed's range: a torch generator seed, a 32-bit int
PERSISTED = "_ui_default_keys"  # session-state keys whose widgets got their default via default()


class Abandoned(Exception):
    """Raised inside a computation whose page run was interrupted (a widget changed)."""


def presenter() -> bool:
    """Presenter mode (sidebar toggle): bigger images, fewer secondary controls."""
    return bool(st.session_state.get("presenter", False))


def seed() -> int:
    """The sidebar's seed (``st.session_state["seed"]``), 0 when the sidebar has not run; a
    forged state (NaN, infinite, out of range) reads as the nearest seed, never as a crash."""
    try:
        return min(max(int(st.session_state.get("seed", SEED_DEFAULT)), 0), SEED_MAX)
    except (TypeError, ValueError, OverflowError):
        return SEED_DEFAULT


def error_box(message: str, fix: str | None = None) -> None:
    """A user-facing error: what happened and the command or action that fixes it."""
    st.error(message + (f"\n\nFix: `{fix}`" if fix else ""))


def default(key: str, value):
    """Give a keyed widget its default through session state (tests and links can preset it),
    and re-assert its current value on every run, before the widget is created.

    Re-assigning matters when a widget was skipped for a run (an early ``st.stop()``): without
    it the browser redraws the widget at its built-in default while the server keeps the old
    value, so the page would show one value and use another."""
    if key not in st.session_state and key in st.query_params:
        # a link read before its widget, so without its range (links.check holds it there and wins)
        value = links.value_of((st.query_params.get_all(key) or [""])[0], value)
    st.session_state[key] = st.session_state.get(key, value)
    st.session_state.setdefault(PERSISTED, set()).add(key)
    return st.session_state[key]


def linked(key: str, value, options=None, arg: str = "value", **domain) -> dict:
    """Keyword arguments for a widget whose value belongs in a shareable link: it is bound to
    the URL's query parameter ``key`` (Streamlit's ``bind="query-params"``), starts at
    ``value`` (through session state, see ``default``), and tells Streamlit that same default
    under the widget's own name for it (``arg``: "value" for sliders, number inputs, toggles and
    select sliders, "index" for select boxes and radios, "default" for segmented controls and
    multiselects). A value equal to the default is left out of the URL, so the two must agree:
    then a link opened in a fresh session shows exactly what its sender saw.

    The widget's domain is given here, once, and handed on to the widget: ``options`` and the
    keywords ``domain`` (``min_value``, ``max_value``, ``step``, ``format_func``, ``max_chars``,
    ``max_selections``), so ``st.slider("t", **ui.linked("a1_t", 500, min_value=0, max_value=999))``.
    The link's value is checked against them before the widget exists (``dashboard.links``); a
    number needs its ``min_value`` and ``max_value``."""
    field = links.Field.of(value, options, arg, domain)
    value = field.default  # a number's default clamped into its range
    got = links.check(key, field)
    default(key, value)
    if got is not None:  # the run that opened a bad link: the widget starts where the notice says
        st.session_state[key] = got.value
    own = list(options).index(value) if arg == "index" else value
    choices = {} if options is None else {"options": options}
    return {"key": key, "bind": "query-params", arg: own, **choices, **domain}


def share_link() -> None:
    """A "link to this view" popover: the page's address with every linked control's value."""
    base = st.context.url
    if not base:  # no browser (AppTest)
        return
    params = [(k, v) for k in st.query_params for v in st.query_params.get_all(k)]
    link = base + ("?" + urlencode(params) if params else "")
    with st.popover("Link to this view", icon=":material/link:", width="stretch"):
        st.caption("Anyone opening this link sees this page with these settings:")
        st.code(link, language=None, wrap_lines=True)


def keep_page_settings() -> None:
    """Called by the entrypoint before a page runs: widgets of pages not shown in this run
    would be forgotten by Streamlit; re-asserting their keys keeps a page's settings when the
    class navigates away and back."""
    for key in st.session_state.get(PERSISTED, ()):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def scale(base: int = 6) -> int:
    """Nearest-neighbour upscale factor for 28x28 images; presenter mode enlarges."""
    return base * 3 // 2 if presenter() else base


def scale_for(size: int, base: int = 6) -> int:
    """``scale(base)`` for a 28x28 digit, adjusted so a ``size`` px image shows as big."""
    return max(1, round(scale(base) * 28 / size))


def secondary(label: str = "More controls"):
    """A container for secondary controls: open normally, collapsed in presenter mode (the
    widgets keep their values)."""
    return st.expander(label, expanded=not presenter())


LEAD_KEY = "lead_figure"  # the lead figure's container: presenter.css fits it to the first screen


@dataclass(frozen=True)
class Lead:
    """Where a topic page's opening goes (``lead()``): its explanation, main controls and figure."""

    intro: DeltaGenerator
    controls: DeltaGenerator
    figure: DeltaGenerator


def lead(ratio=(1, 2), label: str = "What is happening") -> Lead:
    """A topic page's opening, laid out for who is looking.

    At a desk, the reading order: the explanation, then the controls, then the figure. In
    presenter mode (#25) the figure comes first, on a projector's first screen, with the main
    controls in a column beside it, and the explanation (formulas and all) waits in a collapsed
    "What is happening" expander below them. The page writes into ``intro``, ``controls`` and
    ``figure`` in whatever order its code needs: the containers already stand where they show."""
    if not presenter():
        return Lead(st.container(), st.container(), st.container())
    controls, figure = st.columns(ratio, gap="medium")
    return Lead(st.expander(label, expanded=False), controls, figure.container(key=LEAD_KEY))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "figure"


# ----------------------------------------------------------------------------- images and downloads


def image(
    img,
    caption: str | None = None,
    scale_by: int = 1,
    download: str | None = None,
    key: str | None = None,
    width="content",
    alt: str | None = None,
) -> None:
    """Show an image (one image or an already composed grid) as a nearest-neighbour PNG
    (st.image would pick JPEG for bytes on its own), with an optional PNG download button
    named ``download``. ``alt`` says what it shows, for a screen reader (``dashboard.alt``):
    written from the data, it defaults to the caption; one of the two is required."""
    data = images.png(img, scale_by)
    st.image(data, caption=caption, output_format="PNG", width=width, alt=alt_text.image(caption, alt))
    if download:
        _download(
            "PNG",
            data,
            f"{slug(download)}.png",
            "image/png",
            ":material/download:",
            key or f"dl_{slug(download)}",
        )


def download_png(
    img,
    name: str,
    key: str | None = None,
    label: str = "PNG",
    scale_by: int = 1,
    icon: str | None = ":material/download:",
    kind: str = "secondary",
) -> None:
    """Only the download button for a PNG of ``img`` (encoded when clicked)."""
    _download(
        label,
        lambda: images.png(img, scale_by),
        f"{slug(name)}.png",
        "image/png",
        icon,
        key or f"dl_{slug(name)}",
        kind,
    )


def gif_download(
    frames,
    label: str,
    file_name: str,
    scale_by: int = 4,
    key: str | None = None,
    icon: str | None = ":material/animation:",
    kind: str = "secondary",
    **gif_args,
) -> None:
    """A GIF download, encoded only when clicked; ``gif_args`` go to ``images.gif`` (durations,
    captions)."""
    _download(
        label,
        lambda: images.gif(frames, scale_by, **gif_args),
        f"{slug(file_name)}.gif",
        "image/gif",
        icon,
        key or f"gif_{slug(file_name)}",
        kind,
    )


def _download(label: str, data, file_name: str, mime: str, icon, key: str, kind: str = "secondary") -> None:
    """A download button that does not rerun the page when clicked (``data``: bytes or a
    function that makes them, called on click)."""
    st.download_button(
        label, data, file_name=file_name, mime=mime, icon=icon, key=key, on_click="ignore", type=kind
    )


def presenter_fonts(fig):
    """In presenter mode, chart text (ticks, axis titles, legends) large enough for the back
    row; the figure otherwise unchanged. Returns ``fig``."""
    if presenter():
        fig.update_layout(font={"size": 17}, title_font={"size": 21}, legend_font_size=15)
        # sizes set on an axis win over the layout's font: set them too
        fig.update_xaxes(tickfont_size=15, title_font_size=17)
        fig.update_yaxes(tickfont_size=15, title_font_size=17)
        # a long y title at 17 px runs past a short chart's height, where Plotly cuts it off
        for ax in fig.select_yaxes():
            if len(ax.title.text or "") > 30:
                ax.title.font.size = 14
        for slider in fig.layout.sliders or ():  # room for the larger Play/Pause buttons beside it
            slider.x, slider.len = 0.26, 0.74
    return fig


def plot(fig, key: str | None = None, filename: str | None = None, alt: str | None = None) -> None:
    """A Plotly chart (presenter-sized text in presenter mode); its modebar camera button saves
    it as ``filename``.png (default: from ``key``). ``alt``, its text alternative, defaults to a
    summary of its own data (``dashboard.alt.chart``: title, axes, each series' course)."""
    presenter_fonts(fig)
    options = {**figures.PLOTLY_CONFIG["toImageButtonOptions"], "filename": filename or slug(key or "chart")}
    config = {**figures.PLOTLY_CONFIG, "toImageButtonOptions": options}
    st.plotly_chart(fig, config=config, key=key, alt=alt or alt_text.chart(fig))


def page_css() -> None:
    """The app's own CSS, once per run from the entrypoint: focus rings and text colours for
    WCAG AA in both themes (``dashboard/web/a11y.css``); in presenter mode also larger text for
    a 1280x720 projector (``presenter.css``)."""
    css = web.read("a11y.css") + (web.read("presenter.css") if presenter() else "")
    st.markdown("<style>" + css + "</style>", unsafe_allow_html=True)



def presenter_keys() -> None:
    """Presenter mode's keyboard (``dashboard/web/presenter_keys.js``: arrows step the animation on
    screen, space plays it, Enter presses the main button): a zero-height component that installs
    the key handler into the app's page once and switches it on or off with presenter mode."""
    on = "true" if presenter() else "false"
    html = web.fill("presenter_keys.html", ON=on, KEYS=json.dumps(web.read("presenter_keys.js")))
    components.html(html, height=0)


# ----------------------------------------------------------------------------- long work


def run_with_progress(fn, *args, label: str = "Computing…", delay_s: float = 0.3):
    """``fn(*args, _progress=...)`` (a ``dashboard.cache`` function) with a progress bar fed by
    the engine's step callbacks. The work runs in a helper thread while this script updates the
    bar; a cache hit returns before ``delay_s``, so no bar flashes. When the page run is
    interrupted (a widget changed) the work stops at its next step and nothing is cached."""
    state = {"fraction": 0.0, "text": label}
    done, abandoned, out = threading.Event(), threading.Event(), {}

    def progress(fraction: float, text: str) -> None:
        if abandoned.is_set():
            raise Abandoned
        state["fraction"], state["text"] = min(max(fraction, 0.0), 1.0), text

    def work() -> None:
        try:
            out["value"] = fn(*args, _progress=progress)
        except BaseException as e:  # noqa: BLE001 -- handed to the script thread below
            out["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=work, daemon=True, name="difflab-compute")
    add_script_run_ctx(worker, get_script_run_ctx())
    worker.start()
    bar, t0 = None, time.monotonic()
    try:
        while not done.wait(0.1):
            if bar is None and time.monotonic() - t0 >= delay_s:
                bar = st.progress(0.0, text=label)
            if bar is not None:
                bar.progress(state["fraction"], text=state["text"])
    finally:
        if not done.is_set():
            abandoned.set()
    if bar is not None:
        bar.empty()
    if "error" in out:
        raise out["error"]
    return out["value"]
