"""A sweep: many independent runs, in parallel processes, resumable after any crash.

Layout of the output folder:

- `sweep.json`: the kind of sweep, every invocation that ran (command line, time, library
  versions, the dataset folders read) and the list of runs (id, labels, configuration).
- `runs/<run-id>/`: one `mupc train`-style folder per run (`config.json`, `metrics.jsonl`,
  `checkpoint.npz`, `summary.json`).
- `results.csv`: one row per finished run (its labels and summary), rewritten atomically after
  every run.

A run whose `summary.json` exists is never redone; an unfinished one continues from its last
checkpoint. So rerunning the same command after `kill -9`, Ctrl-C or a crash completes only
what is missing. Everything that can refuse a sweep (another grid or other settings in the
same folder, a folder that cannot be written, data that cannot be found or downloaded) is
checked before the first run starts and before `sweep.json` is touched.
"""

import contextlib
import csv
import dataclasses
import io
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._atomic import (
    check_writable_folder,
    remove_stale_temporaries,
    write_json_atomic,
    write_text_atomic,
)
from ._config import RunConfig
from ._interrupt import Interrupted, as_interrupted, stop_on_signals
from ._lock import folder_lock
from ._output import check_same_run, holds_run, read_json
from ._run import run_experiment
from ._summary import RunSummary

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
# Each worker process is pinned to its own cores (one each when there are as many workers as
# cores) and XLA sizes its thread pool to them, so W workers never oversubscribe the machine;
# fewer workers than cores (`--workers`, or fewer runs to do than cores) share the cores out,
# e.g. a single remaining run gets every core. A worker with one core also keeps Eigen on its
# own thread.
WORKER_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false"
WORKER_ENV = {"XLA_FLAGS": WORKER_XLA_FLAGS, "OMP_NUM_THREADS": "1"}


def worker_env(group: list[int]) -> dict[str, str]:
    """The environment of a pool worker pinned to the cores `group`: one CPU host device per
    core for a worker with several cores to itself, so that its runs with ``devices="auto"``
    can measure one device against them; else `WORKER_ENV` (one core, or no pinning)."""
    if len(group) > 1:
        return {"XLA_FLAGS": f"--xla_force_host_platform_device_count={len(group)}"}
    return WORKER_ENV


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a folder-safe `run_id`, its `RunConfig`, and `labels` (the values
    that place it in the grid, e.g. `{"method": "μPC", "depth": 8, "seed": 0}`)."""

    run_id: str
    config: RunConfig
    labels: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """A finished run of a sweep: the `SweepRun` and its `RunSummary`.

    `row()` is its line of `results.csv`: the run id, the labels, then `SUMMARY_COLUMNS`.
    """

    run: SweepRun
    summary: RunSummary

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.run.run_id

    @property
    def labels(self) -> dict[str, Any]:
        """The run's place in the grid."""
        return self.run.labels

    def row(self) -> dict[str, Any]:
        """The `results.csv` row as a dict (column name -> value)."""
        summary = self.summary.to_dict()
        return {
            "run_id": self.run_id,
            **self.labels,
            **{column: summary[column] for column in SUMMARY_COLUMNS},
        }


class SweepInterrupted(Interrupted):
    """A sweep was stopped by SIGINT or SIGTERM. Finished runs are kept, `results.csv`
    lists them, and rerunning the same sweep resumes the others.

    **Fields:** `signum`, `finished` (runs done), `total` (runs in the grid), `out`.
    """

    def __init__(self, signum: int, finished: int, total: int, out: Path):
        name = signal.Signals(signum).name
        super().__init__(
            signum,
            f"stopped by {name}: {finished} of {total} runs finished, listed in "
            f"{out}/results.csv; rerun the same command to resume the others",
        )
        self.finished, self.total, self.out = finished, total, out


# ------------------------------------------------------------------------- reading a folder


def _set_aside(path: Path, reason: str, log: Callable[[str], Any]) -> None:
    """Rename a corrupt file to `<name>.corrupt` (kept for inspection) so the run is redone."""
    target = path.with_name(path.name + ".corrupt")
    os.replace(path, target)
    log(f"note: {path} was unreadable ({reason}); moved to {target.name}, the run will resume")


def read_summary(out: Path, run: SweepRun) -> RunSummary | None:
    """The run's summary, or None if it has not finished (or was asked to run longer, in which
    case it resumes from its checkpoint).

    **Raises:** `ValueError` if the folder holds a run with other settings (a rerun of a
    sweep with, say, another width into the same `--out`), or the summary is unreadable
    (naming the file).
    """
    path = Path(out) / "runs" / run.run_id / "summary.json"
    if not path.exists():
        return None
    summary = RunSummary.read(path)
    check_same_run(summary.config.to_dict(), run.config, path.parent)
    if not summary.diverged and summary.steps != run.config.total_steps(summary.num_train):
        return None
    return summary


