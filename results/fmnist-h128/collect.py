"""Gather the `summary.json` of every run of `run.sh` into one CSV and print the table with
ranges over the seeds: `python results/fmnist-h128/collect.py RUNS CSV`."""

import json
import sys
from pathlib import Path

from mupc._atomic import write_csv_atomic

COLUMNS = (
    "name",
    "seed",
    "test_accuracy",
    "best_test_accuracy",
    "min_train_loss",
    "wall_seconds",
    "seconds_per_step",
    "steps",
)


def main(runs: Path, out: Path) -> None:
    rows = []
    for summary_path in sorted(runs.glob("*-s[0-9]*/summary.json")):
        summary = json.loads(summary_path.read_text())
        if summary.get("status") != "completed":
            continue
        name, _, seed = summary_path.parent.name.rpartition("-s")
        rows.append({"name": name, "seed": int(seed), **{c: summary[c] for c in COLUMNS[2:]}})
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out, COLUMNS, rows)
    print("| configuration | test accuracy (%) | wall (s) | seeds |")
    print("|---|---|---|---|")
    for name in dict.fromkeys(row["name"] for row in rows):
        mine = [row for row in rows if row["name"] == name]
        acc = [100 * row["test_accuracy"] for row in mine]
        wall = [row["wall_seconds"] for row in mine]
        print(
            f"| {name} | {min(acc):.2f}–{max(acc):.2f} | {min(wall):.0f}–{max(wall):.0f} | "
            f"{len(mine)} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
