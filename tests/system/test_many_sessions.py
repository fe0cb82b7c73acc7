"""Many users at once. A real ``streamlit run dashboard/app.py`` on a free loopback port and
8 Playwright contexts (8 Streamlit sessions) in one headless Chromium, each with its own seed,
loading the Forward and the Sampling pages at the same time. Then a fresh server computes every
seed again, one session at a time.

Fails on: an exception box or a traceback in any session, or a seed whose pictures (sha256 of
every st.image PNG) differ between "8 at once" and "alone". Reports, never fails on: timings,
server RSS (psutil) and how many times the model was loaded (``dashboard.cache`` logs one line
per real load). Numbers land in ``artifacts/hardening_load.json`` and docs/hardening.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

import pytest

from tests.support import devserver

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api", reason="needs python playwright")
psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [3, 14, 15, 92, 65, 35, 89, 79]
PAGES = {"a1_forward": "Forward process", "a3_sampling": "Sampling and classifier-free guidance"}
WAIT = 300.0  # s, per wait: a ceiling for a loaded machine (quiet 2 cores: the whole test in ~3 min)
REPORT: dict = {}

if devserver.chromium_path() is None:
    pytest.skip("chromium not found", allow_module_level=True)


@contextmanager
def streamlit_server(models_dir: Path, log_path: Path):
    with devserver.serve(models_dir, log_path, timeout=90, extra_args=("--logger.level", "info")) as srv:
        yield srv.proc, srv.url


def rss_mb(proc) -> float:
    return round(psutil.Process(proc.pid).memory_info().rss / 2**20, 1)


def wait_idle(page, title: str | None = None, settle: float = 1.0) -> None:
    devserver.wait_idle(page, WAIT, settle, title)


def check_no_exception(page, where: str) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"{where}: {boxes.all_inner_texts()}"
    errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    assert not errors, f"{where}: error boxes {errors}"


def image_hashes(page) -> list[str]:
    """sha256 of every picture on the page (the PNG bytes the server sends)."""
    out = []
    for src in page.locator('[data-testid="stMain"] [data-testid="stImage"] img').evaluate_all(
        "els => els.map(e => e.getAttribute('src'))"
    ):
        body = page.request.get(urljoin(page.url, src)).body()
        out.append(hashlib.sha256(body).hexdigest()[:16])
    return out


def set_seed(page, seed: int) -> None:
    box = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInput"] input').first
    box.fill(str(seed))
    box.press("Enter")


def open_page(page, base: str, path: str) -> None:
    link = devserver.nav_link(page, path)
    if link.count():
        link.first.click()
    else:
        page.goto(f"{base}/{path}")


def test_eight_sessions_at_once_match_one_at_a_time(page_models, tmp_path):
    t_all = time.monotonic()
    results_together: dict[int, dict[str, list[str]]] = {s: {} for s in SEEDS}
    results_alone: dict[int, dict[str, list[str]]] = {s: {} for s in SEEDS}
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=devserver.chromium_path(), args=devserver.CHROMIUM_ARGS)
        try:
            # ---- phase 1: 8 sessions at once
            log1 = tmp_path / "server_together.log"
            with streamlit_server(page_models, log1) as (proc, base):
                REPORT["rss_idle_mb"] = rss_mb(proc)
                pages = []
                for _ in SEEDS:
                    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
                    page = ctx.new_page()
                    page.set_default_timeout(int(WAIT * 1000))
                    page.goto(base + "/")
                    pages.append(page)
                for page in pages:
                    wait_idle(page)
                REPORT["rss_8_sessions_home_mb"] = rss_mb(proc)
                for page, seed in zip(pages, SEEDS, strict=True):
                    set_seed(page, seed)
                for page in pages:
                    wait_idle(page)
                for path, title in PAGES.items():
                    t0 = time.monotonic()
                    for page in pages:  # all 8 clicks first: the server runs 8 scripts at once
                        open_page(page, base, path)
                    for page, seed in zip(pages, SEEDS, strict=True):
                        wait_idle(page, title)
                        check_no_exception(page, f"seed {seed} {path} (8 at once)")
                        results_together[seed][path] = image_hashes(page)
                    REPORT[f"together_{path}_s"] = round(time.monotonic() - t0, 1)
                    REPORT[f"rss_8_sessions_after_{path}_mb"] = rss_mb(proc)
                for page in pages:
                    page.context.close()
            REPORT["model_loads_together"] = log1.read_text().count("difflab: loaded model ddpm-class")

            # ---- phase 2: a fresh server (empty caches), each seed alone in one session
            log2 = tmp_path / "server_alone.log"
            with streamlit_server(page_models, log2) as (proc, base):
                REPORT["rss_idle_fresh_mb"] = rss_mb(proc)
                ctx = browser.new_context(viewport={"width": 1280, "height": 720})
                page = ctx.new_page()
                page.set_default_timeout(int(WAIT * 1000))
                page.goto(base + "/")
                wait_idle(page)
                order = list(PAGES)
                t0 = time.monotonic()
                for i, seed in enumerate(SEEDS):
                    # alternate the page order so each seed costs one seed change and one navigation
                    seq = order if i % 2 == 0 else order[::-1]
                    for j, path in enumerate(seq):
                        if i == 0 or j == 1:
                            open_page(page, base, path)
                        if j == 0:
                            if i == 0:
                                wait_idle(page, PAGES[path])
                            set_seed(page, seed)
                        wait_idle(page, PAGES[path])
                        check_no_exception(page, f"seed {seed} {path} (alone)")
                        results_alone[seed][path] = image_hashes(page)
                    if i == 0:
                        REPORT["rss_1_session_mb"] = rss_mb(proc)
                REPORT["alone_all_seeds_s"] = round(time.monotonic() - t0, 1)
                REPORT["rss_1_session_after_8_seeds_mb"] = rss_mb(proc)
                ctx.close()
            REPORT["model_loads_alone"] = log2.read_text().count("difflab: loaded model ddpm-class")
        finally:
            browser.close()
    REPORT["per_extra_session_mb"] = round(
        (REPORT["rss_8_sessions_after_a3_sampling_mb"] - REPORT["rss_1_session_after_8_seeds_mb"]) / 7, 1
    )
    REPORT["total_s"] = round(time.monotonic() - t_all, 1)
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "hardening_load.json").write_text(json.dumps(REPORT, indent=2) + "\n")
    print("\n[load] " + json.dumps(REPORT))

    for seed in SEEDS:
        for path in PAGES:
            got, ref = results_together[seed][path], results_alone[seed][path]
            assert got and got == ref, f"seed {seed} {path}: 8-at-once {got} != alone {ref}"
    # different seeds give different pictures (the seed really reached each session)
    firsts = {results_together[s]["a1_forward"][0] for s in SEEDS}
    assert len(firsts) == len(SEEDS)
