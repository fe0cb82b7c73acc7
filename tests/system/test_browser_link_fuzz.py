"""Issue 24 in a real browser (headless Debian Chromium at 1280x720): hostile links open without
an exception box, each refused value named in a notice (a toast, closed with its ×), the address
corrected, and no script from the link runs. Screenshots in ``artifacts/screenshots/link_fuzz_*.png``.
The whole hostile list, on every page and key, is tests/pages/test_link_fuzz.py (AppTest)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.support import devserver

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need python playwright")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SHOTS = ARTIFACTS / "screenshots"
TIMEOUT_S = 300.0

if devserver.chromium_path() is None:
    pytest.skip(
        "chromium not found (bash scripts/setup.sh --test installs Debian's chromium)",
        allow_module_level=True,
    )

SCRIPT = "<script>alert(1)</script>"
LINKS = {  # name: (page, params, keys each named in a notice)
    "sidebar": (
        "",
        {"seed": "inf", "presenter": "yes", "backend": "../../etc/passwd"},
        ["seed", "presenter", "backend"],
    ),
    "forward": (
        "a1_forward",
        {"seed": "1e309", "a1_index": "99999999", "a1_t": "nan", "a1_source": SCRIPT},
        ["seed", "a1_index", "a1_t", "a1_source"],
    ),
    "flow": (
        "b2_flow",
        {"b2_steps": "0x10", "b2_seed": "-1", "b2_model": "ß∂ƒ©˙∆˚¬…", "b2_gamma": "x" * 10_000},
        ["b2_steps", "b2_seed", "b2_model", "b2_gamma"],
    ),
}


@pytest.fixture(scope="module")
def server(page_models, tmp_path_factory):
    with devserver.serve(
        page_models,
        ARTIFACTS / "browser_link_fuzz_server.log",
        runs_dir=tmp_path_factory.mktemp("link-fuzz-runs"),
    ) as srv:
        yield srv.url


@pytest.mark.parametrize("name", list(LINKS))
def test_a_hostile_link_opens_with_notices(server, browser, name):
    path, params, named = LINKS[name]
    page = browser.new_context(viewport=devserver.VIEWPORT).new_page()
    page.set_default_timeout(60_000)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    url = f"{server}/{path}?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    page.goto(url)
    devserver.wait_idle(page, TIMEOUT_S)
    toasts = page.locator('[data-testid="stToast"]')
    toasts.first.wait_for()
    texts = toasts.all_inner_texts()
    devserver.full_screenshot(page, SHOTS / f"link_fuzz_{name}.png")
    assert page.locator('[data-testid="stException"]').count() == 0, url
    for key in named:
        assert any(f"{key}=" in t for t in texts), (key, texts)
    assert not dialogs, dialogs  # the <script> in the link never ran
    left = parse_qs(urlsplit(page.url).query, keep_blank_values=True)
    assert not any(v == [params[k]] for k, v in left.items() if k in params), left  # the address is fixed
    before = toasts.count()
    toasts.first.get_by_role("button", name="Close").click()  # dismissable
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=\"stToast\"]').length < {before}")
