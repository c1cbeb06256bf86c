"""One training run from a configuration: `run_experiment`.

The pieces live in their own modules: the output folder and its lock (`_output`), the data
(`_run_data`), the training loop (`_loop`), divergence and running statistics
(`_divergence`), and the summary (`_summary`). A run is a pure function of its `RunConfig`
(see `_loop`): resumed from a checkpoint it ends with the same weights, bit for bit, as one
that was never interrupted.
"""

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .._atomic import write_json_atomic
from ._config import RunConfig, num_batches_per_epoch
from ._divergence import Monitor
from ._loop import (
    Loop,
    _batch_stream,
    build_trainer,
    initial_state,
    placement,
    restore,
    train_loop,
)
from ._memory import check_fits_in_memory
from ._output import claim_output, write_config
from ._placement import network_signature, resolve_placement, with_devices
from ._run_data import load_run_data, note_data_folder
from ._summary import RunSummary, summarise

__all__ = ["build_trainer", "load_run_data", "run_experiment"]


@contextlib.contextmanager
def _precision(float64: bool) -> Iterator[None]:
    import jax

    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", bool(float64))
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def run_experiment(
    config: RunConfig,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    provenance: dict | None = None,
    dataset=None,
    tracking=None,
) -> RunSummary:
    """Train as `config` says; return the `RunSummary` (also written to `out/summary.json`).

    **Arguments:**

    - `config`: the `RunConfig`.
    - `out`: output folder for `config.json`, `metrics.jsonl`, `checkpoint.npz` and
      `summary.json`; None writes nothing. It is checked (created, writable) and locked
      (`.mupc.lock`, held until the run ends) before the data is loaded.
    - `resume`: continue the run in `out` from its last checkpoint (a finished run whose
      summary covers the requested steps is returned as is); without it an existing run in
      `out` is an error, and with it a folder without a run is one.
    - `progress`: show a tqdm progress bar with the live loss and test accuracy (and say so
      when `data_dir` did not hold the data).
    - `provenance`: extra JSON stored in `config.json` (e.g. the command line).
    - `dataset`: an already loaded `mupc.Dataset` (default: `load_run_data(config)`).
    - `tracking`: also send every metrics record to a dashboard, e.g. a
      `TensorBoardTracker` (see `mupc.experiments._tracking`); the caller closes it.

    **Returns:** the `RunSummary`.

    **Raises:** `ValueError` if `config` is not a `RunConfig`, if `out` holds a different
    run, a run without `resume`, or no run with `resume`, if another process is writing to
    `out` (`FolderInUse`, naming its PID: one writer per folder), if the run cannot fit in
    memory (the estimate of `mupc.experiments._memory`), or a stored file is not valid JSON
    (the message names it); `OSError`
    naming the path when `out` cannot be created or written (a file in the way, read-only,
    disk full); `KeyboardInterrupt` (or `Interrupted`) when stopped: the last checkpoint is
    intact and `resume=True` continues from it.
    """
    if not isinstance(config, RunConfig):
        raise ValueError(
            f"`config` must be a RunConfig (RunConfig(**fields), or RunConfig.from_dict), got "
            f"{type(config).__name__}."
        )
    started = time.perf_counter()
    if out is None:
        return _run(config, None, resume, progress, provenance, dataset, tracking, started)
    with claim_output(Path(out), config, resume) as files:
        return _run(config, files, resume, progress, provenance, dataset, tracking, started)


def _run(config, files, resume, progress, provenance, dataset, tracking, started) -> RunSummary:
    """The run itself, in the output folder `files` (a locked `RunFiles`, or None)."""
    out = None if files is None else files.folder
    with _precision(config.float64):
        data = dataset if dataset is not None else load_run_data(config)
        if progress:
            note_data_folder(config, data)
        per_epoch = num_batches_per_epoch(data.train_images.shape[0], config.batch_size)
        total = config.total_steps(data.train_images.shape[0])
        if files is not None and resume and files.summary.exists():
            finished = RunSummary.read(files.summary)
            if finished.diverged or finished.steps == total:
                return finished
        sized = config if config.devices != "auto" else with_devices(config, 1)
        check_fits_in_memory(sized, data.train_images.shape[1:], data.num_classes)
        trainer = build_trainer(config)
        if config.devices != "auto":
            placement(trainer, config)  # a bad K is an error before the state is built
        state, tracker = restore(files, resume, initial_state(config, data, trainer))
        start = int(state.step)
        if start > total:
            raise ValueError(
                f"The checkpoint in {str(out)!r} is at step {start}, beyond the requested "
                f"{total} steps; ask for at least as many steps."
            )
        chosen = resolve_placement(
            config,
            _calibration_steps(config, data, trainer, state, per_epoch),
            network_signature(config, data.train_images.shape[1:], data.num_classes),
            total - start,
            log=_say if progress else lambda line: None,
        )
        if progress and config.devices == "auto":
            _say(chosen.describe())
        stepper, plain, rows = placement(trainer, with_devices(config, chosen.devices))
        if files is not None and files.writes:
            write_config(files, config, data, {**(provenance or {}), "placement": chosen.to_dict()})
        loop = Loop(
            config, data, files, stepper, plain, trainer.loss,
            stepper.shard(state) if stepper is not trainer else state,
            Monitor(config, tracker, per_epoch), start, total, per_epoch,
            lambda: tracker.wall_seconds + (time.perf_counter() - started), progress, tracking,
            rows,
        )  # fmt: skip
        divergence = train_loop(loop)
        summary = dataclasses.replace(
            summarise(loop, divergence, started), placement=chosen.to_dict()
        )
    if files is not None and files.writes:
        write_json_atomic(files.summary, summary.to_dict())
    return summary


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _calibration_steps(config: RunConfig, data, trainer, state, per_epoch: int):
    """`steps(K)`: a function `run(n)` that takes n chained training steps on the run's next
    batch on K devices from the run's state, waits for the last and discards the result (the
    run's own state is not changed), for `resolve_placement`."""

    def steps(count: int):
        import jax

        stepper, _, rows = placement(trainer, with_devices(config, count))
        placed = stepper.shard(state) if stepper is not trainer else state
        start = int(state.step)
        _, inputs, targets = next(_batch_stream(config, data, start, start + 1, per_epoch))

        def run(n: int) -> None:
            current = placed
            for _ in range(n):
                current, metrics = stepper.step(current, inputs[rows], targets[rows])
            jax.block_until_ready((current, metrics))

        return run

    return steps
