"""Training steps: predictive coding (initialise, infer, learn; spec §4) and backprop.

Both trainers share one interface: `state = trainer.init(network, key)` and
`state, metrics = trainer.step(state, inputs, targets)`. The step is one compiled program,
compiled once per input shape and trainer.
"""

import abc
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

from ._activity_init import ActivityInit, FeedforwardInit
from ._custom_types import Inputs, PRNGKeyArray, Scalar, Targets
from ._energy import energy, layer_energies
from ._inference import DiscreteInference, InferenceSolver
from ._loss import MSE, Loss
from ._network import ResNet
from ._optimisers import optax_update
from ._validation import check_batch


class TrainState(eqx.Module):
    """Everything a training run carries from step to step.

    **Fields:** `network` (the `ResNet`), `opt_state` (the weight optimiser's state),
    `step` (number of steps taken, an integer scalar array) and `key` (PRNG key).
    """

    network: ResNet
    opt_state: optax.OptState
    step: Int[Array, ""]
    key: PRNGKeyArray


class StepMetrics(NamedTuple):
    """Measured during one training step (means over the batch).

    **Fields:**

    - `loss`: the feedforward loss before the update, e.g. $\\tfrac12\\lVert y-\\hat y\\rVert^2$.
    - `energy_before`, `energy_after`: the energy before and after inference (PC only).
    - `inference_steps`: solver steps taken (PC only).
    - `layer_energies`: per-layer energies after inference, shape (H + 1,), the last being the
      output term (PC, when `record_layer_energies=True`).
    """

    loss: Scalar
    energy_before: Scalar | None = None
    energy_after: Scalar | None = None
    inference_steps: Int[Array, ""] | None = None
    layer_energies: Float[Array, " layers"] | None = None


def _trainable(network: ResNet) -> ResNet:
    return eqx.filter(network, eqx.is_inexact_array)


class Trainer(eqx.Module):
    """A training method: `init` a state, then `step` it on batches."""

    optimiser: eqx.AbstractVar[optax.GradientTransformation]
    loss: eqx.AbstractVar[Loss]

    def init(self, network: ResNet, key: PRNGKeyArray | None = None) -> TrainState:
        """A fresh `TrainState` for `network` (step 0, optimiser state initialised)."""
        if not isinstance(network, ResNet):
            raise ValueError(f"`network` must be a mupc.ResNet, got {type(network).__name__}.")
        key = jax.random.key(0) if key is None else key
        opt_state = self.optimiser.init(_trainable(network))
        return TrainState(network, opt_state, jnp.zeros((), jnp.int32), key)

    def step(self, state: TrainState, inputs: Inputs, targets: Targets):
        """One training step on a batch: returns `(new_state, StepMetrics)`.

        **Raises:** `ValueError` if `inputs` is not (B, D), `targets` not (B, C), or either
        holds NaN or inf.
        """
        check_batch(state.network.config, inputs, targets)
        dtype = state.network.dtype
        return _compiled_step(self, state, jnp.asarray(inputs, dtype), jnp.asarray(targets, dtype))

    @abc.abstractmethod
    def _step(self, state: TrainState, inputs: Inputs, targets: Targets):
        """The step itself, traced inside `jit`."""


@eqx.filter_jit
def _compiled_step(trainer: Trainer, state: TrainState, inputs: Inputs, targets: Targets):
    return trainer._step(state, inputs, targets)


def _apply(optimiser, state: TrainState, grads, key) -> TrainState:
    params = _trainable(state.network)
    updates, opt_state = optax_update(optimiser, grads, state.opt_state, params)
    network = eqx.apply_updates(state.network, updates)
    return TrainState(network, opt_state, state.step + 1, key)


class PCTrainer(Trainer):
    """Predictive coding training (spec §4): initialise the activities, run inference, then
    one optimiser step on the weights using $\\partial \\bar F / \\partial W$, the gradient of the
    batch-mean energy at the final activities.

    **Arguments:**

    - `optimiser`: Optax optimiser for the weights (default Adam, lr 0.1: the published μPC
      setting on MNIST).
    - `inference`: an `InferenceSolver` (default: gradient descent with the published activity
      step 0.5 at batch 64, i.e. 0.0078125 per example, for T = H steps).
    - `activity_init`: `FeedforwardInit()` (default) or `NormalInit(std)`.
    - `loss`: the output energy, `MSE()` (default) or `CrossEntropy()`.
    - `record_layer_energies`: also return per-layer energies after inference.
    """

    optimiser: optax.GradientTransformation = optax.adam(0.1)
    inference: InferenceSolver = DiscreteInference.gradient_descent(0.5 / 64)
    activity_init: ActivityInit = FeedforwardInit()
    loss: Loss = MSE()
    record_layer_energies: bool = False

    def _step(self, state, inputs, targets):
        network = state.network
        key, init_key = jax.random.split(state.key)
        feedforward_activities, outputs = network.feedforward(inputs)
        feedforward_start = isinstance(self.activity_init, FeedforwardInit)
        if feedforward_start:
            activities = feedforward_activities
        else:
            activities = self.activity_init(network, inputs, init_key)
        energy_before = jnp.mean(energy(network, activities, inputs, targets, self.loss))
        result = self.inference.run(
            network, activities, inputs, targets, self.loss, feedforward_start=feedforward_start
        )
        final = jax.lax.stop_gradient(result.activities)

        def mean_energy(trainable):
            net = eqx.combine(trainable, network)
            return jnp.mean(energy(net, final, inputs, targets, self.loss))

        energy_after, grads = jax.value_and_grad(mean_energy)(_trainable(network))
        per_layer = None
        if self.record_layer_energies:
            per_layer = jnp.mean(layer_energies(network, final, inputs, targets, self.loss), 1)
        metrics = StepMetrics(
            loss=jnp.mean(self.loss(outputs, targets)),
            energy_before=energy_before,
            energy_after=energy_after,
            inference_steps=result.steps,
            layer_energies=per_layer,
        )
        return _apply(self.optimiser, state, grads, key), metrics


class BPTrainer(Trainer):
    """Backpropagation on the same network, multipliers and loss ("BP with Depth-μP" under
    `mupc`): one optimiser step on the gradient of the batch-mean loss.

    **Arguments:** `optimiser` (default Adam, lr 1e-2) and `loss` (default `MSE()`).
    """

    optimiser: optax.GradientTransformation = optax.adam(1e-2)
    loss: Loss = MSE()

    def _step(self, state, inputs, targets):
        network = state.network

        def mean_loss(trainable):
            net = eqx.combine(trainable, network)
            return jnp.mean(self.loss(net(inputs), targets))

        loss, grads = jax.value_and_grad(mean_loss)(_trainable(network))
        return _apply(self.optimiser, state, grads, state.key), StepMetrics(loss=loss)
