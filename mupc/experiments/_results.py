"""Sweep results read back from `results.csv`, so that a figure can be redrawn from the
committed CSV behind it (`mupc redraw`), without rerunning the sweep."""

import csv
import os
from typing import Any, NamedTuple

from ._sweep import SUMMARY_COLUMNS


class StoredSummary(NamedTuple):
    """The summary columns of one `results.csv` row that the figures read."""

    status: str
    test_accuracy: float | None
    best_test_accuracy: float | None
    min_train_loss: float | None
    diverged: bool
    diverged_at_step: int | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "StoredSummary":
        return cls(
            row["status"],
            row["test_accuracy"],
            row["best_test_accuracy"],
            row["min_train_loss"],
            bool(row["diverged"]),
            None if row["diverged_at_step"] is None else int(row["diverged_at_step"]),
        )


class StoredResult(NamedTuple):
    """One finished run of a sweep as stored in `results.csv`: its `run_id`, its `labels`
    (the grid columns) and its `summary`; the figures accept it like a `SweepResult`."""

    run_id: str
    labels: dict[str, Any]
    summary: StoredSummary


def _value(text: str) -> Any:
    """A CSV cell as Python: empty → None, True/False → bool, numbers → int or float."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# The label columns each kind of figure reads (any one group).
_KINDS = {
    "depth": (("method", "depth"),),
    "transfer": (
        ("size", "weight_lr", "activity_lr_batch_mean"),
        ("size", "weight_lr", "error_lr"),
    ),
}


def read_results(path: str | os.PathLike, kind: str | None = None) -> list[StoredResult]:
    """The rows of a sweep's `results.csv` (of a `kind` = `"depth"` or `"transfer"` sweep,
    when given).

    **Raises:** `ValueError` naming the file if it is not a sweep's results table (a column
    is missing, or the columns `kind`'s figure reads), or holds no row.
    """
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [{key: _value(value) for key, value in row.items()} for row in reader]
        header = list(reader.fieldnames or [])
    needed = {"run_id", *SUMMARY_COLUMNS}
    missing = sorted(needed - set(header))
    if missing:
        raise ValueError(f"{str(path)!r} is not a sweep's results.csv: no column(s) {missing}.")
    if not rows:
        raise ValueError(f"{str(path)!r} holds no finished run (only its header).")
    for name, columns in _KINDS.items():
        if kind == name and not any(set(group) <= set(header) for group in columns):
            other = next(
                (k for k, c in _KINDS.items() if any(set(g) <= set(header) for g in c)), None
            )
            hint = f" (it is a {other} sweep's: mupc redraw {other})" if other else ""
            wanted = " or ".join(str(sorted(group)) for group in columns)
            raise ValueError(
                f"{str(path)!r} is not a {kind} sweep's results.csv: it has no column(s) "
                f"{wanted}{hint}."
            )
    results = []
    for row in rows:
        labels = {k: v for k, v in row.items() if k not in needed}
        results.append(StoredResult(str(row["run_id"]), labels, StoredSummary.from_row(row)))
    return results
