"""One training run from a configuration: output folder, data, state, loop, summary.

A run is a pure function of its `RunConfig`: the weights are initialised from `seed`, and the
batch taken at global step $s$ is batch $s \\bmod n_b$ of epoch $\\lfloor s / n_b \\rfloor$ in the
order `iterate_batches(seed=seed, epoch=...)` gives, so a run resumed from a checkpoint ends with
the same weights, bit for bit, as one that was never interrupted.

Files written to the output folder (all but `metrics.jsonl` atomically, by write-then-rename,
with the permissions the umask gives):

- `config.json`: the `RunConfig`, the folder the data was read from, the command line and
  library versions.
- `metrics.jsonl`: one JSON line per logged step (training loss, energies, evaluations).
- `checkpoint.npz`: the `TrainState` every `checkpoint_every` steps and at the end
  (`mupc.save_checkpoint`), with the run's configuration and running statistics in its
  metadata.
- `summary.json`: the outcome (`RunSummary.to_dict()`).

**Divergence.** A run stops as diverged at the first step whose training loss, or energy
before or after inference, is not finite or exceeds `divergence_threshold` (default 1e3) times
its value at the first step; or when a test loss is not finite.
"""

import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import (
    check_writable_folder,
    remove_stale_temporaries,
    write_json_atomic,
    write_text_atomic,
)
from .._data import Layout
from .._optimisers import make_optimiser
from ._config import RESUMABLE_CHANGES, SYNTHETIC, RunConfig, num_batches_per_epoch
from ._summary import DivergedOn, DivergenceKind, RunSummary

# ------------------------------------------------------------------------------------ files


@dataclasses.dataclass(frozen=True)
class _Files:
    """The files of a run in its output `folder`."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "config.json"

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.npz"

    @property
    def summary(self) -> Path:
        return self.folder / "summary.json"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.jsonl"


def holds_run(out: str | os.PathLike) -> bool:
    """Whether the folder `out` holds (part of) a run: a config, a checkpoint or a summary."""
    files = _Files(Path(out))
    return any(path.exists() for path in (files.config, files.checkpoint, files.summary))


def read_json(path: Path) -> Any:
    """The JSON in `path`.

    **Raises:** `ValueError` naming the file if it is not valid JSON (cut short or edited).
    """
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); it was cut short or edited: delete it or "
            "choose another output folder"
        ) from error


def check_same_run(stored: dict, config: RunConfig, out: Path) -> None:
    """**Raises:** `ValueError` if the stored run configuration `stored` differs from
    `config` in a field that changes the trajectory (naming every such field)."""
    try:
        previous = RunConfig.from_dict(stored).to_dict()  # older files: fill in the defaults
    except (ValueError, TypeError):
        previous = stored
    current = config.to_dict()
    diffs = [
        f"{key}: stored {previous.get(key)!r} vs requested {current.get(key)!r}"
        for key in sorted(set(previous) | set(current))
        if key not in RESUMABLE_CHANGES and previous.get(key) != current.get(key)
    ]
    if diffs:
        raise ValueError(
            f"{str(out)!r} holds a different run ({'; '.join(diffs)}); use another --out or the "
            "same settings to resume it."
        )


def _prepare_output(out: Path, config: RunConfig, resume: bool) -> _Files:
    """Check the output folder before anything expensive happens.

    **Raises:** `ValueError` if `resume` and the folder holds no run, if it holds a run and
    not `resume`, or if it holds another run; `OSError` (naming the path) if the folder cannot
    be created or written.
    """
    files = _Files(out)
    if resume and not (out.is_dir() and holds_run(out)):
        raise ValueError(
            f"--resume: {str(out)!r} holds no run (no config.json, checkpoint.npz or "
            "summary.json); check the folder name, or drop --resume to start a new run there."
        )
    if not resume and (files.checkpoint.exists() or files.summary.exists()):
        raise ValueError(
            f"{str(out)!r} already holds a run; pass --resume to continue it or choose another "
            "--out folder."
        )
    check_writable_folder(out, "--out")
    remove_stale_temporaries(out)  # left by a write that was killed
    if files.config.exists():
        check_same_run(read_json(files.config)["run"], config, out)
    if resume and files.checkpoint.exists():
        from .._checkpoint import read_checkpoint_config

        stored = read_checkpoint_config(files.checkpoint)["metadata"].get("run")
        if stored is not None:
            check_same_run(stored, config, out)
    return files


def _write_config(files: _Files, config: RunConfig, data, provenance: dict | None) -> None:
    from .._version import versions

    record = {
        "run": config.to_dict(),
        "data": {"dataset": data.name, "directory": data.directory},
        "versions": versions(),
        **(provenance or {}),
    }
    write_json_atomic(files.config, record)


def _truncate_metrics(path: Path, last_step: int) -> None:
    """Drop lines logged after the checkpoint we resume from (they will be redone)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if record.get("step", 0) <= last_step:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))


