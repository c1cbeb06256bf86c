"""Backpropagation on the same network, multipliers and loss."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._loss import MSE, Loss
from .base import StepMetrics, Trainer, apply_gradients, trainable


class BPTrainer(Trainer):
    """Backpropagation on the same network, multipliers and loss ("BP with Depth-μP" under
    `mupc`): one optimiser step on the gradient of the batch-mean loss.

    **Arguments:** `optimiser` (default Adam, lr 1e-2) and `loss` (default `MSE()`).
    """

    optimiser: optax.GradientTransformation = optax.adam(1e-2)
    loss: Loss = MSE()

    def _step(self, state, inputs, targets):
        network = state.network

        def mean_loss(params):
            net = eqx.combine(params, network)
            return jnp.mean(self.loss(net(inputs), targets))

        loss, grads = jax.value_and_grad(mean_loss)(trainable(network))
        return apply_gradients(self.optimiser, state, grads, state.key), StepMetrics(loss=loss)
