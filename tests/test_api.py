"""The public API: every exported name is documented and nothing private leaks."""

import inspect

import mupc


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


def test_no_private_module_is_exported_by_name():
    exported = [name for name in dir(mupc) if not name.startswith("_")]
    assert all(not inspect.ismodule(getattr(mupc, name)) for name in exported), exported
