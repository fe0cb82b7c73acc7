"""Both Part A backends declare ``PartABackend`` and implement each of its methods with exactly its
parameters (names, order, kinds, defaults): a page written against the Protocol works on either."""

import inspect

import pytest

from dashboard import cache
from dashboard.pack import PackBackend
from dashboard.parta import LiveBackend, PartABackend

METHODS = [
    name for name, fn in vars(PartABackend).items() if inspect.isfunction(fn) and not name.startswith("_")
]


def params(fn) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_the_protocol_names_every_call_a_page_makes():
    assert set(METHODS) == {
        "allowed",
        "notes",
        "sample",
        "grid",
        "denoise",
        "psnr_curve",
        "sdedit",
        "inpaint",
        "anagram",
        "hybrid",
    }


@pytest.mark.parametrize("backend", [LiveBackend, PackBackend], ids=lambda b: b.__name__)
def test_backend_declares_the_protocol(backend):
    assert PartABackend in backend.__mro__  # declared, not only shaped alike


@pytest.mark.parametrize("backend", [LiveBackend, PackBackend], ids=lambda b: b.__name__)
@pytest.mark.parametrize("method", METHODS)
def test_backend_method_has_the_protocols_signature(backend, method):
    impl = getattr(backend, method)
    assert impl is not getattr(PartABackend, method), f"{backend.__name__}.{method} is not implemented"
    assert params(impl) == params(getattr(PartABackend, method))


@pytest.mark.parametrize("method", [m for m in METHODS if m not in ("allowed", "notes")])
def test_cache_wrapper_has_explicit_parameters(method):
    """``dashboard.cache.<method>(key, ...)`` spells out the backend's parameters (no ``*args``)."""
    wrapper = inspect.signature(
        getattr(cache, method).__wrapped__
        if hasattr(getattr(cache, method), "__wrapped__")
        else getattr(cache, method)
    )
    kinds = {p.kind for p in wrapper.parameters.values()}
    assert inspect.Parameter.VAR_POSITIONAL not in kinds and inspect.Parameter.VAR_KEYWORD not in kinds
    ours = [n for n in wrapper.parameters if n not in ("key", "_progress")]
    theirs = [
        n
        for n in inspect.signature(getattr(PartABackend, method)).parameters
        if n not in ("self", "progress")
    ]
    assert ours == theirs
