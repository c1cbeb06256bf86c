"""Predictive coding training (docs/method.md, "A training step"): initialise, infer, learn."""

import jax
import jax.numpy as jnp
import optax

from .. import _published as published
from .._activity_init import ActivityInit, FeedforwardInit
from .._energy import energy, errors_from_changes, errors_to_layer_energies
from .._inference.base import InferenceSolver
from .._inference.discrete import DiscreteInference
from .._loss import MSE, Loss
from .base import StepMetrics, Trainer


class PCTrainer(Trainer):
    """Predictive coding training (docs/method.md, "A training step"): initialise the
    activities, run inference, then
    one optimiser step on the weights using $\\partial \\bar F / \\partial W$, the gradient of the
    batch-mean energy at the final activities (or what the solver's `weight_gradients` says).

    **Arguments:**

    - `optimiser`: Optax optimiser for the weights (default Adam, lr 0.1: the published μPC
      setting on MNIST).
    - `inference`: an `InferenceSolver` (default: gradient descent with the published activity
      step 0.5 at batch 64, i.e. 0.0078125 per example, for T = H steps), e.g.
      `mupc.ErrorInference` for ePC.
    - `activity_init`: `FeedforwardInit()` (default) or `NormalInit(std)`.
    - `loss`: the output energy, `MSE()` (default) or `CrossEntropy()`.
    - `record_layer_energies`: also return per-layer energies after inference.
    """

    optimiser: optax.GradientTransformation = optax.adam(published.MUPC_WEIGHT_LR)
    inference: InferenceSolver = DiscreteInference.gradient_descent(published.ACTIVITY_LR)
    activity_init: ActivityInit = FeedforwardInit()
    loss: Loss = MSE()
    record_layer_energies: bool = False

    def gradients(self, network, inputs, targets, key):
        reference, outputs = network.feedforward(inputs)
        loss = jnp.mean(self.loss(outputs, targets))
        feedforward_start = isinstance(self.activity_init, FeedforwardInit)
        if feedforward_start:
            activities = reference
            energy_before = loss  # every hidden error is exactly zero at the feedforward pass
        else:
            activities = self.activity_init(network, inputs, key)
            energy_before = jnp.mean(
                energy(network, activities, inputs, targets, self.loss, reference)
            )
        result = self.inference.run(
            network,
            activities,
            inputs,
            targets,
            self.loss,
            feedforward_start=feedforward_start,
            reference=reference,
        )
        result = result._replace(activities=jax.lax.stop_gradient(result.activities))
        energy_after, grads = self.inference.weight_gradients(
            network, result, inputs, targets, self.loss, reference
        )
        per_layer = None
        if self.record_layer_energies:
            errors = result.errors
            if errors is None:
                features = network.features(reference)
                errors = errors_from_changes(network, result.activities, reference, features)
            per_layer = jnp.mean(
                errors_to_layer_energies(network, result.activities, errors, targets, self.loss),
                axis=1,
            )
        metrics = StepMetrics(
            loss=loss,
            energy_before=energy_before,
            energy_after=energy_after,
            inference_steps=result.steps,
            layer_energies=per_layer,
        )
        return grads, metrics