class _MetricsLog:
    """`metrics.jsonl`, appended line by line (None: no file)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.handle = open(path, "a") if path is not None else None  # noqa: SIM115

    def write(self, record: dict) -> None:
        if self.handle is None:
            return
        try:
            self.handle.write(json.dumps(record, allow_nan=False) + "\n")
            self.handle.flush()
        except OSError as error:
            if error.filename is None and error.errno is not None:
                raise OSError(error.errno, error.strerror, str(self.path)) from error
            raise

    def close(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(OSError):  # a full disk: the error was raised already
                self.handle.close()


# ------------------------------------------------------------------------------------- data


def load_run_data(config: RunConfig, layout: Layout | None = None):
    """The dataset named by `config.dataset` (a `mupc.Dataset`) in `layout` (default: the one
    the configured network takes), keeping only the first `config.train_examples` training
    examples when that is set."""
    data = _load_data(config, layout or config.layout)  # type: ignore[arg-type]
    if config.train_examples is not None:
        if config.train_examples > data.train_images.shape[0]:
            raise ValueError(
                f"`train_examples` = {config.train_examples} exceeds the "
                f"{data.train_images.shape[0]} training examples of {config.dataset!r}."
            )
        count = config.train_examples
        data = data._replace(
            train_images=data.train_images[:count], train_labels=data.train_labels[:count]
        )
    return data


def _load_data(config: RunConfig, layout: Layout):
    from .._data import load_dataset, synthetic_dataset

    if config.dataset == "synthetic":
        if layout == "flat":
            return synthetic_dataset(seed=0, **SYNTHETIC)  # type: ignore[arg-type]
        side = int(math.isqrt(SYNTHETIC["input_dim"]))  # 64 = 8 x 8 x 1
        sizes = SYNTHETIC
        return synthetic_dataset(
            sizes["n_train"], sizes["n_test"], sizes["input_dim"], sizes["num_classes"],
            seed=0, image_shape=(1, side, side), layout=layout,
        )  # fmt: skip
    return load_dataset(config.dataset, data_dir=config.data_dir, seed=0, layout=layout)


def _note_data_folder(config: RunConfig, data) -> None:
    """Say so when `data_dir` was given but the files were read from another folder."""
    if config.data_dir is None or data.directory is None:
        return
    asked = Path(config.data_dir).expanduser().resolve()
    if not Path(data.directory).resolve().is_relative_to(asked):
        print(
            f"mupc: {asked / data.name} holds no copy of {data.name!r}; read {data.directory} "
            "instead",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------------- trainer, state


def build_trainer(config: RunConfig):
    """The `PCTrainer` or `BPTrainer` that `config` describes.

    Equal settings give the same trainer object, so runs in one process that differ only in
    seed or length reuse the compiled step instead of compiling it again.
    """
    return _trainer(
        config.method,
        config.optimizer,
        config.lr,
        config.inference,
        config.activity_optimizer,
        config.activity_lr,
        config.inference_steps,
        config.weight_gradient,
        config.loss,
        None if config.trainable_top is None else (config.depth, config.trainable_top),
    )


@functools.lru_cache(maxsize=32)
def _trainer(
    method, optimizer, lr, inference_kind, activity_optimizer, activity_lr, inference_steps,
    weight_gradient, loss, frozen,
):  # fmt: skip
    import optax

    from .._inference import DiscreteInference, ErrorInference
    from .._inference.error import DEFAULT_STEPS
    from .._loss import resolve_loss
    from .._optimisers import freeze_bottom_layers
    from .._training import BPTrainer, PCTrainer

    optimiser = make_optimiser(optimizer, lr)
    if frozen is not None:
        optimiser = optax.chain(freeze_bottom_layers(*frozen), optimiser)
    if method == "bp":
        return BPTrainer(optimiser=optimiser, loss=resolve_loss(loss))
    activity_optimiser = make_optimiser(activity_optimizer, activity_lr)
    if inference_kind == "epc":
        steps = DEFAULT_STEPS if inference_steps is None else inference_steps
        inference = ErrorInference(activity_optimiser, steps, weight_gradient=weight_gradient)
    else:
        inference = DiscreteInference(activity_optimiser, inference_steps)
    return PCTrainer(optimiser=optimiser, inference=inference, loss=resolve_loss(loss))


def _placement(trainer, config: RunConfig):
    """`(stepper, plain)`: what runs the steps (the trainer, or a `ParallelTrainer` over
    `config.devices` devices) and how to get an ordinary `TrainState` back for evaluation and
    checkpoints. Raises `ValueError` (K too large, or not dividing the batch or the depth)."""
    if config.devices == 1:
        return trainer, lambda state: state
    from .._parallel import ParallelTrainer, device_mesh

    parallel = ParallelTrainer(trainer, device_mesh(config.devices, config.parallel))
    parallel.check_sizes(batch_size=config.batch_size, depth=config.depth)
    return parallel, parallel.unshard


@dataclasses.dataclass
class _Tracker:
    """Running statistics of a run, stored in checkpoint metadata so resume restores them."""

    min_train_loss: float | None = None
    best_test_accuracy: float | None = None
    last_eval: dict | None = None
    last_train_loss: float | None = None
    wall_seconds: float = 0.0
    initial_train_loss: float | None = None
    initial_energy: float | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> "_Tracker":
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

    def to_dict(self, wall_seconds: float) -> dict:
        return {**dataclasses.asdict(self), "wall_seconds": wall_seconds}


def _initial_state(config: RunConfig, data, trainer):
    import jax
    import jax.numpy as jnp

    dtype = jnp.float64 if config.float64 else jnp.float32
    network_key, train_key = jax.random.split(jax.random.key(config.seed))
    network = config.build_network(
        data.train_images.shape[1:], data.train_labels.shape[1], key=network_key, dtype=dtype
    )
    return trainer.init(network, train_key)


def _restore(files: _Files | None, resume: bool, state) -> tuple[Any, _Tracker]:
    """The state and statistics to start from: the checkpoint's when resuming one."""
    from .._checkpoint import load_checkpoint, read_checkpoint_config

    if files is not None and resume and files.checkpoint.exists():
        state = load_checkpoint(files.checkpoint, like=state)
        metadata = read_checkpoint_config(files.checkpoint)["metadata"]
        _truncate_metrics(files.metrics, int(state.step))
        return state, _Tracker.from_dict(metadata.get("tracker"))
    if files is not None and files.metrics.exists():
        files.metrics.unlink()  # a run killed before its first checkpoint starts over
    return state, _Tracker()


