"""Launched and installed the standard ways: plain ``streamlit run dashboard/app.py`` (Streamlit
puts only dashboard/ on sys.path), and ``pip install -e .`` (pyproject.toml's build system and
packages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dashboard import devserver

ROOT = Path(__file__).resolve().parent.parent


def test_editable_install_imports_from_anywhere(tmp_path):
    """``pip install -e .`` into a fresh environment (this machine's packages visible, nothing
    downloaded), then both packages import from another folder and declare their requirements."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True
    )
    py = str(venv / "bin" / "python")
    install = [
        py,
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--no-build-isolation",
        "--no-deps",
        "-e",
        str(ROOT),
    ]
    out = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    code = (
        "import engine, dashboard.images, importlib.metadata as m; print(engine.__file__); "
        "print('|'.join(m.requires('diffusion-lab')))"
    )
    out = subprocess.run([py, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    where, requires = out.stdout.splitlines()
    requires = requires.split("|")
    assert Path(where).parent == ROOT / "engine"  # editable: the checkout itself
    assert {"torch==2.14.1", "streamlit==1.67.0", "diffusers==0.42.1"} <= set(requires)
    assert 'pytest==9.2.0; extra == "test"' in requires  # the test tools are an extra, not the app's


@pytest.mark.browser
def test_plain_streamlit_run_shows_home(page_models, tmp_path):
    """What Streamlit's docs, Community Cloud and Docker recipes run: ``streamlit run
    dashboard/app.py`` (not ``python -m``). Home renders without an exception box."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if devserver.chromium_path() is None:
        pytest.skip("chromium not found (bash scripts/setup.sh --test installs it)")
    log = tmp_path / "plain_server.log"
    with (
        devserver.serve(page_models, log, runs_dir=tmp_path / "runs", plain=True) as srv,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=devserver.chromium_path(), args=devserver.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=devserver.VIEWPORT)
            page.goto(srv.url + "/")
            devserver.wait_idle(page, 180, title="Diffusion Lab")
            assert page.locator('[data-testid="stException"]').count() == 0, log.read_text()[-2000:]
            assert "Deliverables (Part A)" in page.inner_text('[data-testid="stMain"]')
        finally:
            browser.close()
    assert "ModuleNotFoundError" not in log.read_text()
