"""The inference interface: minimise the energy over the activities (docs/method.md, "A
training step", step 2).

The activity step is defined **per example**: solvers follow $-\\nabla_{z^{(i)}} F_i$ for every
example i, the gradient of that example's own energy, so the dynamics do not depend on the
batch size. The reference implementation steps on the gradient of the batch-*mean* energy;
convert its activity learning rates with `activity_lr_from_batch_mean`.
"""

import abc
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int

from .._batch_energy import BatchEnergy, NetworkEnergy
from .._custom_types import Inputs, PRNGKeyArray, Targets
from .._energy import per_example_sum
from .._loss import Loss
from .._network.base import Activities, PCNetwork
from .._optimisers import optax_update
from .._states import States


def activity_lr_from_batch_mean(activity_lr: float, batch_size: int) -> float:
    """Convert a published activity learning rate to this library's per-example convention.

    The reference steps each example by $\\beta/B$ times its own gradient (it differentiates the
    batch-mean energy), so $\\beta_{\\text{ours}} = \\beta_{\\text{published}} / B$: the
    published 0.5 at batch 64 is 0.0078125.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size!r}.")
    return activity_lr / batch_size


class InferenceResult(NamedTuple):
    """The outcome of inference.

    **Fields:**

    - `activities`: the final activities: a `mupc.States` from `solve`; the hidden
      activities alone (a pytree like the network's, e.g. (H, B, N)) from `run`.
    - `steps`: the number of solver steps taken (a scalar integer array).
    - `errors`: the hidden prediction errors at the final activities, when the solver has
      them exactly (error-optimised inference); None otherwise.
    """

    activities: Any
    steps: Int[Array, ""]
    errors: Activities | None = None


def activity_gradient(
    network: PCNetwork,
    activities: Activities,
    reference: Activities,
    reference_features: Activities,
    targets: Targets,
    loss: Loss,
    start: int = 0,
) -> Activities:
    """$\\nabla_z \\sum_i F_i$ (each example's gradient of its own energy) for the layers
    $s + 1..H$ given in `activities` (s = `start`; arguments as in
    `mupc._energy.errors_from_changes`): `network.energy_gradient`, automatic differentiation
    of the energy unless the network has a closed form."""
    return network.energy_gradient(activities, reference, reference_features, targets, loss, start)


def gradient_norms(gradient: Any) -> Array:
    """$\\lVert\\nabla_{z^{(i)}} F_i\\rVert$ of every example, shape (B,)."""
    return jnp.sqrt(per_example_sum(jax.tree.map(jnp.square, gradient)))


class InferenceSolver(eqx.Module):
    """Minimises an energy over the free activities.

    Subclasses implement `solve` (on a `mupc.BatchEnergy`: any network, clamp pattern, prior
    or pair of networks); `run` is the discriminative special case (both ends clamped).
    `energy_weight_gradients` (how the weights learn from the result) defaults to the local
    PC gradient at the final activities.
    """

    @abc.abstractmethod
    def solve(
        self,
        energy: BatchEnergy,
        states: States,
        *,
        feedforward_start: bool,
        key: PRNGKeyArray | None = None,
    ) -> InferenceResult:
        """Run inference on `energy` from `states`.

        **Arguments:**

        - `energy`: the batch's energy (`mupc.NetworkEnergy.bind(...)`, or what a trainer
          builds).
        - `states`: the initial `mupc.States`.
        - `feedforward_start`: `states` is the feedforward pass of the energy's input end
          (all hidden errors zero), which lets solvers skip work that is known to be zero.
        - `key`: for stochastic solvers (`LangevinInference`).

        **Returns:** an `InferenceResult` whose `activities` is a `States`.
        """

    def run(
        self,
        network: PCNetwork,
        activities: Activities,
        inputs: Inputs,
        targets: Targets,
        loss: Loss,
        *,
        feedforward_start: bool,
        reference: Activities | None = None,
        key: PRNGKeyArray | None = None,
    ) -> InferenceResult:
        """Run inference from `activities` with both ends clamped (`solve` on
        `NetworkEnergy.bind(network, inputs, targets, loss, reference=reference)`).

        **Arguments:**

        - `network`, `inputs`, `targets`, `loss`: the energy to minimise.
        - `activities`: the initial activities.
        - `feedforward_start`: the activities are the feedforward pass (all hidden errors
          zero), which lets solvers skip work that is known to be zero.
        - `reference`: the feedforward activities of `inputs`; when None, `activities` if
          `feedforward_start`, else computed. Errors are exact relative to this point, so pass
          the very array the activities started from.

        **Returns:** an `InferenceResult` whose `activities` are the hidden activities.
        """
        energy = self.clamped_energy(
            network, activities, inputs, targets, loss, feedforward_start, reference
        )
        result = self.solve(
            energy, States(activities), feedforward_start=feedforward_start, key=key
        )
        return result._replace(activities=result.activities.hidden)

    def clamped_energy(
        self, network, activities, inputs, targets, loss, feedforward_start, reference=None
    ) -> NetworkEnergy:
        """The energy `run` descends: both ends clamped, errors relative to `reference`."""
        reference = self.reference_point(network, activities, inputs, feedforward_start, reference)
        return _bind_clamped(network, inputs, targets, loss, reference)

    def reference_point(self, network, activities, inputs, feedforward_start, reference):
        """The feedforward activities the errors are measured from (see `run`)."""
        if reference is not None:
            return reference
        return activities if feedforward_start else network.feedforward(inputs)[0]

    def default_steps(self, network: PCNetwork | BatchEnergy) -> int:
        """T when none is given: H, the number of layers (the published choice)."""
        return network.num_layers

    def energy_weight_gradients(
        self, energy: BatchEnergy, result: InferenceResult
    ) -> tuple[Array, Any]:
        """`(mean_energy, gradients)`: the weight gradient of the batch-mean energy at the
        final activities of a `solve` result, local to each layer (layer l needs only
        $\\varepsilon_l$ and $z_{l-1}$); a pytree like the network (or pair)."""
        return energy.weight_gradients(result.activities, result.errors)

    def weight_gradients(
        self,
        network: PCNetwork,
        result: InferenceResult,
        inputs: Inputs,
        targets: Targets,
        loss: Loss,
        reference: Activities,
    ) -> tuple[Array, PCNetwork]:
        """`(mean_energy, gradients)` for a `run` result: the weight gradient of the
        batch-mean energy at the final activities, $\\partial \\bar F / \\partial W$ (local:
        layer l needs only $\\varepsilon_l$ and $z_{l-1}$)."""
        energy = _bind_clamped(network, inputs, targets, loss, reference)
        states = result._replace(activities=States(result.activities))
        return self.energy_weight_gradients(energy, states)


def minimise(optimiser, gradient, initial, steps: int, tolerance: float | None):
    """Run `optimiser` on a pytree from `initial` for `steps` iterations of
    $x \\leftarrow x + \\text{optimiser}(\\text{gradient}(x))$, or, with a `tolerance`, until every
    example's gradient norm is below it (at most `steps` iterations).

    **Returns:** `(final, steps_taken)`.
    """

    def step(x, state, grad):
        updates, state = optax_update(optimiser, grad, state, x)
        return optax.apply_updates(x, updates), state

    if tolerance is None:

        def iteration(_, carry):
            x, state = carry
            return step(x, state, gradient(x))

        final, _ = jax.lax.fori_loop(0, steps, iteration, (initial, optimiser.init(initial)))
        return final, jnp.asarray(steps, jnp.int32)

    def not_converged(carry):
        _, _, grad, taken = carry
        return (taken < steps) & (jnp.max(gradient_norms(grad)) >= tolerance)

    def loop_body(carry):
        x, state, grad, taken = carry
        x, state = step(x, state, grad)
        return x, state, gradient(x), taken + 1

    init = (initial, optimiser.init(initial), gradient(initial), jnp.asarray(0, jnp.int32))
    final, _, _, taken = jax.lax.while_loop(not_converged, loop_body, init)
    return final, taken


def _bind_clamped(network, inputs, targets, loss, reference) -> NetworkEnergy:
    """The energy with both ends clamped, its errors measured from `reference`."""
    return NetworkEnergy.bind(
        network, inputs, targets, loss, reference=reference,
        reference_outputs=network.readout(reference),
    )  # fmt: skip