# ------------------------------------------------------------------------------- divergence


@dataclasses.dataclass(frozen=True)
class Divergence:
    """Where and how a run diverged: the global `step` (1-based), what diverged (`on`) and
    `kind` (`"non-finite"` or `"threshold"`)."""

    step: int
    on: DivergedOn
    kind: DivergenceKind


def first_divergence(
    values: np.ndarray, reference: float | None, threshold: float | None
) -> tuple[int, DivergenceKind] | None:
    """The index of the first of `values` that is not finite or exceeds
    `threshold * reference`, and which of the two; None if there is none.

    $v_i$ diverged $\\iff v_i \\notin \\mathbb{R}$ or $v_i > \\theta\\, v_\\text{ref}$ (the
    second test only when `threshold` θ and a finite `reference` are given).
    """
    values = np.asarray(values, np.float64)
    non_finite = ~np.isfinite(values)
    bad = non_finite.copy()
    if threshold is not None and reference is not None and math.isfinite(reference):
        with np.errstate(invalid="ignore"):
            bad |= values > threshold * reference
    if not bad.any():
        return None
    index = int(np.flatnonzero(bad)[0])
    return index, "non-finite" if non_finite[index] else "threshold"


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class _Monitor:
    """Reads the metrics of the steps since the last flush: divergence, statistics, the
    `metrics.jsonl` record."""

    def __init__(self, config: RunConfig, tracker: _Tracker, per_epoch: int):
        self.config, self.tracker, self.per_epoch = config, tracker, per_epoch

    def flush(self, host: list, done: int) -> tuple[dict, Divergence | None]:
        """`host`: the `StepMetrics` of steps `done - len(host) + 1 .. done`, on the host."""
        tracker, threshold = self.tracker, self.config.divergence_threshold
        first = done - len(host) + 1
        losses = np.array([float(m.loss) for m in host])
        series: list[tuple[DivergedOn, np.ndarray, float | None]] = []
        if first == 1 and tracker.initial_train_loss is None:
            tracker.initial_train_loss = _finite_or_none(losses[0])
        series.append(("training", losses, tracker.initial_train_loss))
        if host[0].energy_before is not None:
            before = np.array([float(m.energy_before) for m in host])
            after = np.array([float(m.energy_after) for m in host])
            if first == 1 and tracker.initial_energy is None:
                tracker.initial_energy = _finite_or_none(before[0])
            series.append(("energy", before, tracker.initial_energy))
            series.append(("energy", after, tracker.initial_energy))
        found = [
            (index, on, kind)
            for on, values, reference in series
            if (hit := first_divergence(values, reference, threshold)) is not None
            for index, kind in [hit]
        ]
        divergence = None
        if found:
            index, on, kind = min(found, key=lambda item: item[0])
            divergence = Divergence(first + index, on, kind)
            kept = losses[:index]
        else:
            kept = losses
        if kept.size:
            tracker.last_train_loss = float(kept[-1])
            low = float(kept.min())
            if tracker.min_train_loss is None or low < tracker.min_train_loss:
                tracker.min_train_loss = low
        step = done if divergence is None else divergence.step
        shown = host[step - first]
        record: dict[str, Any] = {
            "step": step,
            "epoch": round(step / self.per_epoch, 4),
            "loss": _finite_or_none(shown.loss),
            "mean_loss": float(kept.mean()) if kept.size else None,
        }
        if shown.energy_before is not None:
            record["energy_before"] = _finite_or_none(shown.energy_before)
            record["energy_after"] = _finite_or_none(shown.energy_after)
        if divergence is not None:
            record.update(diverged=True, diverged_on=divergence.on, divergence=divergence.kind)
        return record, divergence

    def evaluated(self, record: dict, evaluation: dict) -> Divergence | None:
        """Fold a test evaluation into the statistics and `record`."""
        if evaluation["test_loss"] is None:
            record.update(diverged=True, diverged_on="test", divergence="non-finite")
            return Divergence(record["step"], "test", "non-finite")
        self.tracker.last_eval = evaluation
        accuracy = evaluation["test_accuracy"]
        best = self.tracker.best_test_accuracy
        if best is None or accuracy > best:
            self.tracker.best_test_accuracy = accuracy
        record.update(test_loss=evaluation["test_loss"], test_accuracy=accuracy)
        return None


