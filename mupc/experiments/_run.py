"""One training run from a configuration: data, network, trainer, loop, files, resume.

A run is a pure function of its `RunConfig`: the weights are initialised from `seed`, and the
batch taken at global step $s$ is batch $s \\bmod n_b$ of epoch $\\lfloor s / n_b \\rfloor$ in the
order `iterate_batches(seed=seed, epoch=...)` gives, so a run resumed from a checkpoint ends with
the same weights, bit for bit, as one that was never interrupted.

Files written to the output folder (all but `metrics.jsonl` atomically, by write-then-rename):

- `config.json`: the `RunConfig`, the command line and library versions.
- `metrics.jsonl`: one JSON line per logged step (training loss, energies, evaluations).
- `checkpoint.npz`: the `TrainState` every `checkpoint_every` steps and at the end
  (`mupc.save_checkpoint`), with the run's running statistics in its metadata.
- `summary.json`: the outcome (`RunSummary` fields as JSON).
"""

import dataclasses
import functools
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._atomic import write_json_atomic, write_text_atomic
from .._optimisers import OPTIMISERS, make_optimiser

METHODS = ("pc", "bp")
WEIGHT_OPTIMIZERS = tuple(OPTIMISERS)
ACTIVITY_OPTIMIZERS = ("sgd", "momentum", "adam")
LOSSES = ("mse", "cross-entropy")
# Fields that may change when a run is resumed (they do not change the trajectory).
PARALLEL_MODES = ("data", "layers", "both")
_RESUMABLE_CHANGES = (
    "steps", "epochs", "eval_every", "log_every", "checkpoint_every", "data_dir", "devices",
    "parallel",
)  # fmt: skip
# Size of the `synthetic` dataset (for smoke tests; not a benchmark).
_SYNTHETIC = {"n_train": 1024, "n_test": 256, "input_dim": 64, "num_classes": 10}


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")


