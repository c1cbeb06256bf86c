"""Gather the `summary.json` of the runs of `run.sh` into one CSV and print the table:
`python results/equilibrium-fmnist/collect.py RUNS CSV`."""

import json
import sys
from pathlib import Path

from mupc._atomic import write_csv_atomic

COLUMNS = (
    "name",
    "test_accuracy",
    "best_test_accuracy",
    "min_train_loss",
    "wall_seconds",
    "seconds_per_step",
    "steps",
    "status",
    "diverged_at_step",
)


def main(runs: Path, out: Path) -> None:
    rows = []
    for name in ("bp", "epc", "equilibrium", "equilibrium-half-step"):
        summary = json.loads((runs / name / "summary.json").read_text())
        if summary.get("status") not in ("completed", "diverged"):
            raise SystemExit(f"{runs / name} is unfinished (status {summary.get('status')!r})")
        rows.append({"name": name, **{c: summary.get(c) for c in COLUMNS[1:]}})
    write_csv_atomic(out, COLUMNS, rows)
    print("| configuration | final / best test accuracy (%) | min train loss | wall (s) | status |")
    print("|---|---|---|---|---|")
    for row in rows:
        final = "–" if row["test_accuracy"] is None else f"{100 * row['test_accuracy']:.2f}"
        status = row["status"]
        if row["diverged_at_step"] is not None:
            status += f" at step {row['diverged_at_step']}"
        print(
            f"| {row['name']} | {final} / {100 * row['best_test_accuracy']:.2f} | "
            f"{row['min_train_loss']:.4f} | {row['wall_seconds']:.0f} | {status} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