def _check_folder(out: Path, kind: str, runs: list[SweepRun], log) -> None:
    """Refuse a sweep that would mix with, or hide, what `out` already holds; set aside
    corrupt run files (they are redone)."""
    record_path = out / "sweep.json"
    if record_path.exists():
        stored_kind = read_json(record_path).get("kind")
        if stored_kind not in (None, kind):
            raise ValueError(
                f"{str(out)!r} holds a {stored_kind!r} sweep, not a {kind!r} one; choose "
                "another --out."
            )
    wanted = {run.run_id for run in runs}
    folder = out / "runs"
    present = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    extra = [name for name in present if name not in wanted and holds_run(folder / name)]
    if extra:
        shown = ", ".join(extra[:4]) + (", ..." if len(extra) > 4 else "")
        raise ValueError(
            f"{str(out)!r} holds {len(extra)} run(s) that this grid does not include ({shown}); "
            "rerun with the same grid (or one that contains it), or choose another --out "
            "(results.csv and the figures would otherwise lose them)."
        )
    for run in runs:
        run_dir = folder / run.run_id
        if not run_dir.is_dir():
            continue
        remove_stale_temporaries(run_dir)
        for name in ("summary.json", "config.json"):
            path = run_dir / name
            if not path.exists():
                continue
            try:
                stored = RunSummary.read(path).config.to_dict() if name == "summary.json" else None
                if stored is None:
                    stored = read_json(path)["run"]
            except (ValueError, KeyError, TypeError):
                _set_aside(path, "cut short, edited, or not a run's file", log)
                continue
            check_same_run(stored, run.config, run_dir)


def collect_results(out: Path, runs: list[SweepRun]) -> list[SweepResult]:
    """The finished runs, in grid order."""
    results = []
    for run in runs:
        summary = read_summary(out, run)
        if summary is not None:
            results.append(SweepResult(run, summary))
    return results


def write_results(out: Path, runs: list[SweepRun]) -> list[SweepResult]:
    """Rewrite `results.csv` atomically from the finished runs; return them."""
    results = collect_results(out, runs)
    columns: list[str] = ["run_id"]
    for run in runs:
        columns += [label for label in run.labels if label not in columns]
    columns += SUMMARY_COLUMNS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for result in results:
        row = result.row()
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    write_text_atomic(Path(out) / "results.csv", buffer.getvalue())
    return results


# ------------------------------------------------------------------------ before the runs


def _locate_datasets(runs: list[SweepRun], log) -> dict[str, str]:
    """Find (or download) every dataset of `runs` once, here, before any run starts, so an
    offline download fails once, with the message saying where to put the files."""
    from .._data import corpus_names, locate_dataset
    from .._data.text import locate_corpus

    found = {}
    for name, data_dir in sorted(
        {(run.config.dataset, run.config.data_dir) for run in runs}, key=str
    ):
        if name == "synthetic":
            continue
        locate = locate_corpus if name in corpus_names() else locate_dataset
        directory = locate(name, data_dir=data_dir)
        if data_dir is not None:
            asked = Path(data_dir).expanduser().resolve()
            if not directory.resolve().is_relative_to(asked):
                log(f"note: {asked / name} holds no copy of {name!r}; reading {directory}")
        found[name if data_dir is None else f"{name} ({data_dir})"] = str(directory)
    return found


def _record_invocation(
    out: Path, kind: str, runs: list[SweepRun], argv: list[str] | None, datasets: dict
) -> None:
    from .._version import versions

    path = out / "sweep.json"
    record: dict[str, Any] = read_json(path) if path.exists() else {"kind": kind, "invocations": []}
    record["invocations"].append(
        {
            "command": list(argv if argv is not None else sys.argv),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": versions(),
            "cpus": os.cpu_count(),
            "datasets": datasets,
        }
    )
    record["kind"] = kind
    record["runs"] = [
        {"run_id": run.run_id, "labels": run.labels, "config": run.config.to_dict()} for run in runs
    ]
    write_json_atomic(path, record)


# ------------------------------------------------------------------------------- running


def _execute(config: dict, run_dir: str) -> RunSummary:
    """Worker entry point: run (or resume) one run; return its summary."""
    return run_experiment(
        RunConfig.from_dict(config),
        run_dir,
        resume=holds_run(run_dir),
        progress=False,
        provenance={"sweep_run": Path(run_dir).name},
    )


def _describe(result: SweepResult) -> str:
    summary = result.summary
    if summary.diverged:
        return f"{result.run_id}: diverged at step {summary.diverged_at_step}"
    return (
        f"{result.run_id}: test accuracy {summary.test_accuracy:.2%}, min train loss "
        f"{summary.min_train_loss:.3g} ({summary.wall_seconds:.0f} s)"
    )


