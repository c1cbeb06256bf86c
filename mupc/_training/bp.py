"""Backpropagation on the same network, multipliers and loss."""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .. import _published as published
from .._loss import MSE, Loss
from .base import StepMetrics, Trainer, trainable


class BPTrainer(Trainer):
    """Backpropagation on the same network, multipliers and loss ("BP with Depth-μP" under
    `mupc`): one optimiser step on the gradient of the batch-mean loss.

    **Arguments:** `optimiser` (default Adam, lr 1e-2) and `loss` (default `MSE()`).
    """

    optimiser: optax.GradientTransformation = optax.adam(published.BP_WEIGHT_LR)
    loss: Loss = MSE()

    def gradients(self, network, inputs, targets, key):
        def mean_loss(params):
            net = eqx.combine(params, network)
            return jnp.mean(self.loss(net(inputs), targets))

        loss, grads = jax.value_and_grad(mean_loss)(trainable(network))
        return grads, StepMetrics(loss=loss)
