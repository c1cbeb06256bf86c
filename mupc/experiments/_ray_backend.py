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

Stopping: on SIGINT or SIGTERM the driver cancels every queued and running task
(`ray.cancel(force=True)`) and shuts down the local instance it started. Orphans: after
`kill -9` of the driver, a reaper process (`_reaper.py`, Linux) ends every process of the
local instance, Ray's agents included (which otherwise keep running); each task process also
ends when its raylet dies. On a cluster (`address`), Ray itself ends the tasks of a driver
that died.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
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
    execute: Callable[[dict, str], Any],
    finished: Callable[[Any, Any, str | None], None],
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
    reaper = None
    if started_here:
        if address is None:
            # A throwaway local instance started for one sweep sends no usage statistics
            # (an explicit RAY_USAGE_STATS_ENABLED=1 still wins).
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")} if address is None else {}
        env.update(worker_env or {})
        handlers = _signal_handlers()
        reaper = _start_reaper() if address is None else None
        ray.init(
            address=address,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env} if env else None,
        )
        _restore_signal_handlers(handlers)  # ray.init replaces the SIGTERM handler
    pending: dict = {}
    try:
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(_task)
        pending = {
            task.remote(execute, run.config.to_dict(), str(out / "runs" / run.run_id)): run
            for run in todo
        }
        while pending:
            # Short waits, so that SIGINT and SIGTERM are handled within a second.
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            if not ready:
                continue
            run = pending.pop(ready[0])
            try:
                summary = ray.get(ready[0])
            except Exception:  # a failed task is recorded; the sweep goes on
                finished(run, None, traceback.format_exc())
            else:
                finished(run, summary, None)
    except BaseException:
        for ref in pending:  # stop queued and running tasks (they resume from checkpoints)
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
            if reaper is not None:
                reaper.kill()
                reaper.wait()


def _start_reaper():
    """On Linux, a watcher that ends the local Ray instance's processes if this process dies
    without shutting it down (`kill -9`): see `_reaper.py`."""
    if not sys.platform.startswith("linux"):
        return None
    script = Path(__file__).with_name("_reaper.py")
    return subprocess.Popen(
        [sys.executable, str(script), str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _task(execute: Callable[[dict, str], Any], config: dict, run_dir: str) -> Any:
    """A Ray task: `execute(config, run_dir)` in a worker that dies with its raylet."""
    global _DIES_WITH_PARENT
    if not _DIES_WITH_PARENT:
        from ._pool import die_with_parent

        die_with_parent(os.getppid())
        _DIES_WITH_PARENT = True
    return execute(config, run_dir)


_DIES_WITH_PARENT = False


def _signal_handlers() -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signal_handlers(handlers: dict) -> None:
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)