# ------------------------------------------------------------------------------------- loop


def _batch_stream(config: RunConfig, data, start: int, total: int, per_epoch: int) -> Iterator:
    """`(step, inputs, targets)` for the global steps `start .. total - 1`."""
    from .. import _data

    for epoch in range(start // per_epoch, math.ceil(total / per_epoch)):
        first = max(start - epoch * per_epoch, 0)
        batches = _data.iterate_batches(
            data.train_images, data.train_labels, config.batch_size, seed=config.seed,
            epoch=epoch, drop_last=True, start=first,
        )  # fmt: skip
        for index, (inputs, targets) in enumerate(batches, start=first):
            step = epoch * per_epoch + index
            if step >= total:
                return
            yield step, inputs, targets


@dataclasses.dataclass
class _Loop:
    """Everything the training loop reads; `state` is the live training state."""

    config: RunConfig
    data: Any
    files: _Files | None
    stepper: Any
    plain: Any
    loss: Any
    state: Any
    monitor: _Monitor
    start: int
    total: int
    per_epoch: int
    wall: Any  # () -> seconds of this run so far, over every resumed piece
    progress: bool
    tracking: Any = None  # a dashboard tracker (e.g. TensorBoardTracker), or None


def _evaluate(loop: _Loop, step: int) -> dict:
    from .._evaluation import evaluate

    network = loop.plain(loop.state).network
    result = evaluate(network, loop.data.test_images, loop.data.test_labels, loss=loop.loss)
    record = {"step": step, "test_loss": _finite_or_none(result.loss)}
    record["test_accuracy"] = result.accuracy if record["test_loss"] is not None else None
    return record


def _save(loop: _Loop) -> None:
    from .._checkpoint import save_checkpoint

    if loop.files is None:
        return
    tracker = loop.monitor.tracker.to_dict(loop.wall())
    metadata = {"run": loop.config.to_dict(), "tracker": tracker}
    save_checkpoint(loop.files.checkpoint, loop.plain(loop.state), metadata=metadata)


def _train(loop: _Loop) -> Divergence | None:
    """Run steps `start .. total - 1`; stop early at a divergence (returned)."""
    import jax
    from tqdm import tqdm

    config = loop.config
    pending: list = []  # device-side metrics since the last flush: no host sync every step
    bar = tqdm(
        total=loop.total, initial=loop.start, disable=not loop.progress, unit="step",
        file=sys.stderr, dynamic_ncols=True,
        desc=config.label,
    )  # fmt: skip
    log = _MetricsLog(loop.files.metrics if loop.files is not None else None)
    if loop.tracking is not None:
        loop.tracking.start(loop.start)
    try:
        for step, inputs, targets in _batch_stream(
            config, loop.data, loop.start, loop.total, loop.per_epoch
        ):
            loop.state, metrics = loop.stepper.step(loop.state, inputs, targets)
            pending.append(metrics)
            done = step + 1
            evaluate_now = done % config.eval_every == 0 or done == loop.total
            save_now = done % config.checkpoint_every == 0 or done == loop.total
            if not (done % config.log_every == 0 or evaluate_now or save_now):
                continue
            record, divergence = loop.monitor.flush(jax.device_get(pending), done)
            pending = []
            if divergence is None and evaluate_now:
                divergence = loop.monitor.evaluated(record, _evaluate(loop, done))
            record["wall_seconds"] = round(loop.wall(), 3)
            log.write(record)
            if loop.tracking is not None:
                loop.tracking.log(record)
            if divergence is not None:
                bar.update(divergence.step - bar.n)
                return divergence
            postfix = {"loss": f"{record['loss']:.4g}"}
            if loop.monitor.tracker.last_eval is not None:
                postfix["test_acc"] = f"{loop.monitor.tracker.last_eval['test_accuracy']:.2%}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(done - bar.n)
            if save_now:
                _save(loop)
    finally:
        bar.close()
        log.close()
    return None


def _summarise(loop: _Loop, divergence: Divergence | None, started: float) -> RunSummary:
    tracker = loop.monitor.tracker
    steps = loop.total if divergence is None else divergence.step
    last = tracker.last_eval if divergence is None else None
    seconds = time.perf_counter() - started
    return RunSummary(
        status="completed" if divergence is None else "diverged",
        config=loop.config,
        steps=steps,
        epochs=round(steps / loop.per_epoch, 4),
        test_accuracy=None if last is None else last["test_accuracy"],
        test_loss=None if last is None else last["test_loss"],
        best_test_accuracy=tracker.best_test_accuracy,
        min_train_loss=tracker.min_train_loss,
        final_train_loss=None if divergence is not None else tracker.last_train_loss,
        diverged_at_step=None if divergence is None else divergence.step,
        diverged_on=None if divergence is None else divergence.on,
        wall_seconds=round(loop.wall(), 3),
        seconds_per_step=round(seconds / (steps - loop.start), 5) if steps > loop.start else None,
        dataset=loop.data.name,
        num_train=int(loop.data.train_images.shape[0]),
        num_test=int(loop.data.test_images.shape[0]),
        initial_train_loss=tracker.initial_train_loss,
        divergence=None if divergence is None else divergence.kind,
        data_dir=loop.data.directory,
    )


# -------------------------------------------------------------------------------- the door


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
      `summary.json`; None writes nothing. It is checked (created, writable) before the data
      is loaded.
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

    **Raises:** `ValueError` if `out` holds a different run, a run without `resume`, or no
    run with `resume`, or a stored file is not valid JSON (the message names it); `OSError`
    naming the path when `out` cannot be created or written (a file in the way, read-only,
    disk full); `KeyboardInterrupt` (or `Interrupted`) when stopped: the last checkpoint is
    intact and `resume=True` continues from it.
    """
    started = time.perf_counter()
    files = None if out is None else _prepare_output(Path(out), config, resume)
    with _precision(config.float64):
        data = dataset if dataset is not None else load_run_data(config)
        if progress:
            _note_data_folder(config, data)
        per_epoch = num_batches_per_epoch(data.train_images.shape[0], config.batch_size)
        total = config.total_steps(data.train_images.shape[0])
        if files is not None and resume and files.summary.exists():
            finished = RunSummary.read(files.summary)
            if finished.diverged or finished.steps == total:
                return finished
        trainer = build_trainer(config)
        stepper, plain = _placement(trainer, config)
        state, tracker = _restore(files, resume, _initial_state(config, data, trainer))
        start = int(state.step)
        if start > total:
            raise ValueError(
                f"The checkpoint in {str(out)!r} is at step {start}, beyond the requested "
                f"{total} steps; ask for at least as many steps."
            )
        if files is not None:
            _write_config(files, config, data, provenance)
        loop = _Loop(
            config, data, files, stepper, plain, trainer.loss,
            stepper.shard(state) if stepper is not trainer else state,
            _Monitor(config, tracker, per_epoch), start, total, per_epoch,
            lambda: tracker.wall_seconds + (time.perf_counter() - started), progress, tracking,
        )  # fmt: skip
        divergence = _train(loop)
        summary = _summarise(loop, divergence, started)
    if files is not None:
        write_json_atomic(files.summary, summary.to_dict())
    return summary
