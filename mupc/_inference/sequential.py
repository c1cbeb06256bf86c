"""One solver after another: e.g. ePC's warm start, then inference on the activities until
the energy has converged (learning at PC's equilibrium, docs/tutorials/epc.md)."""

import jax
import jax.numpy as jnp

from .base import InferenceSolver
from .discrete import DiscreteInference
from .error import ErrorInference


class SequentialInference(InferenceSolver):
    """Run `first`, then `then` from where `first` ended; the weights learn as `then` says
    (by default the local PC gradient at the final activities).

    For example, learning at PC's equilibrium at depth: ePC reaches every layer in one step
    (`first=ErrorInference(...)`), then gradient descent on the activities
    (`then=DiscreteInference(..., tolerance=...)`) refines them until the energy's gradient
    is small, so the weights step on the gradient at (close to) the equilibrium
    (`SequentialInference.equilibrium`).

    **Arguments:** `first`, `then`: two `InferenceSolver`s (`then` starts from activities that
    are no longer the feedforward pass).

    **Raises:** `ValueError` if either is not an `InferenceSolver`.
    """

    first: InferenceSolver
    then: InferenceSolver

    def __check_init__(self):
        for name in ("first", "then"):
            value = getattr(self, name)
            if not isinstance(value, InferenceSolver):
                raise ValueError(
                    f"`{name}` must be a mupc inference solver, got {type(value).__name__}."
                )

    @classmethod
    def equilibrium(
        cls,
        warm: ErrorInference,
        refine_lr: float,
        refine_steps: int,
        tolerance: float | None = None,
    ) -> "SequentialInference":
        """Learning at PC's equilibrium: the ePC solver `warm` from ε = 0, then at most
        `refine_steps` (R) steps of gradient descent on the activities,

        $$z^{(i)} \\leftarrow z^{(i)} - \\beta\\, \\nabla_{z^{(i)}} F_i, \\qquad \\beta =
        \\texttt{refine\\_lr},$$

        stopped once every example's $\\lVert\\nabla_{z^{(i)}} F_i\\rVert$ is below `tolerance`
        (None: all R steps). ePC and PC share the energy's minimiser, so the warm start brings
        every layer near it at once (inference on the activities alone needs far more than H
        steps at depth) and the refinement descends the very energy whose local weight
        gradient, $\\partial \\bar F / \\partial W$ at the refined activities, the weights step on.

        **Raises:** `ValueError` for a `warm` that is not an `ErrorInference` or a bad step,
        R or tolerance.
        """
        if not isinstance(warm, ErrorInference):
            raise ValueError(
                f"`warm` must be a mupc.ErrorInference (ePC), got {type(warm).__name__}."
            )
        refine = DiscreteInference.gradient_descent(refine_lr, refine_steps, tolerance=tolerance)
        return cls(warm, refine)

    def default_steps(self, network):
        return self.first.default_steps(network) + self.then.default_steps(network)

    def solve(self, energy, states, *, feedforward_start, key=None):
        keys = (None, None) if key is None else tuple(jax.random.split(key))
        warm = self.first.solve(energy, states, feedforward_start=feedforward_start, key=keys[0])
        result = self.then.solve(energy, warm.activities, feedforward_start=False, key=keys[1])
        return result._replace(steps=jnp.asarray(warm.steps + result.steps, jnp.int32))

    def energy_weight_gradients(self, energy, result):
        return self.then.energy_weight_gradients(energy, result)
