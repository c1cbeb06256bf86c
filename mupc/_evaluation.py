"""Feedforward evaluation over a dataset (docs/method.md, "A training step", step 4)."""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._loss import MSE, Loss
from ._network.base import PCNetwork


class Evaluation(NamedTuple):
    """Mean feedforward `loss` per example, `accuracy` (fraction of argmax(ŷ) == argmax(y), in
    [0, 1]; over every position for sequence outputs), `num_examples` and `positions` (the
    outputs per example: T for a language model's (B, T, V) outputs, else 1)."""

    loss: float
    accuracy: float
    num_examples: int
    positions: int = 1

    @property
    def loss_per_position(self) -> float:
        """`loss / positions`: for a language model with the cross-entropy loss, the held-out
        cross-entropy in nats per character."""
        return self.loss / self.positions


@eqx.filter_jit
def _batch_sums(network: PCNetwork, inputs, targets, mask, loss: Loss):
    outputs = network(inputs)
    correct = (jnp.argmax(outputs, -1) == jnp.argmax(targets, -1)).astype(mask.dtype)
    per_example = jnp.mean(correct, axis=tuple(range(1, correct.ndim)))
    return jnp.sum(mask * loss(outputs, targets)), jnp.sum(mask * per_example)


def _one_hot(labels: np.ndarray, classes: int, dtype) -> np.ndarray:
    return np.eye(classes, dtype=dtype)[labels]


def evaluate(
    network: PCNetwork, inputs, targets, *, loss: Loss = MSE(), batch_size: int = 1000
) -> Evaluation:
    """Feedforward loss and accuracy of `network` over all of `inputs` (n, ...) / `targets`
    (n, ..., C) one-hot, in compiled batches of `batch_size` (the last one padded and masked,
    so one program serves every batch).

    `targets` may also be integer class ids (n, ...) (e.g. a language model's next
    characters, (n, T)): they are made one-hot one batch at a time, so memory does not grow
    with the size of the test set times the number of classes.

    **Raises:** `ValueError` for a batch the network does not accept or ids out of range.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size!r}.")
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    classes = None
    if np.issubdtype(targets.dtype, np.integer):
        classes = int(np.prod(jax.eval_shape(network, inputs[:1]).shape[-1:]))
        if targets.size and (targets.min() < 0 or targets.max() >= classes):
            raise ValueError(
                f"`targets` holds class ids outside 0..{classes - 1} (the network's outputs)."
            )
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(
                f"`inputs` and `targets` must have the same number of examples, got "
                f"{inputs.shape[0]} and {targets.shape[0]}."
            )
    else:  # shapes now; finite values one batch at a time (no temporary the size of the set)
        network.check_batch(inputs, targets, check_finite=False)
    n = inputs.shape[0]
    size = min(batch_size, n)
    dtype = network.dtype
    total_loss, total_correct = 0.0, 0.0
    for start in range(0, n, size):
        x, y = inputs[start : start + size], targets[start : start + size]
        if classes is not None:
            y = _one_hot(y, classes, dtype)  # one batch at a time: no one-hot of the whole set
        try:
            network.check_batch(x, y)
        except ValueError as error:
            raise ValueError(f"{error} (rows counted from example {start})") from None
        mask = np.ones(size, dtype)
        if x.shape[0] < size:
            pad = size - x.shape[0]
            mask[x.shape[0] :] = 0
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
            y = np.concatenate([y, np.zeros((pad, *y.shape[1:]), y.dtype)])
        batch_loss, batch_correct = _batch_sums(
            network, jnp.asarray(x, dtype), jnp.asarray(y, dtype), jnp.asarray(mask), loss
        )
        total_loss += float(batch_loss)
        total_correct += float(batch_correct)
    label_shape = targets.shape[1:] if classes is not None else targets.shape[1:-1]
    positions = int(np.prod(label_shape)) if label_shape else 1
    return Evaluation(total_loss / n, total_correct / n, n, positions)
