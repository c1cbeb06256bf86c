"""One solver after another: e.g. ePC's warm start, then inference on the activities until
the energy has converged."""

import jax
import jax.numpy as jnp

from .base import InferenceSolver


class SequentialInference(InferenceSolver):
    """Run `first`, then `then` from where `first` ended; the weights learn as `then` says
    (by default the local PC gradient at the final activities).

    For example, learning at PC's equilibrium at depth: ePC reaches every layer in one step
    (`first=ErrorInference(...)`), then gradient descent on the activities
    (`then=DiscreteInference(..., tolerance=...)`) refines them until the energy's gradient
    is small, so the weights step on the gradient at (close to) the equilibrium.

    **Arguments:** `first`, `then`: two `InferenceSolver`s (`then` starts from activities that
    are no longer the feedforward pass).
    """

    first: InferenceSolver
    then: InferenceSolver

    def default_steps(self, network):
        return self.first.default_steps(network) + self.then.default_steps(network)

    def solve(self, energy, states, *, feedforward_start, key=None):
        keys = (None, None) if key is None else tuple(jax.random.split(key))
        warm = self.first.solve(energy, states, feedforward_start=feedforward_start, key=keys[0])
        result = self.then.solve(energy, warm.activities, feedforward_start=False, key=keys[1])
        return result._replace(steps=jnp.asarray(warm.steps + result.steps, jnp.int32))

    def energy_weight_gradients(self, energy, result):
        return self.then.energy_weight_gradients(energy, result)
