"""The public API: every exported name is documented and nothing private leaks."""

import inspect
import re
from pathlib import Path

import mupc

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_public_name_has_a_docstring():
    missing = []
    for name in dir(mupc):
        if name.startswith("_"):
            continue
        value = getattr(mupc, name)
        if inspect.ismodule(value):
            continue
        if not inspect.getdoc(value):
            missing.append(name)
    assert missing == []


# Public subpackages: the only modules reachable as attributes of `mupc`.
PUBLIC_SUBPACKAGES = {"experiments"}


def test_no_private_module_is_exported_by_name():
    exported = [name for name in dir(mupc) if not name.startswith("_")]
    modules = {name for name in exported if inspect.ismodule(getattr(mupc, name))}
    assert modules <= PUBLIC_SUBPACKAGES, modules


def test_every_public_name_is_documented_in_the_readme():
    readme = README.read_text()
    public = [name for name in dir(mupc) if not name.startswith("_") and name != "mupc"]
    assert [name for name in public if not re.search(rf"\b{name}\b", readme)] == []
