"""The experiments API: its examples in docs/experiments-api.md run as written, and every
public name of `mupc.experiments` is documented."""

import inspect
import os
import re
from pathlib import Path

import jax

import mupc.experiments

PAGE = Path(__file__).resolve().parent.parent / "docs" / "experiments-api.md"


def test_examples_run(tmp_path, capsys):
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 2
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        # The examples are user code: standard dtype promotion, as a user would have.
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            for block in blocks:
                exec(compile(block, str(PAGE), "exec"), {})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "H4-s1 4 " in printed
    assert (tmp_path / "runs" / "api-sweep" / "results.csv").is_file()


def test_every_public_name_is_documented():
    names = [name for name in dir(mupc.experiments) if not name.startswith("_")]
    callables = [getattr(mupc.experiments, name) for name in names]
    missing = [
        name
        for name, value in zip(names, callables, strict=True)
        if (inspect.isclass(value) or inspect.isfunction(value)) and not inspect.getdoc(value)
    ]
    assert missing == []
    page = PAGE.read_text()
    assert [name for name in names if f"`{name}" not in page] == []


def test_the_diagnostics_example_runs_and_matches_the_command_line(tmp_path):
    """The Python example of the diagnostics tutorial runs as written, and writes the same
    `coords.csv` as `mupc diagnose coords` with the same settings."""
    from mupc._cli import main

    page = PAGE.parent / "tutorials" / "diagnostics.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    (block,) = [block for block in blocks if "diagnose_coords(" in block]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(block, str(page), "exec"), {})
    finally:
        os.chdir(cwd)
    argv = ["diagnose", "coords", "--widths", "8", "16", "--depths", "2", "--params", "mupc",
            "--input-dim", "16", "--output-dim", "3", "--batch-size", "4", "--steps", "2",
            "--quiet", "--out", str(tmp_path / "cli")]  # fmt: skip
    assert main(argv) == 0
    api = (tmp_path / "runs" / "coords-api" / "coords.csv").read_text()
    assert api == (tmp_path / "cli" / "coords.csv").read_text()
