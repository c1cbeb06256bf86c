"""Feedforward evaluation over a dataset (spec §4, step 4)."""

from typing import NamedTuple

import equinox as eqx
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


def evaluate(
    network: PCNetwork, inputs, targets, *, loss: Loss = MSE(), batch_size: int = 1000
) -> Evaluation:
    """Feedforward loss and accuracy of `network` over all of `inputs` (n, ...) / `targets`
    (n, C), in compiled batches of `batch_size` (the last one padded and masked, so one
    program serves every batch).
    """
    network.check_batch(inputs, targets)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size!r}.")
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    n = inputs.shape[0]
    size = min(batch_size, n)
    dtype = network.dtype
    total_loss, total_correct = 0.0, 0.0
    for start in range(0, n, size):
        x, y = inputs[start : start + size], targets[start : start + size]
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
    positions = int(np.prod(targets.shape[1:-1])) if targets.ndim > 2 else 1
    return Evaluation(total_loss / n, total_correct / n, n, positions)
