"""Test and development tooling, not part of the installed packages: ``devserver`` (a loopback
``streamlit run`` and headless Chromium helpers), ``browser_bench`` (``python -m
tests.support.browser_bench``), ``helpers`` (pages under AppTest, run folders) and ``tiny`` (tiny
real models trained in seconds)."""
