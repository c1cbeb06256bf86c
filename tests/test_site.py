"""The built documentation site renders offline: no page loads a script, style sheet or font
from the network, and MathJax is bundled into the site (`make setup` or `make docs` fetches it
from the npm registry)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from offline_site import problems

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    vendor = ROOT / "docs" / "javascripts" / "vendor" / "mathjax" / "tex-mml-chtml.js"
    if not vendor.exists():
        pytest.fail("MathJax is not bundled yet: run `make setup` (it fetches it from npm)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    built = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def test_the_built_site_loads_nothing_from_the_network(site):
    assert problems(site) == []
    method = (site / "method" / "index.html").read_text()
    assert "javascripts/vendor/mathjax/tex-mml-chtml.js" in method
    assert 'class="arithmatex"' in method  # the equations are there, for the bundled MathJax
    fonts = site / "javascripts" / "vendor" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert len(list(fonts.glob("*.woff"))) > 10