def _check_positive(name: str, value: Any, integer: bool = True) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"`{name}` must be {what}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; validated when built.

    **Arguments:**

    - `dataset`: a name understood by `mupc._data.load_dataset` (`"mnist"`, `"fashion-mnist"`,
      `"cifar10"`, `"mnist-sample"`) or `"synthetic"` (random data, for smoke tests).
    - `data_dir`: where to look for (and download) the dataset files.
    - `depth` H, `width` N, `activation`, `parameterisation` (`"sp"`, `"mupc"`, `"ntp"`),
      `skips`: the `NetworkConfig`.
    - `method`: `"pc"` (`PCTrainer`) or `"bp"` (`BPTrainer`).
    - `optimizer`, `lr`: the weight optimiser (Optax) and its learning rate.
    - `activity_optimizer`, `activity_lr`: the inference optimiser and its **per-example**
      step (published batch-mean values divided by the batch size).
    - `inference_steps`: T (None: T = H).
    - `batch_size`, and the length: `steps` if given, else `epochs` (may be fractional).
    - `seed`: initial weights and data order.
    - `float64`: train in double precision.
    - `eval_every`, `log_every`, `checkpoint_every`: intervals in steps.
    - `loss`: `"mse"` or `"cross-entropy"`.
    - `devices`, `parallel`: train on K devices with `mupc.ParallelTrainer`, splitting the
      batch (`"data"`), the hidden layers (`"layers"`, PC only) or both (`"both"`); K = 1 is
      ordinary single-device training. A run may resume on a different K.

    **Raises:** `ValueError` naming the field, the bad value and what is allowed.
    """

    dataset: str = "mnist-sample"
    data_dir: str | None = None
    depth: int = 8
    width: int = 128
    activation: str = "relu"
    parameterisation: str = "mupc"
    skips: bool = True
    method: Literal["pc", "bp"] = "pc"
    optimizer: str = "adam"
    lr: float = 0.1
    activity_optimizer: str = "sgd"
    activity_lr: float = 0.5 / 64
    inference_steps: int | None = None
    batch_size: int = 64
    epochs: float | None = 1.0
    steps: int | None = None
    seed: int = 0
    float64: bool = False
    eval_every: int = 100
    log_every: int = 10
    checkpoint_every: int = 100
    loss: str = "mse"
    devices: int = 1
    parallel: Literal["data", "layers", "both"] = "data"

    def __post_init__(self):
        _check_choice("method", self.method, METHODS)
        _check_choice("optimizer", self.optimizer, WEIGHT_OPTIMIZERS)
        _check_choice("activity_optimizer", self.activity_optimizer, ACTIVITY_OPTIMIZERS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("parallel", self.parallel, PARALLEL_MODES)
        _check_positive("devices", self.devices)
        for name in ("depth", "width", "batch_size", "eval_every", "log_every"):
            _check_positive(name, getattr(self, name))
        _check_positive("checkpoint_every", self.checkpoint_every)
        _check_positive("lr", self.lr, integer=False)
        _check_positive("activity_lr", self.activity_lr, integer=False)
        if self.steps is None and self.epochs is None:
            raise ValueError("Give the run's length: `steps` or `epochs` (both are None).")
        if self.steps is not None:
            _check_positive("steps", self.steps)
        else:
            _check_positive("epochs", self.epochs, integer=False)
        if self.inference_steps is not None and (
            isinstance(self.inference_steps, bool)
            or not isinstance(self.inference_steps, int)
            or self.inference_steps < 0
        ):
            raise ValueError(
                f"`inference_steps` (T) must be an integer ≥ 0 or None (T = H), got "
                f"{self.inference_steps!r}."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be an integer ≥ 0, got {self.seed!r}.")
        # Validates activation and parameterisation names with the core's own messages.
        self.network_config(1, 1)

    def network_config(self, input_dim: int, output_dim: int):
        """The `NetworkConfig` for data with `input_dim` inputs and `output_dim` classes."""
        from .._network import NetworkConfig

        return NetworkConfig(
            input_dim,
            self.width,
            self.depth,
            output_dim,
            self.activation,
            self.parameterisation,
            self.skips,
        )

    def total_steps(self, num_train: int) -> int:
        """The number of training steps for a training set of `num_train` examples."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None  # __post_init__: steps or epochs is given
        per_epoch = _num_batches(num_train, self.batch_size)
        return max(1, math.ceil(self.epochs * per_epoch))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (inverse: `from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Inverse of `to_dict`; unknown keys are an error."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(
                f"Unknown run configuration fields {unknown}; allowed: {sorted(fields)}."
            )
        return cls(**data)


def _num_batches(num_train: int, batch_size: int) -> int:
    from .._data import num_batches

    count = num_batches(num_train, batch_size, True)
    if count < 1:
        raise ValueError(
            f"`batch_size` {batch_size} is larger than the training set ({num_train} examples); "
            "use a smaller batch."
        )
    return count


def load_run_data(config: RunConfig):
    """The dataset named by `config.dataset` (a `mupc._data.Dataset`)."""
    from .._data import load_dataset, synthetic_dataset

    if config.dataset == "synthetic":
        return synthetic_dataset(seed=0, **_SYNTHETIC)
    return load_dataset(config.dataset, data_dir=config.data_dir, seed=0, flatten=True)


def build_trainer(config: RunConfig):
    """The `PCTrainer` or `BPTrainer` that `config` describes.

    Equal settings give the same trainer object, so runs in one process that differ only in
    seed or length reuse the compiled step instead of compiling it again.
    """
    return _trainer(
        config.method,
        config.optimizer,
        config.lr,
        config.activity_optimizer,
        config.activity_lr,
        config.inference_steps,
        config.loss,
    )


@functools.lru_cache(maxsize=32)
def _trainer(method, optimizer, lr, activity_optimizer, activity_lr, inference_steps, loss):
    from .._inference import DiscreteInference
    from .._loss import resolve_loss
    from .._training import BPTrainer, PCTrainer

    optimiser = make_optimiser(optimizer, lr)
    if method == "bp":
        return BPTrainer(optimiser=optimiser, loss=resolve_loss(loss))
    inference = DiscreteInference(make_optimiser(activity_optimizer, activity_lr), inference_steps)
    return PCTrainer(optimiser=optimiser, inference=inference, loss=resolve_loss(loss))


def _placement(trainer, config: RunConfig):
    """`(stepper, plain, rows)`: what runs the steps (the trainer, or a `ParallelTrainer` over
    `config.devices` devices, which may belong to several processes), how to get an ordinary
    `TrainState` back for evaluation and checkpoints, and the rows of each batch that this
    process feeds it (all of them with one process). Raises `ValueError` (K too large, or not
    dividing the batch) before any data is touched."""
    import jax

    if config.devices == 1 and jax.process_count() == 1:
        return trainer, lambda state: state, slice(None)
    from .._parallel import ParallelTrainer, device_mesh

    parallel = ParallelTrainer(trainer, device_mesh(config.devices, config.parallel))
    return parallel, parallel.unshard, parallel.process_rows(config.batch_size)


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class _Tracker:
    """Running statistics of a run, stored in checkpoint metadata so resume restores them."""

    def __init__(self, data: dict | None = None):
        data = data or {}
        self.min_train_loss: float | None = data.get("min_train_loss")
        self.best_test_accuracy: float | None = data.get("best_test_accuracy")
        self.last_eval: dict | None = data.get("last_eval")
        self.last_train_loss: float | None = data.get("last_train_loss")
        self.wall_seconds: float = data.get("wall_seconds", 0.0)

    def to_dict(self, wall_seconds: float) -> dict:
        return {
            "min_train_loss": self.min_train_loss,
            "best_test_accuracy": self.best_test_accuracy,
            "last_eval": self.last_eval,
            "last_train_loss": self.last_train_loss,
            "wall_seconds": wall_seconds,
        }


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


def check_same_run(stored: dict, config: RunConfig, out: Path) -> None:
    current = config.to_dict()
    diffs = [
        f"{key}: stored {stored.get(key)!r} vs requested {current.get(key)!r}"
        for key in sorted(set(stored) | set(current))
        if key not in _RESUMABLE_CHANGES and stored.get(key) != current.get(key)
    ]
    if diffs:
        raise ValueError(
            f"{str(out)!r} holds a different run ({'; '.join(diffs)}); use another --out or the "
            "same settings to resume it."
        )


def run_experiment(
    config: RunConfig,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    provenance: dict | None = None,
    dataset=None,
) -> dict[str, Any]:
    """Train as `config` says; return the summary (also written to `out/summary.json`).

    **Arguments:**

    - `config`: the `RunConfig`.
    - `out`: output folder for `config.json`, `metrics.jsonl`, `checkpoint.npz` and
      `summary.json`; None writes nothing.
    - `resume`: continue from `out/checkpoint.npz` if there is one (a finished run whose
      summary covers the requested steps is returned as is); without it an existing run in
      `out` is an error.
    - `progress`: show a tqdm progress bar with the live loss and test accuracy.
    - `provenance`: extra JSON stored in `config.json` (e.g. the command line).
    - `dataset`: an already loaded `Dataset` (default: `load_run_data(config)`).

    **Returns:** a dict with `test_accuracy` (fraction in [0, 1]; None if the run diverged),
    `test_loss`, `best_test_accuracy`, `min_train_loss`, `final_train_loss`, `diverged`,
    `diverged_at_step` (the step whose training loss was first non-finite), `steps`, `epochs`,
    `wall_seconds`, `seconds_per_step`, `status` and the `config`.

    **Raises:** `ValueError` if `out` holds a different run or a run and `resume` is False.
    """
    import jax

    previous_x64 = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", bool(config.float64))
    try:
        return _run(
            config, None if out is None else Path(out), resume, progress, provenance, dataset
        )
    finally:
        jax.config.update("jax_enable_x64", previous_x64)


def _run(config, out, resume, progress, provenance, dataset):
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    from .._checkpoint import load_checkpoint, read_checkpoint_config, save_checkpoint
    from .._data import iterate_batches
    from .._evaluation import evaluate
    from .._network import ResNet
    from .._parallel import is_main_process
    from .._version import versions

    started = time.perf_counter()
    writes = out is not None and is_main_process()  # with several processes, process 0 writes
    checkpoint = out / "checkpoint.npz" if out is not None else None
    summary_path = out / "summary.json" if out is not None else None
    metrics_path = out / "metrics.jsonl" if out is not None else None
    if out is not None and not resume and (checkpoint.exists() or summary_path.exists()):
        raise ValueError(
            f"{str(out)!r} already holds a run; pass --resume to continue it or choose another "
            "--out folder."
        )
    if out is not None and (out / "config.json").exists():
        check_same_run(json.loads((out / "config.json").read_text())["run"], config, out)

    data = dataset if dataset is not None else load_run_data(config)
    train_x, train_y = data.train_images, data.train_labels
    test_x, test_y = data.test_images, data.test_labels
    per_epoch = _num_batches(train_x.shape[0], config.batch_size)
    total = config.total_steps(train_x.shape[0])

    if summary_path is not None and summary_path.exists() and resume:
        summary = json.loads(summary_path.read_text())
        if summary.get("diverged") or summary.get("steps") == total:
            return summary

    dtype = jnp.float64 if config.float64 else jnp.float32
    key = jax.random.key(config.seed)
    network_key, train_key = jax.random.split(key)
    network = ResNet(
        config.network_config(train_x.shape[1], train_y.shape[1]), key=network_key, dtype=dtype
    )
    trainer = build_trainer(config)
    loss_fn = trainer.loss
    stepper, plain, rows = _placement(trainer, config)
    state = trainer.init(network, train_key)
    tracker = _Tracker()
    if checkpoint is not None and resume and checkpoint.exists():
        state = load_checkpoint(checkpoint, like=state)
        tracker = _Tracker(read_checkpoint_config(checkpoint)["metadata"].get("tracker"))
        if writes:
            _truncate_metrics(metrics_path, int(state.step))
    elif writes and metrics_path.exists():
        metrics_path.unlink()  # a run killed before its first checkpoint starts over
    state = stepper.shard(state) if stepper is not trainer else state
    start = int(state.step)
    if start > total:
        raise ValueError(
            f"The checkpoint in {str(out)!r} is at step {start}, beyond the requested {total} "
            "steps; ask for at least as many steps."
        )
    if writes:
        write_json_atomic(
            out / "config.json",
            {"run": config.to_dict(), "versions": versions(), **(provenance or {})},
        )

    def wall() -> float:
        return tracker.wall_seconds + (time.perf_counter() - started)

    def do_eval(step: int) -> dict:
        result = evaluate(plain(state).network, test_x, test_y, loss=loss_fn)
        record = {"step": step, "test_loss": _finite_or_none(result.loss)}
        record["test_accuracy"] = result.accuracy if record["test_loss"] is not None else None
        return record

    diverged_at, diverged_on = None, None
    pending = []  # device-side metrics since the last flush: no host sync on every step
    bar = tqdm(
        total=total, initial=start, disable=not (progress and is_main_process()), unit="step",
        file=sys.stderr,
        dynamic_ncols=True, desc=f"{config.method} H={config.depth} N={config.width}",
    )  # fmt: skip
    log = open(metrics_path, "a") if writes else None  # noqa: SIM115
    try:
        batches, batches_epoch = None, None
        for step in range(start, total):
            epoch, index = divmod(step, per_epoch)
            if batches_epoch != epoch:
                batches = iter(iterate_batches(
                    train_x, train_y, config.batch_size, seed=config.seed, epoch=epoch,
                    drop_last=True, start=index,
                ))  # fmt: skip
                batches_epoch = epoch
            inputs, targets = next(batches)
            state, metrics = stepper.step(state, inputs[rows], targets[rows])
            pending.append(metrics)
            done = step + 1
            evaluate_now = done % config.eval_every == 0 or done == total
            save_now = done % config.checkpoint_every == 0 or done == total
            if not (done % config.log_every == 0 or evaluate_now or save_now):
                continue
            host = jax.device_get(pending)
            first = done - len(pending) + 1
            losses = np.array([float(m.loss) for m in host])
            bad = np.flatnonzero(~np.isfinite(losses))
            if bad.size:
                diverged_at, diverged_on = first + int(bad[0]), "training"
                losses = losses[: bad[0]]
            if losses.size:
                tracker.last_train_loss = float(losses[-1])
                low = float(losses.min())
                if tracker.min_train_loss is None or low < tracker.min_train_loss:
                    tracker.min_train_loss = low
            last = host[-1]
            record = {
                "step": done if diverged_at is None else diverged_at,
                "epoch": round(done / per_epoch, 4),
                "loss": _finite_or_none(last.loss) if diverged_at is None else None,
                "mean_loss": float(losses.mean()) if losses.size else None,
            }
            if last.energy_before is not None and diverged_at is None:
                record["energy_before"] = _finite_or_none(last.energy_before)
                record["energy_after"] = _finite_or_none(last.energy_after)
            pending = []
            if diverged_at is None and evaluate_now:
                evaluation = do_eval(done)
                if evaluation["test_loss"] is None:
                    diverged_at, diverged_on = done, "test"
                else:
                    tracker.last_eval = evaluation
                    accuracy = evaluation["test_accuracy"]
                    if tracker.best_test_accuracy is None or accuracy > tracker.best_test_accuracy:
                        tracker.best_test_accuracy = accuracy
                    record.update(
                        test_loss=evaluation["test_loss"], test_accuracy=evaluation["test_accuracy"]
                    )
            if diverged_at is not None:
                record["diverged"] = True
            record["wall_seconds"] = round(wall(), 3)
            if log is not None:
                log.write(json.dumps(record, allow_nan=False) + "\n")
                log.flush()
            if diverged_at is not None:
                bar.update(diverged_at - bar.n)
                break
            postfix = {"loss": f"{losses[-1]:.4g}"}
            if tracker.last_eval is not None:
                postfix["test_acc"] = f"{tracker.last_eval['test_accuracy']:.2%}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(done - bar.n)
            if save_now and writes:
                save_checkpoint(
                    checkpoint,
                    plain(state),
                    metadata={"run": config.to_dict(), "tracker": tracker.to_dict(wall())},
                )
    finally:
        bar.close()
        if log is not None:
            log.close()

    steps_done = int(state.step) if diverged_at is None else diverged_at
    seconds = wall()
    summary = {
        "status": "diverged" if diverged_at is not None else "completed",
        "test_accuracy": None if diverged_at is not None else tracker.last_eval["test_accuracy"],
        "test_loss": None if diverged_at is not None else tracker.last_eval["test_loss"],
        "best_test_accuracy": tracker.best_test_accuracy,
        "min_train_loss": tracker.min_train_loss,
        "final_train_loss": None if diverged_at is not None else tracker.last_train_loss,
        "diverged": diverged_at is not None,
        "diverged_at_step": diverged_at,
        "diverged_on": diverged_on,
        "steps": steps_done if diverged_at is not None else total,
        "epochs": round(steps_done / per_epoch, 4),
        "wall_seconds": round(seconds, 3),
        "seconds_per_step": round((time.perf_counter() - started) / (steps_done - start), 5)
        if steps_done > start
        else None,
        "dataset": data.name,
        "num_train": int(train_x.shape[0]),
        "num_test": int(test_x.shape[0]),
        "config": config.to_dict(),
    }
    if writes:
        write_json_atomic(summary_path, summary)
    return summary


def describe(summary: dict[str, Any]) -> str:
    """One line saying how a run ended."""
    if summary["diverged"]:
        return (
            f"DIVERGED: {summary.get('diverged_on') or 'training'} loss became non-finite at "
            f"step {summary['diverged_at_step']}; "
            "no test accuracy recorded."
        )
    return (
        f"test accuracy {summary['test_accuracy']:.2%} (best {summary['best_test_accuracy']:.2%}), "
        f"min training loss {summary['min_train_loss']:.4g}, {summary['steps']} steps in "
        f"{summary['wall_seconds']:.1f} s"
    )
