"""The README's quick-start example runs as written."""

import os
import re
from pathlib import Path

import jax
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _quickstart() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
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


if __name__ == "__main__":
    pytest.main([__file__])
