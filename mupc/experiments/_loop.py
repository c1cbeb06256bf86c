"""The training loop of a run: the trainer, its placement on devices, the initial or resumed
state, the batches, and the steps with their logging, evaluations and checkpoints.

A run is a pure function of its `RunConfig`: the weights are initialised from `seed`, and the
batch taken at global step $s$ is batch $s \\bmod n_b$ of epoch $\\lfloor s / n_b \\rfloor$ in the
order `iterate_batches(seed=seed, epoch=...)` gives, so a run resumed from a checkpoint ends with
the same weights, bit for bit, as one that was never interrupted.
"""

import dataclasses
import functools
import math
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._optimisers import make_optimiser
from ._config import EQUILIBRIUM_WARM_STEPS, RunConfig
from ._divergence import Divergence, Monitor, RunStatistics, finite_or_none
from ._output import MetricsLog, RunFiles, truncate_metrics


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
        (config.refine_lr, config.refine_steps, config.refine_tolerance),
    )


@functools.lru_cache(maxsize=32)
def _trainer(
    method, optimizer, lr, inference_kind, activity_optimizer, activity_lr, inference_steps,
    weight_gradient, loss, frozen, refine,
):  # fmt: skip
    import optax

    from .._inference import DiscreteInference, ErrorInference, SequentialInference
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
    elif inference_kind == "epc-then-pc":
        # Learning at PC's equilibrium: ePC's warm start, then the activities refined.
        steps = EQUILIBRIUM_WARM_STEPS if inference_steps is None else inference_steps
        inference = SequentialInference.equilibrium(
            ErrorInference(activity_optimiser, steps), *refine
        )
    else:
        inference = DiscreteInference(activity_optimiser, inference_steps)
    return PCTrainer(optimiser=optimiser, inference=inference, loss=resolve_loss(loss))


def placement(trainer, config: RunConfig):
    """`(stepper, plain, rows)`: what runs the steps (the trainer, or a `ParallelTrainer` over
    `config.devices` devices, which may belong to several processes), how to get an ordinary
    `TrainState` back for evaluation and checkpoints, and the rows of each batch that this
    process feeds it (all of them with one process). Raises `ValueError` (K too large, or not
    dividing the batch) before any data is touched. `config.devices` must be a number
    (``"auto"`` is resolved first: `mupc.experiments._placement`)."""
    import jax

    if config.devices == "auto":
        raise ValueError("`placement` needs a number of devices; resolve devices='auto' first.")
    if config.devices == 1 and jax.process_count() == 1:
        return trainer, lambda state: state, slice(None)
    from .._parallel import ParallelTrainer, device_mesh

    parallel = ParallelTrainer(trainer, device_mesh(config.devices, config.parallel))
    return parallel, parallel.unshard, parallel.process_rows(config.batch_size)


def initial_state(config: RunConfig, data, trainer):
    import jax
    import jax.numpy as jnp

    dtype = jnp.float64 if config.float64 else jnp.float32
    network_key, train_key = jax.random.split(jax.random.key(config.seed))
    network = config.build_network(
        data.train_images.shape[1:], data.num_classes, key=network_key, dtype=dtype
    )
    return trainer.init(network, train_key)


def restore(files: RunFiles | None, resume: bool, state) -> tuple[Any, RunStatistics]:
    """The state and statistics to start from: the checkpoint's when resuming one."""
    from .._checkpoint import load_checkpoint, read_checkpoint_config

    if files is not None and resume and files.checkpoint.exists():
        state = load_checkpoint(files.checkpoint, like=state)
        metadata = read_checkpoint_config(files.checkpoint)["metadata"]
        if files.writes:
            truncate_metrics(files.metrics, int(state.step))
        return state, RunStatistics.from_dict(metadata.get("tracker"))
    if files is not None and files.writes and files.metrics.exists():
        files.metrics.unlink()  # a run killed before its first checkpoint starts over
    return state, RunStatistics()


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
            if data.vocabulary is not None:  # next-character ids (B, T) -> one-hot (B, T, V)
                targets = np.eye(data.num_classes, dtype=np.float32)[targets]
            yield step, inputs, targets


@dataclasses.dataclass
class Loop:
    """Everything the training loop reads; `state` is the live training state."""

    config: RunConfig
    data: Any
    files: RunFiles | None
    stepper: Any
    plain: Any
    loss: Any
    state: Any
    monitor: Monitor
    start: int
    total: int
    per_epoch: int
    wall: Any  # () -> seconds of this run so far, over every resumed piece
    progress: bool
    tracking: Any = None  # a dashboard tracker (e.g. TensorBoardTracker), or None
    # The rows of each batch this process feeds (all of them without jax.distributed).
    rows: slice = dataclasses.field(default_factory=lambda: slice(None))


def _evaluate(loop: Loop, step: int) -> dict:
    from .._evaluation import evaluate

    network = loop.plain(loop.state).network
    result = evaluate(network, loop.data.test_images, loop.data.test_labels, loss=loop.loss)
    record = {"step": step, "test_loss": finite_or_none(result.loss)}
    record["test_accuracy"] = result.accuracy if record["test_loss"] is not None else None
    if result.positions > 1:  # a language model: per character (nats, for cross-entropy)
        per = None if record["test_loss"] is None else result.loss_per_position
        record["test_loss_per_position"] = per
    return record


def _save(loop: Loop) -> None:
    from .._checkpoint import save_checkpoint

    if loop.files is None or not loop.files.writes:
        return
    tracker = loop.monitor.tracker.to_dict(loop.wall())
    metadata = {"run": loop.config.to_dict(), "tracker": tracker}
    if loop.data.vocabulary is not None:  # what `mupc generate` decodes token ids with
        metadata["vocabulary"] = loop.data.vocabulary
    save_checkpoint(loop.files.checkpoint, loop.plain(loop.state), metadata=metadata)


def train_loop(loop: Loop) -> Divergence | None:
    """Run steps `start .. total - 1`; stop early at a divergence (returned)."""
    import jax
    from tqdm import tqdm

    config = loop.config
    pending: list = []  # device-side metrics since the last flush: no host sync every step
    writes = loop.files is None or loop.files.writes  # one progress bar: process 0's
    bar = tqdm(
        total=loop.total, initial=loop.start, disable=not (loop.progress and writes),
        unit="step", file=sys.stderr, dynamic_ncols=True, desc=config.label,
    )  # fmt: skip
    log = MetricsLog(loop.files.metrics if loop.files is not None and writes else None)
    if loop.tracking is not None:
        loop.tracking.start(loop.start)
    try:
        for step, inputs, targets in _batch_stream(
            config, loop.data, loop.start, loop.total, loop.per_epoch
        ):
            rows = loop.rows  # this process's part of the batch (all of it with one process)
            loop.state, metrics = loop.stepper.step(loop.state, inputs[rows], targets[rows])
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
            if loop.tracking is not None and writes:
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
