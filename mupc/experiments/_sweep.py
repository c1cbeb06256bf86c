"""A sweep: many independent runs, in parallel processes, resumable after any crash.

Layout of the output folder:

- `sweep.json`: the kind of sweep, every invocation's command line, time and library versions,
  and the list of runs (id, labels, configuration).
- `runs/<run-id>/`: one `mupc train`-style folder per run (`config.json`, `metrics.jsonl`,
  `checkpoint.npz`, `summary.json`).
- `results.csv`: one row per finished run (its labels and summary), rewritten atomically after
  every run.

A run whose `summary.json` exists is never redone; an unfinished one continues from its last
checkpoint. So rerunning the same command after `kill -9` completes only what is missing.
"""

import concurrent.futures
import csv
import dataclasses
import io
import json
import multiprocessing
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .._atomic import write_json_atomic, write_text_atomic
from ._run import RunConfig, check_same_run, run_experiment

# Summary fields copied into results.csv, after the run's labels.
SUMMARY_COLUMNS = (
    "status",
    "test_accuracy",
    "best_test_accuracy",
    "test_loss",
    "min_train_loss",
    "final_train_loss",
    "diverged",
    "diverged_at_step",
    "steps",
    "epochs",
    "wall_seconds",
    "seconds_per_step",
)
BACKENDS = ("local", "ray")
# Each worker process keeps Eigen on its own thread and is pinned to one core: W workers use
# W cores without oversubscribing them.
WORKER_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false"


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a folder-safe `run_id`, its `RunConfig`, and `labels` (the values
    that place it in the grid, e.g. `{"method": "μPC", "depth": 8, "seed": 0}`)."""

    run_id: str
    config: RunConfig
    labels: dict[str, Any]


def read_summary(out: Path, run: SweepRun) -> dict | None:
    """The run's summary, or None if it has not finished (or was asked to run longer, in which
    case it resumes from its checkpoint).

    **Raises:** `ValueError` if the folder holds a run with other settings (a rerun of a
    sweep with, say, another width into the same `--out`).
    """
    path = Path(out) / "runs" / run.run_id / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    check_same_run(summary["config"], run.config, path.parent)
    if not summary["diverged"] and summary["steps"] != run.config.total_steps(summary["num_train"]):
        return None
    return summary


def collect_rows(out: Path, runs: list[SweepRun]) -> list[dict[str, Any]]:
    """One row (run id, labels, summary columns) per finished run, in grid order."""
    rows = []
    for run in runs:
        summary = read_summary(out, run)
        if summary is not None:
            row = {"run_id": run.run_id, **run.labels}
            row.update({column: summary.get(column) for column in SUMMARY_COLUMNS})
            rows.append(row)
    return rows


def write_results(out: Path, runs: list[SweepRun]) -> list[dict[str, Any]]:
    """Rewrite `results.csv` atomically from the finished runs; return its rows."""
    rows = collect_rows(out, runs)
    columns = ["run_id", *runs[0].labels, *SUMMARY_COLUMNS] if runs else ["run_id"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    write_text_atomic(Path(out) / "results.csv", buffer.getvalue())
    return rows


def _record_invocation(out: Path, kind: str, runs: list[SweepRun], argv: list[str] | None):
    from .._version import versions

    path = out / "sweep.json"
    record: dict[str, Any] = (
        json.loads(path.read_text()) if path.exists() else {"kind": kind, "invocations": []}
    )
    record["invocations"].append(
        {
            "command": list(argv if argv is not None else sys.argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": versions(),
            "cpus": os.cpu_count(),
        }
    )
    record["kind"] = kind
    record["runs"] = [
        {"run_id": run.run_id, "labels": run.labels, "config": run.config.to_dict()} for run in runs
    ]
    write_json_atomic(path, record)


def _init_worker(counter, cores: list[int]) -> None:
    """Runs first in each worker process, before XLA starts (it reads XLA_FLAGS lazily)."""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + WORKER_XLA_FLAGS).strip()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cores[index % len(cores)]})


def _execute(config: dict, run_dir: str) -> dict:
    """Worker entry point: run (or resume) one run; return its summary."""
    return run_experiment(
        RunConfig.from_dict(config),
        run_dir,
        resume=True,
        progress=False,
        provenance={"sweep_run": Path(run_dir).name},
    )


def _describe(run: SweepRun, summary: dict) -> str:
    if summary["diverged"]:
        return f"{run.run_id}: diverged at step {summary['diverged_at_step']}"
    return (
        f"{run.run_id}: test accuracy {summary['test_accuracy']:.2%}, min train loss "
        f"{summary['min_train_loss']:.3g} ({summary['wall_seconds']:.0f} s)"
    )


def default_workers() -> int:
    """The number of cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_sweep(
    runs: list[SweepRun],
    out: str | os.PathLike,
    *,
    kind: str,
    workers: int | None = None,
    argv: list[str] | None = None,
    log=print,
    backend: str = "local",
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Run every unfinished run of `runs` into `out/runs/<run-id>/`; return the result rows.

    **Arguments:**

    - `runs`: the grid, as `SweepRun`s with unique ids.
    - `out`: the sweep's folder (created if needed).
    - `kind`: a name stored in `sweep.json` (e.g. `"depth"`).
    - `workers`: processes to use (default: the cores available); 1 runs in this process.
    - `argv`: the command line to record (default `sys.argv`).
    - `log`: where progress lines go.
    - `backend`: `"local"` (a process pool, the default) or `"ray"`: every run is a Ray task
      (`pip install 'mupc[ray]'`), with the same resume and atomic-result guarantees.
    - `address`: with `backend="ray"`, an existing cluster (`"HOST:PORT"` or `"auto"`); None
      starts a local Ray instance with `workers` CPUs.

    **Raises:** `ValueError` for duplicate run ids or `workers` < 1; `RuntimeError` naming the
    failed runs if any raised (the others are kept; rerun the command to retry).
    """
    out = Path(out)
    ids = [run.run_id for run in runs]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"Run ids must be unique; repeated: {repeated}.")
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}, got {backend!r}.")
    if address is not None and backend != "ray":
        raise ValueError(f"An `address` ({address!r}) needs backend='ray' (--backend ray).")
    if backend == "ray":
        from ._ray_backend import _import_ray

        _import_ray()  # fail before any run starts when Ray is missing
    workers = default_workers() if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be a positive integer, got {workers!r}.")
    out.mkdir(parents=True, exist_ok=True)
    _record_invocation(out, kind, runs, argv)
    todo = [run for run in runs if read_summary(out, run) is None]
    done = len(runs) - len(todo)
    where = (
        f"as Ray tasks on {address or 'a local Ray instance'}"
        if backend == "ray"
        else f"on {min(workers, max(1, len(todo)))} worker(s)"
    )
    log(
        f"{len(runs)} runs: {done} already finished, running {len(todo)} {where}; results in {out}/"
    )
    failures = {}
    started = time.perf_counter()

    def finished(run: SweepRun, summary: dict | None, error: str | None) -> None:
        nonlocal done
        done += 1
        if error is not None:
            failures[run.run_id] = error
            write_text_atomic(out / "runs" / run.run_id / "error.txt", error)
            log(f"[{done}/{len(runs)}] {run.run_id}: FAILED (see runs/{run.run_id}/error.txt)")
        else:
            assert summary is not None  # every caller passes a summary or an error
            log(f"[{done}/{len(runs)}] {_describe(run, summary)}")
        write_results(out, runs)

    if backend == "ray" and not todo:
        pass  # nothing to run: do not start Ray
    elif backend == "ray":
        from ._ray_backend import run_on_ray

        run_on_ray(
            todo,
            out,
            _execute,
            finished,
            address=address,
            num_cpus=workers if address is None else None,
            worker_env={"XLA_FLAGS": WORKER_XLA_FLAGS, "OMP_NUM_THREADS": "1"},
        )
    elif workers == 1 or len(todo) <= 1:
        for run in todo:
            try:
                summary = _execute(run.config.to_dict(), str(out / "runs" / run.run_id))
                finished(run, summary, None)
            except Exception:  # recorded; the sweep goes on
                finished(run, None, traceback.format_exc())
    else:
        context = multiprocessing.get_context("spawn")
        counter = context.Value("i", 0)
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(counter, cores),
        ) as pool:
            futures = {
                pool.submit(_execute, run.config.to_dict(), str(out / "runs" / run.run_id)): run
                for run in todo
            }
            for future in concurrent.futures.as_completed(futures):
                run = futures[future]
                try:
                    finished(run, future.result(), None)
                except Exception:
                    finished(run, None, traceback.format_exc())
    rows = write_results(out, runs)
    log(
        f"sweep finished in {time.perf_counter() - started:.0f} s: "
        f"{len(rows)} of {len(runs)} runs done"
    )
    if failures:
        raise RuntimeError(
            f"{len(failures)} run(s) failed: {sorted(failures)}; their tracebacks are in "
            f"{out}/runs/<run-id>/error.txt. Rerun the same command to retry them."
        )
    return rows
