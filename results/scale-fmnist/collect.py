"""Gather the runs of `run.sh` into one CSV and print the table:
`python results/scale-fmnist/collect.py RUNS CSV`.

Each run folder holds the run's `summary.json`, its `config.json` and one `time-<piece>.json`
per invocation (`/usr/bin/time`: peak resident memory and elapsed seconds of the process; a
resumed run has several pieces, and its peak is the largest of theirs)."""

import json
import sys
from pathlib import Path

from mupc._atomic import write_csv_atomic

COLUMNS = (
    "name",
    "seed",
    "depth",
    "width",
    "method",
    "inference",
    "test_accuracy",
    "wall_seconds",
    "seconds_per_step",
    "steps",
    "peak_rss_mb",
    "process_seconds",
)


def row(folder: Path) -> dict | None:
    summary = json.loads((folder / "summary.json").read_text())
    if summary.get("status") != "completed":
        return None
    run = summary["config"]
    pieces = [json.loads(p.read_text()) for p in sorted(folder.glob("time-*.json"))]
    name, _, seed = folder.name.rpartition("-s")
    return {
        "name": name,
        "seed": int(seed),
        "depth": run["depth"],
        "width": run["width"],
        "method": run["method"],
        "inference": run["inference"],
        "test_accuracy": summary["test_accuracy"],
        "wall_seconds": summary["wall_seconds"],
        "seconds_per_step": summary["seconds_per_step"],
        "steps": summary["steps"],
        "peak_rss_mb": round(max(p["max_rss_kb"] for p in pieces) / 1024, 1) if pieces else None,
        "process_seconds": round(sum(p["elapsed_s"] for p in pieces), 1) if pieces else None,
    }


def main(runs: Path, out: Path) -> None:
    rows = [r for f in sorted(runs.glob("*-s[0-9]*")) if (f / "summary.json").exists()
            for r in [row(f)] if r is not None]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out, COLUMNS, rows)
    print("| run | H | N | test accuracy | wall (s) | s/step | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} s{r['seed']} | {r['depth']} | {r['width']} | "
            f"{100 * r['test_accuracy']:.2f} % | {r['wall_seconds']:.0f} | "
            f"{r['seconds_per_step']} | {r['peak_rss_mb']} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
