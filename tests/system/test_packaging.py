"""Launched and installed the standard ways: plain ``streamlit run dashboard/app.py`` (Streamlit
puts only dashboard/ on sys.path), ``pip install -e .`` (pyproject.toml's build system and
packages), and the wheel ``pip wheel .`` builds: the product packages with their data files and no
test tooling (the browser drivers live in tests/support/)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import devserver

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "dashboard")


def _source_files() -> set[str]:
    """Every file of the product packages in this checkout, as wheel paths (no bytecode)."""
    return {
        f.relative_to(ROOT).as_posix()
        for pkg in PACKAGES
        for f in (ROOT / pkg).rglob("*")
        if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
    }


def _imported_roots(source: str) -> set[str]:
    """Top-level names a module imports anywhere (also inside functions)."""
    tree = ast.parse(source)
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return {name.split(".")[0] for name in names}


def test_wheel_holds_the_packages_and_no_browser_code(tmp_path):
    """``pip wheel . --no-deps --no-build-isolation`` (offline), built from a copy of the
    checkout so no stale build/ folder leaks into it: every file of engine/ and dashboard/ (the
    .py modules, so no subpackage lacks its __init__.py, and the data files such as
    dashboard/web/*.html, read at run time), nothing else at the top level, and no module that
    imports Playwright."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "requirements-test.txt"):
        shutil.copy2(ROOT / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "wheel"
    cmd = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q",
           "--disable-pip-version-check", "-w", str(out)]
    built = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("diffusion_lab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        sources = {n: z.read(n).decode() for n in names if n.endswith(".py")}
    assert {"engine/__init__.py", "dashboard/__init__.py", "dashboard/app.py"} <= names
    data = {n for n in _source_files() if not n.endswith(".py")}
    assert data, "expected package data files (dashboard/web/...)"
    assert _source_files() <= names, sorted(_source_files() - names)
    others = {n.split("/")[0] for n in names} - set(PACKAGES)
    assert len(others) == 1 and others.pop().endswith(".dist-info")  # no tests/, no top-level modules
    browser = sorted(n for n, text in sources.items() if "playwright" in _imported_roots(text))
    assert not browser, f"modules importing playwright in the wheel: {browser}"
    assert not [n for n in names if "devserver" in n or "browser_bench" in n]


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
