"""Training curves of finished (or running) runs, read from their `metrics.jsonl`.

`plot_runs` draws up to four panels against the training step, one colour per run, so that
several runs can be compared on one figure:

- `loss`: the feedforward training loss of the last batch before each log line (log scale);
- `test_accuracy`: test accuracy in %, at every evaluation;
- `energy`: the batch-mean PC energy before (dashed) and after (solid) inference (log scale);
- `layer_energies`: the energy of each layer $l = 1..L$ at the first (dashed) and last (solid)
  logged step, when the records hold a `layer_energies` list.

A panel no run has data for is left out. `curve_data` returns exactly the numbers drawn.
"""

import json
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

from .._atomic import atomic_open
from ._figures import _COLOURS

PANELS = ("loss", "test_accuracy", "energy", "layer_energies")
_TITLES = {
    "loss": "training loss",
    "test_accuracy": "test accuracy (%)",
    "energy": "energy (dashed: before inference, solid: after)",
    "layer_energies": "energy per layer (dashed: first log, solid: last)",
}


class Series(NamedTuple):
    """One line of a panel: its x values, y values and line style (`"-"` or `"--"`)."""

    x: list[float]
    y: list[float]
    style: str


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of `run_dir/metrics.jsonl`, in order; a last line cut short by a kill is
    skipped.

    **Raises:** `FileNotFoundError` when the folder has no `metrics.jsonl`; `ValueError` when a
    line other than the last is not JSON.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"No metrics.jsonl in {str(run_dir)!r}: expected the --out folder of `mupc train` "
            "(or a sweep's runs/<run-id>/ folder)."
        )
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break  # a line torn by a kill
            raise ValueError(f"{str(path)!r}, line {number}: not a JSON record.") from None
    return records


def run_folders(paths: list[str | os.PathLike]) -> list[Path]:
    """The run folders named by `paths`: a folder with `metrics.jsonl` is one run; a sweep
    folder (with `runs/<run-id>/metrics.jsonl`) stands for all its runs, in name order.

    **Raises:** `FileNotFoundError` naming a path that is neither.
    """
    folders = []
    for path in map(Path, paths):
        if (path / "metrics.jsonl").is_file():
            folders.append(path)
        elif sweep_runs := sorted(p.parent for p in path.glob("runs/*/metrics.jsonl")):
            folders.extend(sweep_runs)
        else:
            read_metrics(path)  # raises the message naming the folder
    return folders


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _column(records, key: str, scale: float = 1.0) -> Series:
    rows = [(r["step"], r[key]) for r in records if _finite(r.get(key))]
    return Series([float(s) for s, _ in rows], [scale * float(v) for _, v in rows], "-")


def curve_data(records: list[dict[str, Any]]) -> dict[str, list[Series]]:
    """The lines `plot_runs` draws for one run, by panel (empty panels omitted).

    Test accuracy is converted to %; layer energies are plotted against the layer index
    $1..L$. Missing and non-finite values are skipped.
    """
    panels: dict[str, list[Series]] = {
        "loss": [_column(records, "loss")],
        "test_accuracy": [_column(records, "test_accuracy", 100.0)],
        "energy": [
            _column(records, "energy_after"),
            _column(records, "energy_before")._replace(style="--"),
        ],
    }
    layered = [r["layer_energies"] for r in records if isinstance(r.get("layer_energies"), list)]
    if layered:
        ends = [(layered[0], "--"), (layered[-1], "-")] if len(layered) > 1 else [(layered[0], "-")]
        panels["layer_energies"] = [
            Series(
                [float(i) for i, v in enumerate(values, 1) if _finite(v)],
                [float(v) for v in values if _finite(v)],
                style,
            )
            for values, style in ends
        ]
    drawn = {name: [line for line in lines if line.x] for name, lines in panels.items()}
    return {name: lines for name, lines in drawn.items() if lines}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_figure(runs: dict[str, list[dict[str, Any]]], panels=PANELS, title: str = ""):
    """A matplotlib figure of the runs' curves (`runs` maps a label to its records); one
    axes per non-empty panel, in the order of `panels`.

    **Raises:** `ValueError` for an unknown panel name or when no run has data to draw.
    """
    unknown = [name for name in panels if name not in PANELS]
    if unknown:
        raise ValueError(f"Unknown panel(s) {unknown}: expected some of {list(PANELS)}.")
    data = {label: curve_data(records) for label, records in runs.items()}
    shown = [name for name in panels if any(d.get(name) for d in data.values())]
    if not shown:
        raise ValueError(
            f"Nothing to plot: the runs {list(runs)} have no logged values for {list(panels)}."
        )
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4), dpi=110, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], shown, strict=True):
        positive = True
        for index, (label, lines) in enumerate(data.items()):
            colour = _COLOURS.get(label, colours[index % len(colours)])
            for line in lines.get(name, []):
                ax.plot(
                    line.x, line.y, line.style, color=colour, lw=1.3,
                    marker="o" if len(line.x) < 30 else None, ms=3,
                    label=label if line.style == "-" else None,
                )  # fmt: skip
                positive = positive and min(line.y) > 0
        if name in ("loss", "energy", "layer_energies") and positive:
            ax.set_yscale("log")
            plain = FuncFormatter(lambda value, _: f"{value:.3g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
        ax.set_xlabel("layer l" if name == "layer_energies" else "training step")
        ax.set_title(_TITLES[name], fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_runs(
    run_dirs: list[str | os.PathLike],
    path: str | os.PathLike,
    *,
    labels: list[str] | None = None,
    panels=PANELS,
    title: str = "",
) -> Path:
    """Draw the training curves of `run_dirs` (run or sweep folders) into the PNG `path`,
    written atomically; return `path`.

    **Arguments:**

    - `run_dirs`: folders holding a `metrics.jsonl` (the `--out` of `mupc train`), or sweep
      folders (all their runs).
    - `path`: the PNG to write.
    - `labels`: one legend label per run (default: each folder's name, or its path when
      two names are equal).
    - `panels`: which of `"loss"`, `"test_accuracy"`, `"energy"`, `"layer_energies"` to draw.
    - `title`: a title over the panels.

    **Raises:** `FileNotFoundError` for a folder without metrics; `ValueError` when `labels`
    does not match the runs, a panel is unknown, or there is nothing to draw.
    """
    folders = run_folders(run_dirs)
    if labels is None:
        names = [folder.name for folder in folders]
        labels = names if len(set(names)) == len(names) else [str(f) for f in folders]
    if len(labels) != len(folders):
        raise ValueError(f"Got {len(labels)} labels for {len(folders)} runs; give one per run.")
    if len(set(labels)) != len(labels):
        raise ValueError(f"Labels must be unique, got {labels}.")
    fig = curves_figure(
        {label: read_metrics(folder) for label, folder in zip(labels, folders, strict=True)},
        panels,
        title,
    )
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    _pyplot().close(fig)
    return path
