"""Gather the `summary.json` of the runs of `run.sh` into one CSV and print the table:
`python results/equilibrium-fmnist/collect.py RUNS CSV`."""

import csv
import json
import sys
from pathlib import Path

COLUMNS = (
    "name",
    "test_accuracy",
    "best_test_accuracy",
    "min_train_loss",
    "wall_seconds",
    "seconds_per_step",
    "steps",
)


def main(runs: Path, out: Path) -> None:
    rows = []
    for name in ("bp", "epc", "equilibrium"):
        summary = json.loads((runs / name / "summary.json").read_text())
        if summary.get("status") != "completed":
            raise SystemExit(f"{runs / name} is not completed (status {summary.get('status')!r})")
        rows.append({"name": name, **{c: summary[c] for c in COLUMNS[1:]}})
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    print("| configuration | test accuracy (%) | min train loss | wall (s) | s/step |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['name']} | {100 * row['test_accuracy']:.2f} | {row['min_train_loss']:.4f} "
            f"| {row['wall_seconds']:.0f} | {row['seconds_per_step']:.3f} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
