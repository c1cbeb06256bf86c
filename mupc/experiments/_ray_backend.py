"""The Ray backend of `mupc sweep`: every grid point is one Ray task.

Install with `pip install 'mupc[ray]'`. Without `address` a local Ray instance is started (and
shut down afterwards); with `address="HOST:PORT"` (or `"auto"`) the tasks go to an existing
cluster. Each task runs the same function as the local process pool — `run_experiment(...,
resume=True)` into `out/runs/<run-id>/` — so the guarantees are the same: a run with a
`summary.json` is never redone, an interrupted one resumes from its last atomic checkpoint, and
only the driver (this process) rewrites `results.csv`, atomically, after every finished run.
On a cluster the output folder must be on a filesystem every node mounts at the same path, and
`mupc` must be importable on every node (installed there, or shipped with
`RAY_RUNTIME_ENV`-style `py_modules`).
"""

import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


class RayMissingError(ImportError, ValueError):
    """Ray is not installed (a `ValueError` too, so the CLI reports it as a usage error)."""


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise RayMissingError(
            "The Ray sweep backend needs Ray, which is not installed: run "
            "`pip install 'mupc[ray]'` (or `pip install 'ray>=2.9,<3'`), or use the default "
            "`--backend local`."
        ) from error
    return ray


def run_on_ray(
    todo: list,
    out: Path,
    execute: Callable[[dict, str], dict],
    finished: Callable[[Any, dict | None, str | None], None],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    worker_env: dict[str, str] | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
) -> None:
    """Run `execute(run.config.to_dict(), run_dir)` for every run of `todo` as a Ray task and
    call `finished(run, summary, error)` in this process as each one ends.

    **Arguments:**

    - `todo`: the unfinished `SweepRun`s.
    - `out`: the sweep folder; made absolute, so that tasks on other nodes find it.
    - `execute`: the worker function (picklable, importable on the workers).
    - `finished`: called with the summary, or with `None` and the traceback text on failure.
    - `address`: `None` for a fresh local Ray instance, else a cluster address
      (`"HOST:PORT"`, `"ray://HOST:PORT"` or `"auto"`).
    - `num_cpus`: CPUs of a local instance (None: all); ignored with an `address`.
    - `worker_env`: environment variables for the task processes (e.g. one XLA thread each).
    - `cpus_per_run`, `gpus_per_run`: resources Ray reserves for each task.

    **Raises:** `RayMissingError` (an `ImportError`) with the install command when Ray is
    missing; whatever
    `ray.init` raises for an unreachable address.
    """
    ray = _import_ray()
    out = Path(out).resolve()
    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            # A throwaway local instance started for one sweep sends no usage statistics
            # (an explicit RAY_USAGE_STATS_ENABLED=1 still wins).
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")} if address is None else {}
        env.update(worker_env or {})
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env} if env else None,
        )
    try:
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(execute)
        pending = {
            task.remote(run.config.to_dict(), str(out / "runs" / run.run_id)): run for run in todo
        }
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ready[0])
            try:
                summary = ray.get(ready[0])
            except Exception:  # a failed task is recorded; the sweep goes on
                finished(run, None, traceback.format_exc())
            else:
                finished(run, summary, None)
    finally:
        if started_here:
            ray.shutdown()
