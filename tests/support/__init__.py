"""Test and development tooling that drives the dashboard in a real browser: ``devserver`` (a
loopback ``streamlit run`` and headless Chromium helpers) and ``browser_bench`` (``python -m
tests.support.browser_bench``). Not part of the installed packages."""
