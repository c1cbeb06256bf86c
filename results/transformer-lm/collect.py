"""Gather the language-model runs of `run.sh` into two CSVs: the held-out cross-entropy (nats per
character) at every evaluation (`curves.csv`: method, step, value) and each run's summary
(`summary.csv`); print the table. `python results/transformer-lm/collect.py RUNS OUT_DIR`."""

import json
import math
import sys
from pathlib import Path

from mupc._atomic import write_csv_atomic

# Run folder name -> the method's label in the figures.
METHODS = {"sp": "PC", "mupc": "μPC", "epc": "μPC + ePC", "bp": "BP"}
SUMMARY = ("method", "steps", "test_nats_per_char", "perplexity", "test_accuracy", "wall_seconds",
           "seconds_per_step")  # fmt: skip


def main(runs: Path, out: Path) -> None:
    curves, summaries = [], []
    for folder, label in METHODS.items():
        metrics = runs / folder / "metrics.jsonl"
        summary_path = runs / folder / "summary.json"
        if not metrics.exists() or not summary_path.exists():
            print(f"skipping {folder}: not finished", file=sys.stderr)
            continue
        summary = json.loads(summary_path.read_text())
        context = summary["config"]["context"]
        for line in metrics.read_text().splitlines():
            record = json.loads(line)
            per = record.get("test_loss_per_position")
            if per is None and record.get("test_loss") is not None:
                per = (
                    record["test_loss"] / context
                )  # records written before the per-character field
            if per is not None:
                curves.append({"method": label, "step": record["step"], "value": per})
        nats = summary["test_loss_per_position"]
        summaries.append({
            "method": label, "steps": summary["steps"], "test_nats_per_char": nats,
            "perplexity": None if nats is None else math.exp(nats),
            "test_accuracy": summary["test_accuracy"], "wall_seconds": summary["wall_seconds"],
            "seconds_per_step": summary["seconds_per_step"],
        })  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "curves.csv", ("method", "step", "value"), curves)
    write_csv_atomic(out / "summary.csv", SUMMARY, summaries)
    print("| method | test cross-entropy (nats/char) | perplexity | accuracy | wall |")
    print("|---|---|---|---|---|")
    for row in summaries:
        nats = row["test_nats_per_char"]
        shown = "diverged" if nats is None else f"{nats:.3f}"
        ppl = "" if nats is None else f"{row['perplexity']:.2f}"
        accuracy = row["test_accuracy"]
        shown_accuracy = "" if accuracy is None else f"{100 * accuracy:.1f} %"
        print(f"| {row['method']} | {shown} | {ppl} | {shown_accuracy} | "
              f"{row['wall_seconds']:.0f} s |")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
