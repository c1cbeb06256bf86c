"""Figures of the sweeps (matplotlib, Agg backend; written as PNG).

- `depth_figure`: test accuracy against depth H per method, mean ± sd over seeds, log-2 axis,
  diverged runs marked with a cross at the bottom of the axes.
- `transfer_figure`: one heatmap per size of $\\log_{10}$ of the minimum training loss over the
  (weight lr, activity lr) grid, averaged over seeds; shared colour scale; the best cell
  outlined; cells where a run diverged hatched grey with a cross.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_open
from .._figures import save_figure
from ._results import StoredResult
from ._sweep import SweepResult

# What the figures read: a finished sweep run, or its row read back from results.csv.
Result = SweepResult | StoredResult

_COLOURS = {"PC": "tab:red", "μPC": "tab:blue", "μPC + ePC": "tab:green", "BP": "tab:gray"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def depth_figure(
    results: Sequence[Result],
    path: str | Path,
    title: str = "",
    depth_name: str = "hidden layers H",
) -> Path:
    """Plot test accuracy (%) against depth for each method; return `path`.

    **Arguments:** `results` of a depth sweep (labels `method` and `depth`), the PNG `path`,
    a `title` and the x-axis label `depth_name` (e.g. "residual blocks per stage").
    """
    plt = _pyplot()
    by_method: dict[str, dict[int, list[Result]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        by_method[result.labels["method"]][int(result.labels["depth"])].append(result)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    depths = sorted({int(result.labels["depth"]) for result in results})
    offsets = np.linspace(-0.06, 0.06, max(1, len(by_method)))
    marked = False
    for offset, (method, per_depth) in zip(offsets, by_method.items(), strict=False):
        colour = _COLOURS.get(method)
        xs, means, sds = [], [], []
        for depth in sorted(per_depth):
            accuracies = [
                100 * accuracy
                for r in per_depth[depth]
                if not r.summary.diverged
                and (accuracy := _finite(r.summary.test_accuracy)) is not None
            ]
            diverged = sum(r.summary.diverged for r in per_depth[depth])
            x = depth * 2**offset
            if accuracies:
                xs.append(x)
                means.append(np.mean(accuracies))
                sds.append(np.std(accuracies))
            if diverged:
                ax.plot([x], [2], marker="x", ms=9, mew=2, ls="none", color=colour)
                ax.annotate(f"{diverged}", (x, 2), textcoords="offset points", xytext=(5, 4),
                            fontsize=7, color=colour)  # fmt: skip
                marked = True
        ax.errorbar(xs, means, yerr=sds, marker="o", ms=4, capsize=3, label=method, color=colour)
    if marked:
        ax.plot([], [], marker="x", ls="none", color="k", label="diverged (count)")
    ax.axhline(10, color="k", lw=0.6, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_ylim(0, 100)
    ax.set_xlabel(depth_name)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=fig.dpi)
    return path


def _inference_rate(labels: dict) -> float:
    """The grid's second axis: the ePC error step (label `error_lr`, per example) or the
    activity step (label `activity_lr_batch_mean`, as published)."""
    if labels.get("error_lr") is not None:
        return float(labels["error_lr"])
    return float(labels["activity_lr_batch_mean"])


def _rate_name(results: Sequence[Result]) -> str:
    if any(result.labels.get("error_lr") is not None for result in results):
        return "error lr (per example)"
    return "activity lr (batch-mean)"


def transfer_grid(results: Sequence[Result]) -> dict[str, Any]:
    """Average the results of a transfer sweep (labels `size`, `weight_lr` and
    `activity_lr_batch_mean`, or `error_lr` for ePC) over seeds into one grid per size.

    **Returns:** a dict with `sizes`, `weight_lrs` (descending), `activity_lrs` (descending),
    `rate_name` (what the activity axis is),
    `values` (size -> array (weight, activity) of mean log10 min training loss, NaN where a
    run diverged or is missing), `diverged` (size -> bool array) and `best` (size -> (i, j) of
    the lowest value, or None).
    """

    def cell(result: Result) -> tuple[int, float, float]:
        labels = result.labels
        return (
            int(labels["size"]),
            float(labels["weight_lr"]),
            _inference_rate(labels),
        )

    keys = [cell(result) for result in results]
    sizes = sorted({key[0] for key in keys})
    weight_lrs = sorted({key[1] for key in keys}, reverse=True)
    activity_lrs = sorted({key[2] for key in keys}, reverse=True)
    cells: dict = defaultdict(list)
    for key, result in zip(keys, results, strict=True):
        cells[key].append(result)
    values, diverged, best = {}, {}, {}
    for size in sizes:
        grid = np.full((len(weight_lrs), len(activity_lrs)), np.nan)
        failed = np.zeros(grid.shape, bool)
        for i, w in enumerate(weight_lrs):
            for j, a in enumerate(activity_lrs):
                runs = cells.get((size, w, a), [])
                if any(r.summary.diverged for r in runs):
                    failed[i, j] = True
                    continue
                numbers = [_finite(r.summary.min_train_loss) for r in runs]
                losses = [loss for loss in numbers if loss is not None and loss > 0]
                if losses:
                    grid[i, j] = np.mean(np.log10(losses))
        values[size], diverged[size] = grid, failed
        best[size] = (
            None if np.all(np.isnan(grid)) else np.unravel_index(np.nanargmin(grid), grid.shape)
        )
    return {
        "sizes": sizes,
        "weight_lrs": weight_lrs,
        "activity_lrs": activity_lrs,
        "rate_name": _rate_name(results),
        "values": values,
        "diverged": diverged,
        "best": best,
    }


def transfer_figure(
    results: Sequence[Result], path: str | Path, *, size_name: str = "N", title: str = ""
) -> Path:
    """One heatmap panel per size of mean log10 minimum training loss, diverged cells hatched
    with a cross; return `path`."""
    plt = _pyplot()
    grid = transfer_grid(results)
    sizes = grid["sizes"]
    pieces = [v[np.isfinite(v)] for v in grid["values"].values()]
    finite = np.concatenate(pieces) if pieces else np.array([])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 0.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    fig, axes = plt.subplots(
        1, len(sizes), figsize=(2.9 * len(sizes) + 1.4, 3.2), dpi=110, squeeze=False
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    image = None
    for ax, size in zip(axes[0], sizes, strict=True):
        values = grid["values"][size]
        image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        for i, j in zip(*np.nonzero(grid["diverged"][size]), strict=True):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.8",
                                       hatch="///", edgecolor="0.5", lw=0))  # fmt: skip
            ax.text(j, i, "×", ha="center", va="center", fontsize=8, color="0.3")
        if grid["best"][size] is not None:
            i, j = grid["best"][size]
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
        ax.set_title(f"{size_name} = {size}", fontsize=9)
        activity_labels = [f"{a:g}" for a in grid["activity_lrs"]]
        weight_labels = [f"{w:g}" for w in grid["weight_lrs"]]
        ax.set_xticks(range(len(activity_labels)), activity_labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(weight_labels)), weight_labels if ax is axes[0][0] else [],
                      fontsize=7)  # fmt: skip
        ax.set_xlabel(grid["rate_name"], fontsize=8)
    axes[0][0].set_ylabel("weight lr", fontsize=8)
    colorbar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.9)
    colorbar.set_label("log10 min training loss", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9, y=1.03)
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", bbox_inches="tight")
    plt.close(fig)
    return path


def transfer_report(results: Sequence[Result], size_name: str = "N") -> str:
    """The best cell of each size and whether it moved from the smallest size's."""
    grid = transfer_grid(results)
    lines = [f"best (weight lr, {grid['rate_name']}) per {size_name}, by log10 min train loss:"]
    reference = None
    moved = False
    bests: dict[int, tuple[float, float]] = {}
    for size in grid["sizes"]:
        best = grid["best"][size]
        if best is None:
            lines.append(f"  {size_name} = {size}: every cell diverged or is missing")
            moved = True
            continue
        i, j = best
        cell = (grid["weight_lrs"][i], grid["activity_lrs"][j])
        bests[size] = cell
        reference = cell if reference is None else reference
        note = "" if cell == reference else "  <- moved"
        moved = moved or cell != reference
        diverged = int(grid["diverged"][size].sum())
        lines.append(
            f"  {size_name} = {size}: ({cell[0]:g}, {cell[1]:g}) log10 loss "
            f"{grid['values'][size][i, j]:.2f}; {diverged} diverged cell(s){note}"
        )
    lines.append("best cell moved across sizes" if moved else "best cell stayed in place")
    ordered = sorted(bests)
    # The smallest size, and the second smallest (the published claim is about 16 -> 128).
    for first in ordered[:2] if len(ordered) >= 3 else ordered[:1]:
        last = ordered[-1]
        if first == last:
            continue
        verdict = "stayed in place" if bests[first] == bests[last] else "moved"
        lines.append(
            f"from {size_name} = {first} to {size_name} = {last} the optimum {verdict}: "
            f"{bests[first]} -> {bests[last]}"
        )
    return "\n".join(lines)


