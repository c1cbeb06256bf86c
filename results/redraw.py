"""Redraw every figure of the docs that has a CSV in results/ (`make figures`).

Each entry of `results/figures.json` names a CSV, the kind of figure, the PNG it draws in
docs/figures/, extra `mupc redraw` flags, and the command that measured the CSV.
Run from the repository root: `python results/redraw.py`.
"""

import json
import sys
from pathlib import Path

from mupc._cli import main

MANIFEST = Path(__file__).with_name("figures.json")


def entries() -> list[dict]:
    """The figures listed in `results/figures.json`."""
    return json.loads(MANIFEST.read_text())


def redraw(entry: dict, out: str | None = None) -> int:
    """`mupc redraw` for one entry, writing to `out` (default: the entry's own PNG)."""
    return main(
        ["redraw", entry["figure"], entry["csv"], "--out", out or entry["out"], *entry["args"]]
    )


if __name__ == "__main__":
    sys.exit(max((redraw(entry) for entry in entries()), default=0))
