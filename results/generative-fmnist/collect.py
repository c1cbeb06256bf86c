"""Gather the runs of `run.sh` into one CSV and print the table:
`python results/generative-fmnist/collect.py RUNS CSV`.

Each run folder holds its `config.json` and `summary.json` (`mupc generative train`); the
PCA baseline is `RUNS/pca.json` (`mupc generative pca --out`), the class-mean floor of
generation `RUNS/class-means.json` (`class_means.py`), the closed-form check of a
linear decoder `RUN/linear-check.json` (`linear_check.py`), a run evaluated again at another
activity step `RUN/reevaluate-*.json` (`reevaluate.py`: a row of its own, "re-evaluated", whose
`activity_lr` and `eval_steps` are those of the evaluation), a supervised run classified again
under another protocol `RUN/classify-*.json` (`classify.py`: a row "re-classified" with its
activity optimiser, label start and, when measured, the least-energy class's accuracy), and a
run that failed
`RUN/failed.txt` (its error in `test_mse`).

The runs with a time budget (`time-*`, incremental PC against PC) also give their test MSE
against training seconds, `time-curves.csv` beside CSV (one row per evaluation in
`metrics.jsonl`)."""

import json
import sys
from pathlib import Path

from mupc._atomic import write_csv_atomic

COLUMNS = (
    "name",
    "variant",
    "dataset",
    "depth",
    "width",
    "latent",
    "activation",
    "param",
    "inference",
    "T",
    "activity_lr",
    "lr",
    "steps",
    "epochs",
    "eval_steps",
    "eval_examples",
    "test_mse",
    "exact_projection_test_mse",
    "test_accuracy",
    "test_generation_mse",
    "amortiser_accuracy",
    "hybrid_accuracy",
    "generator_accuracy",
    "activity_optimizer",
    "label_start",
    "energy_accuracy",
    "alpha_f",
    "update",
    "time_budget",
    "train_seconds",
    "eval_seconds",
)


def row(folder: Path) -> dict | None:
    summary = json.loads((folder / "summary.json").read_text())
    if summary.get("status") != "completed":
        return None
    run = summary["config"]
    check = folder / "linear-check.json"
    exact = json.loads(check.read_text())["exact_projection_test_mse"] if check.exists() else ""
    return {
        "name": folder.name,
        "variant": run["variant"],
        "dataset": run["dataset"],
        "depth": run["depth"],
        "width": run["width"],
        "latent": run["latent"],
        "activation": run["activation"],
        "param": run["parameterisation"],
        "inference": "backprop" if run["variant"] == "autoencoder" else run["inference"],
        "T": run["steps"],
        "activity_lr": run["activity_lr"],
        "lr": run["lr"],
        "steps": summary["steps"],
        "epochs": round(summary["epochs"], 3),
        "eval_steps": summary["eval_steps"],
        "eval_examples": summary["eval_examples"],
        "test_mse": summary.get("test_mse", ""),
        "exact_projection_test_mse": exact,
        "test_accuracy": summary.get("test_accuracy", ""),
        "test_generation_mse": summary.get("test_generation_mse", ""),
        "amortiser_accuracy": summary.get("amortiser_accuracy", ""),
        "hybrid_accuracy": summary.get("hybrid_accuracy", ""),
        "generator_accuracy": summary.get("generator_accuracy", ""),
        "activity_optimizer": run.get("activity_optimizer", "sgd"),
        "alpha_f": run["alpha_f"] if run["variant"] == "bpc" else "",
        "update": run.get("update", "after-inference"),
        "time_budget": run.get("time_budget") or "",
        "train_seconds": round(summary["train_seconds"], 1),
        "eval_seconds": round(summary["eval_seconds"], 1),
    }


def write_time_curves(runs: Path, out: Path) -> None:
    """Test MSE against training seconds of the time-budget runs (`time-*`), atomically."""
    rows = []
    for folder in sorted(runs.glob("time-*")):
        if not (folder / "summary.json").exists():
            continue
        run = json.loads((folder / "config.json").read_text())
        for line in (folder / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "test_mse" in record:
                rows.append({"name": folder.name, "update": run["update"], "lr": run["lr"],
                             "step": record["step"], "train_seconds": round(record["elapsed"], 2),
                             "test_mse": record["test_mse"]})  # fmt: skip
    if not rows:
        return
    write_csv_atomic(out, list(rows[0]), rows)


def main(runs: Path, out: Path) -> None:
    rows = []
    pca = runs / "pca.json"
    if pca.exists():
        numbers = json.loads(pca.read_text())
        for k, value in numbers["test_mse"].items():
            rows.append({"name": f"pca-{k}", "variant": "pca", "dataset": numbers["dataset"],
                         "latent": k, "eval_examples": numbers["eval_examples"],
                         "test_mse": value})  # fmt: skip
    means = runs / "class-means.json"  # class_means.py
    if means.exists():
        numbers = json.loads(means.read_text())
        rows.append({"name": "class-means", "variant": "class-means",
                     "dataset": numbers["dataset"], "eval_examples": numbers["eval_examples"],
                     "test_generation_mse": numbers["class_mean_test_mse"]})  # fmt: skip
    for folder in sorted(runs.iterdir()):
        if (folder / "summary.json").exists():
            found = row(folder)
            if found is not None:
                rows.append(found)
                for again in sorted(folder.glob("reevaluate-*.json")):  # reevaluate.py
                    numbers = json.loads(again.read_text())
                    rows.append({**found, "name": f"{folder.name} re-evaluated",
                                 "activity_lr": numbers["activity_lr"],
                                 "eval_steps": numbers["eval_steps"],
                                 "test_mse": numbers.get("test_mse", ""),
                                 "test_accuracy": numbers.get("test_accuracy", ""),
                                 "exact_projection_test_mse": "",
                                 "eval_seconds": round(numbers["eval_seconds"], 1)})  # fmt: skip
                for again in sorted(folder.glob("classify-*.json")):  # classify.py
                    numbers = json.loads(again.read_text())
                    seconds = numbers["eval_seconds"] + numbers.get("energy_seconds", 0.0)
                    rows.append({**found, "name": f"{folder.name} re-classified",
                                 "activity_lr": numbers["activity_lr"],
                                 "eval_steps": numbers["eval_steps"],
                                 "eval_examples": numbers["eval_examples"],
                                 "activity_optimizer": numbers["activity_optimizer"],
                                 "label_start": numbers["label_start"],
                                 "test_accuracy": numbers["test_accuracy"],
                                 "energy_accuracy": numbers.get("energy_accuracy", ""),
                                 "test_generation_mse": "",
                                 "eval_seconds": round(seconds, 1)})  # fmt: skip
        elif (folder / "failed.txt").exists() and (folder / "config.json").exists():
            run = json.loads((folder / "config.json").read_text())
            error = (folder / "failed.txt").read_text().strip()
            rows.append({"name": folder.name, "variant": run["variant"],
                         "dataset": run["dataset"], "depth": run["depth"],
                         "width": run["width"], "latent": run["latent"],
                         "activation": run["activation"], "param": run["parameterisation"],
                         "inference": run["inference"], "T": run["steps"],
                         "activity_lr": run["activity_lr"], "lr": run["lr"],
                         "test_mse": f"failed: {error}"})  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    write_time_curves(runs, out.with_name("time-curves.csv"))
    write_csv_atomic(out, COLUMNS, rows)
    for r in rows:
        shown = {k: r.get(k, "") for k in ("name", "test_mse", "test_accuracy", "train_seconds")}
        print("  ".join(f"{k}={v}" for k, v in shown.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
