"""The trainer interface: `state = trainer.init(network, key)`, then
`state, metrics = trainer.step(state, inputs, targets)`. The step is one compiled program,
compiled once per input shape and trainer."""

import abc
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

from .._custom_types import Inputs, PRNGKeyArray, Scalar, Targets
from .._loss import Loss
from .._network.base import PCNetwork
from .._optimisers import optax_update


class TrainState(eqx.Module):
    """Everything a training run carries from step to step.

    **Fields:** `network` (a `PCNetwork`, e.g. `ResNet`, or a `NetworkPair`), `opt_state`
    (the weight optimiser's state), `step` (number of steps taken, an integer scalar array)
    and `key` (PRNG key).
    """

    network: Any
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


def trainable(network: PCNetwork) -> PCNetwork:
    """The network's floating-point arrays (the weights), other leaves None."""
    return eqx.filter(network, eqx.is_inexact_array)


class Trainer(eqx.Module):
    """A training method: `init` a state, then `step` it on batches."""

    optimiser: eqx.AbstractVar[optax.GradientTransformation]
    loss: eqx.AbstractVar[Loss]

    def init(self, network: PCNetwork, key: PRNGKeyArray | None = None) -> TrainState:
        """A fresh `TrainState` for `network` (step 0, optimiser state initialised)."""
        from .._pair import NetworkPair

        if not isinstance(network, PCNetwork | NetworkPair):
            raise ValueError(
                f"`network` must be a mupc network (e.g. mupc.ResNet) or a mupc.NetworkPair, "
                f"got {type(network).__name__}."
            )
        key = jax.random.key(0) if key is None else key
        opt_state = self.optimiser.init(trainable(network))
        return TrainState(network, opt_state, jnp.zeros((), jnp.int32), key)

    def step(self, state: TrainState, inputs: Inputs, targets: Targets):
        """One training step on a batch: returns `(new_state, StepMetrics)`.

        **Raises:** `ValueError` if the batch does not fit the network (e.g. `inputs` not
        (B, D) or `targets` not (B, C) for the MLP) or holds NaN or inf.
        """
        state.network.check_batch(inputs, targets)
        dtype = state.network.dtype
        return _compiled_step(self, state, jnp.asarray(inputs, dtype), jnp.asarray(targets, dtype))

    @abc.abstractmethod
    def gradients(
        self, network: PCNetwork, inputs: Inputs, targets: Targets, key: PRNGKeyArray
    ) -> tuple[PCNetwork, StepMetrics]:
        """The weight gradients this method steps on, for one batch, and the step's metrics
        (traceable; `key` feeds a random activity initialisation, if any)."""

    def _step(self, state: TrainState, inputs: Inputs, targets: Targets):
        """The step itself, traced inside `jit`: gradients, then one optimiser step."""
        key, gradient_key = jax.random.split(state.key)
        grads, metrics = self.gradients(state.network, inputs, targets, gradient_key)
        return apply_gradients(self.optimiser, state, grads, key), metrics


@eqx.filter_jit
def _compiled_step(trainer: Trainer, state: TrainState, inputs: Inputs, targets: Targets):
    return trainer._step(state, inputs, targets)


def apply_gradients(optimiser, state: TrainState, grads, key) -> TrainState:
    """One optimiser step on the weights; the step count goes up by one."""
    params = trainable(state.network)
    updates, opt_state = optax_update(optimiser, grads, state.opt_state, params)
    network = eqx.apply_updates(state.network, updates)
    return TrainState(network, opt_state, state.step + 1, key)