def default_workers() -> int:
    """The number of cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _run_in_pool(todo: list[SweepRun], out: Path, workers: int, finished) -> None:
    from ._pool import WorkerPool

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    workers = min(workers, len(todo))
    pool = WorkerPool(workers, cores, worker_env)
    tasks = [
        (run, _execute, (run.config.to_dict(), str(out / "runs" / run.run_id))) for run in todo
    ]
    try:
        pool.run(
            tasks,
            lambda run, ok, result: finished(run, *((result, None) if ok else (None, result))),
        )
    except BaseException:
        pool.terminate()
        raise
    pool.close()


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
) -> list[SweepResult]:
    """Run every unfinished run of `runs` into `out/runs/<run-id>/`; return the finished ones.

    **Arguments:**

    - `runs`: the grid, as `SweepRun`s with unique ids.
    - `out`: the sweep's folder (created if needed).
    - `kind`: a name stored in `sweep.json` (e.g. `"depth"`).
    - `workers`: processes to use (default: the cores available); 1 runs in this process.
    - `argv`: the command line to record (default `sys.argv`).
    - `log`: where progress lines go.
    - `backend`: `"local"` (a pool of worker processes, the default) or `"ray"`: every run
      is a Ray task (`pip install 'mupc[ray]'`), with the same resume and atomic-result
      guarantees.
    - `address`: with `backend="ray"`, an existing cluster (`"HOST:PORT"` or `"auto"`); None
      starts a local Ray instance with `workers` CPUs.

    **Returns:** a `SweepResult` per finished run, in grid order (the rows of `results.csv`).

    **Raises:**

    - `ValueError`: duplicate run ids, `workers` < 1, or `out` holding another kind of sweep,
      runs this grid does not include, or runs with other settings (nothing is run or written
      then, `sweep.json` included).
    - `OSError`: `out` cannot be created or written; a dataset cannot be downloaded (once per
      sweep, with where to put the files).
    - `SweepInterrupted` (a `KeyboardInterrupt`): SIGINT or SIGTERM; queued runs are
      cancelled, running ones stopped (they resume from their last checkpoint), `results.csv`
      lists the finished ones.
    - `RuntimeError`: naming the failed runs if any raised (the others are kept; rerun the
      command to retry them).

    Worker processes never outlive this process, even when it is killed with `kill -9`.
    """
    for run in runs:
        if not isinstance(run, SweepRun):
            raise ValueError(
                f"`runs` must be SweepRun(run_id, config, labels) objects, got "
                f"{type(run).__name__}."
            )
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
    check_writable_folder(out, "--out")
    with folder_lock(out):  # one writer: a second sweep into `out` is refused
        remove_stale_temporaries(out)
        _check_folder(out, kind, runs, log)
        todo = [run for run in runs if read_summary(out, run) is None]
        datasets = _locate_datasets(todo, log)
        _record_invocation(out, kind, runs, argv, datasets)
        done = len(runs) - len(todo)
        where = (
            f"as Ray tasks on {address or 'a local Ray instance'}"
            if backend == "ray"
            else f"on {min(workers, max(1, len(todo)))} worker(s)"
        )
        log(
            f"{len(runs)} runs: {done} already finished, running {len(todo)} {where}; "
            f"results in {out}/"
        )
        failures = {}
        started = time.perf_counter()

        def finished(run: SweepRun, summary: RunSummary | None, error: str | None) -> None:
            nonlocal done
            done += 1
            if error is not None:
                failures[run.run_id] = error
                with contextlib.suppress(OSError):  # e.g. a full disk: the log line still says it
                    write_text_atomic(out / "runs" / run.run_id / "error.txt", error)
                log(f"[{done}/{len(runs)}] {run.run_id}: FAILED (see runs/{run.run_id}/error.txt)")
            else:
                assert summary is not None  # every caller passes a summary or an error
                log(f"[{done}/{len(runs)}] {_describe(SweepResult(run, summary))}")
            write_results(out, runs)

        try:
            with stop_on_signals():
                if not todo:
                    pass  # nothing to run: start no process (and no Ray)
                elif backend == "ray":
                    from ._ray_backend import run_on_ray

                    run_on_ray(
                        todo,
                        out,
                        _execute,
                        finished,
                        address=address,
                        num_cpus=workers if address is None else None,
                        worker_env=WORKER_ENV,
                    )
                elif workers == 1 or len(todo) == 1:
                    for run in todo:
                        try:
                            summary = _execute(run.config.to_dict(), str(out / "runs" / run.run_id))
                        except Exception:  # recorded; the sweep goes on
                            finished(run, None, traceback.format_exc())
                        else:
                            finished(run, summary, None)
                else:
                    _run_in_pool(todo, out, workers, finished)
        except KeyboardInterrupt as error:
            results = write_results(out, runs)
            raise SweepInterrupted(
                as_interrupted(error).signum, len(results), len(runs), out
            ) from None
        results = write_results(out, runs)
        log(
            f"sweep finished in {time.perf_counter() - started:.0f} s: "
            f"{len(results)} of {len(runs)} runs done"
        )
        if failures:
            raise RuntimeError(
                f"{len(failures)} run(s) failed: {sorted(failures)}; their tracebacks are in "
                f"{out}/runs/<run-id>/error.txt. Rerun the same command to retry them."
            )
        return results
