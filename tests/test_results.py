"""Every figure of the docs that has a CSV in results/ is redrawn from it by `mupc redraw`, and
what the command reports agrees with an independent computation from the CSV."""

import csv
import importlib.util
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("redraw", ROOT / "results" / "redraw.py")
assert _spec is not None and _spec.loader is not None
redraw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(redraw)
ENTRIES = redraw.entries()


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _best_cells(rows: list[dict]) -> dict[int, tuple[float, float]]:
    """Per size, the (weight lr, activity rate) with the lowest mean log10 min training loss
    over seeds, cells with a diverged run left out: written out with NumPy."""
    cells: dict[tuple, list] = defaultdict(list)
    for row in rows:
        rate = row["error_lr"] or row["activity_lr_batch_mean"]
        cells[(int(row["size"]), float(row["weight_lr"]), float(rate))].append(row)
    best: dict[int, tuple[float, tuple[float, float]]] = {}
    for (size, weight, rate), group in cells.items():
        if any(row["diverged"] == "True" for row in group):
            continue
        value = float(np.mean([math.log10(float(row["min_train_loss"])) for row in group]))
        if size not in best or value < best[size][0]:
            best[size] = (value, (weight, rate))
    return {size: cell for size, (_, cell) in best.items()}


def test_every_entry_has_its_csv_and_a_figure_in_the_docs():
    assert ENTRIES, "results/figures.json lists no figure"
    docs = "".join(page.read_text() for page in (ROOT / "docs").rglob("*.md"))
    for entry in ENTRIES:
        assert (ROOT / entry["csv"]).is_file(), entry["csv"]
        assert entry["figure"] in ("depth", "transfer", "signal")
        name = Path(entry["out"]).name
        assert f"figures/{name}" in docs, f"{name} is drawn but no docs page shows it"
        assert entry["command"].split()[0] in ("mupc", "sh")  # a command or a committed script
        if entry["command"].startswith("sh "):
            assert (ROOT / entry["command"].split()[1]).is_file(), entry["command"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["out"] for entry in ENTRIES])
def test_redraw_from_the_committed_csv(entry, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "figure.png"
    assert redraw.redraw(entry, str(out)) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    rows = _rows(ROOT / entry["csv"])
    if entry["figure"] == "transfer":
        size_name = entry["args"][entry["args"].index("--size-name") + 1]
        for size, (weight, rate) in _best_cells(rows).items():
            assert re.search(rf"{size_name} = {size}: \({weight:g}, {rate:g}\)", printed), size
    elif entry["figure"] == "depth":
        groups: dict[tuple, list] = defaultdict(list)
        for row in rows:
            if row["diverged"] != "True":
                groups[(row["method"], int(row["depth"]))].append(100 * float(row["test_accuracy"]))
        for (method, depth), values in groups.items():
            line = f"{method:<10} {depth:<5} {np.mean(values):5.1f} ± {np.std(values):4.1f} %"
            assert line in printed
