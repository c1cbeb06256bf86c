"""The public API: every exported name is documented (a docstring, and an entry in the docs'
API reference) and nothing private leaks."""

import inspect
import re
from pathlib import Path

import mupc
import mupc.experiments
import mupc.nn

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _public(module) -> list[str]:
    return [name for name in dir(module) if not name.startswith("_")]


def test_every_public_name_has_a_docstring():
    missing = []
    for module in (mupc, mupc.experiments, mupc.nn):
        for name in _public(module):
            value = getattr(module, name)
            if inspect.ismodule(value):
                continue
            if not inspect.getdoc(value):
                missing.append(f"{module.__name__}.{name}")
    assert missing == []


# Public subpackages: the only modules reachable as attributes of `mupc`.
PUBLIC_SUBPACKAGES = {"experiments", "nn"}


def test_no_private_module_is_exported_by_name():
    exported = _public(mupc)
    modules = {name for name in exported if inspect.ismodule(getattr(mupc, name))}
    assert modules <= PUBLIC_SUBPACKAGES, modules


def _rendered() -> set[str]:
    """The objects the docs render from their docstrings (`::: mupc.NAME` lines)."""
    text = "".join(page.read_text() for page in DOCS.rglob("*.md"))
    return set(re.findall(r"^::: (mupc[\w.]*)\s*$", text, flags=re.M))


def test_every_public_name_is_rendered_on_an_api_page():
    api_pages = "".join(page.read_text() for page in (DOCS / "api").glob("*.md"))
    on_api_pages = set(re.findall(r"^::: mupc\.(\w+)\s*$", api_pages, flags=re.M))
    expected = {name for name in _public(mupc) if name not in PUBLIC_SUBPACKAGES}
    assert sorted(expected - on_api_pages) == []
    assert sorted(on_api_pages - expected) == []  # no entry for a name that is gone
    on_nn_page = set(re.findall(r"^::: mupc\.nn\.(\w+)\s*$", api_pages, flags=re.M))
    assert on_nn_page == set(_public(mupc.nn))


def test_every_experiments_name_is_documented():
    docs = "".join(page.read_text() for page in DOCS.rglob("*.md"))
    rendered = _rendered()
    missing = [
        name
        for name in _public(mupc.experiments)
        if f"mupc.experiments.{name}" not in rendered and not re.search(rf"\b{name}\b", docs)
    ]
    assert missing == []
