"""Fixtures the browser tests share."""

from __future__ import annotations

import pytest

from tests.support import devserver


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for one test module (each test opens its own context on it)."""
    from playwright.sync_api import sync_playwright  # only the browser tests need it

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=devserver.chromium_path(), args=devserver.CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