def depth_table(results) -> str:
    """Test accuracy (mean ± sd over seeds, diverged runs left out and counted) per method and
    depth, as printed by `mupc sweep depth`."""
    lines = ["method     H     test accuracy (mean ± sd)   diverged"]
    groups: dict[tuple[str, int], list] = {}
    for result in results:
        groups.setdefault((result.labels["method"], int(result.labels["depth"])), []).append(
            result.summary
        )
    for (method, depth), group in groups.items():
        accuracies = [100 * s.test_accuracy for s in group if not s.diverged]
        diverged = sum(s.diverged for s in group)
        text = (
            f"{np.mean(accuracies):5.1f} ± {np.std(accuracies):4.1f} %  (n={len(accuracies)})"
            if accuracies
            else "      —"
        )
        lines.append(f"{method:<10} {depth:<5} {text:<27} {diverged}/{len(group)}")
    return "\n".join(lines)


CURVE_COLUMNS = ("method", "step", "value")
"""The columns of a curves CSV: one row per (method, step) with the plotted `value`."""


def curves_figure(
    rows: Sequence[dict],
    path: str | Path,
    *,
    ylabel: str,
    title: str = "",
    floors: Sequence[tuple[str, float]] = (),
) -> Path:
    """Plot one curve of `value` against `step` per method (rows with the `CURVE_COLUMNS`,
    e.g. a language model's held-out cross-entropy), with horizontal reference lines
    `floors` ((label, value) pairs, e.g. the bigram floor); return `path`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    for method in dict.fromkeys(row["method"] for row in rows):
        mine = sorted((int(r["step"]), float(r["value"])) for r in rows if r["method"] == method)
        ax.plot([s for s, _ in mine], [v for _, v in mine], marker="o", ms=3, label=method,
                color=_COLOURS.get(method))  # fmt: skip
    for index, (label, value) in enumerate(floors):
        ax.axhline(value, color="k", lw=0.8, ls=(":", "--", "-.")[index % 3], label=label)
    ax.set_xlabel("training steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=fig.dpi)
    return path
