"""The README's quick-start example runs as written; the README stays short, its links resolve,
and the docs' getting-started page shows the same example."""

import os
import re
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def _quickstart() -> str:
    blocks = _python_blocks(README)
    assert blocks, "the README has no Python example"
    return blocks[0]


def test_quickstart_runs(tmp_path, capsys):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        # The example is user code: standard dtype promotion, as a user would have.
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            namespace: dict = {}
            exec(compile(_quickstart(), "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    evaluation = namespace["mupc"].evaluate(
        namespace["state"].network, namespace["data"].test_images, namespace["data"].test_labels
    )
    assert evaluation.accuracy > 0.6, evaluation
    assert (tmp_path / "runs" / "quickstart.npz").is_file()
    assert "0 " in capsys.readouterr().out


def test_docs_quickstart_is_the_tested_one():
    assert _python_blocks(GETTING_STARTED)[0] == _quickstart()


def test_readme_is_short_and_its_links_resolve():
    text = README.read_text()
    assert len(text.encode()) < 13_000, "keep the README under 13 KB; move detail into docs/"
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert any(t.startswith("docs/") for t in local)
    assert [t for t in local if not (ROOT / t).exists()] == []


def test_every_python_example_in_the_docs_compiles():
    pages = [README, *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        for block in _python_blocks(page):
            compile(block, str(page), "exec")  # a SyntaxError names the page


if __name__ == "__main__":
    pytest.main([__file__])
