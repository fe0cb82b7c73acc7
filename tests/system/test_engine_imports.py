"""The dependency arrow points one way: pages -> dashboard -> engine, never back."""

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
ENGINE_FILES = sorted(ENGINE.rglob("*.py"))
UI_PACKAGES = {"streamlit", "plotly"}
# Only the adapters may pull in the heavy model libraries: DeepFloyd IF, and diffusers'
# schedulers behind the sampler contract (DDIM, DPM-Solver++).
ADAPTER_ONLY = {"diffusers", "transformers"}
ADAPTERS = {"deepfloyd/model.py": {"diffusers", "transformers"}, "deepfloyd/weights.py": {"huggingface_hub"},
            "diffusers_samplers.py": {"diffusers"}}


def rel(path: Path) -> str:
    return path.relative_to(ENGINE).as_posix()


def imported_roots(path: Path) -> set[str]:
    """Top-level package names imported by a file, including importlib/__import__ with literals."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                roots.add(node.args[0].value.split(".")[0])
    return roots


def test_engine_has_modules():
    assert {"schedule.py", "denoise.py", "train.py", "cli/__init__.py"} <= {rel(p) for p in ENGINE_FILES}


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: rel(p))
def test_engine_never_imports_ui(path):
    bad = imported_roots(path) & UI_PACKAGES
    assert not bad, f"engine/{rel(path)} imports {sorted(bad)}; the engine must not depend on the UI"


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: rel(p))
def test_only_the_adapters_import_model_libraries(path):
    bad = imported_roots(path) & ADAPTER_ONLY - ADAPTERS.get(rel(path), set())
    assert not bad, f"engine/{rel(path)} imports {sorted(bad)}; only {sorted(ADAPTERS)} may"


def test_the_checker_sees_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import streamlit as st\nfrom plotly import graph_objects\n"
        "def f():\n    import importlib\n    return importlib.import_module('diffusers.schedulers')\n"
    )
    assert imported_roots(probe) >= {"streamlit", "plotly", "diffusers"}
