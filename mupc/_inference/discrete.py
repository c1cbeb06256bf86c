"""Discrete-time inference: T steps of an Optax optimiser on the activities."""

import jax
import jax.numpy as jnp
import optax

from .._optimisers import optax_update
from .base import InferenceResult, InferenceSolver, activity_gradient, minimise

# Number of static phases used to skip layers whose activity gradient is still zero.
_NUM_PHASES = 8


def _phases(steps: int, depth: int, num_phases: int) -> list[tuple[int, int, int]]:
    """Static schedule `(first_step, end_step, first_active_layer)` for skipping layers.

    From a feedforward start at step t only the top t + 1 layers have a non-zero gradient,
    so the steps are cut into at most `num_phases` chunks; in each chunk only the layers
    that can be active by its last step are updated.
    """
    chunk = max(1, -(-depth // num_phases))
    phases, t = [], 0
    while t < steps:
        active = min(t + chunk, depth)
        end = steps if active == depth else min(t + chunk, steps)
        phases.append((t, end, depth - active))
        t = end
    return phases


def _slice_state(state, full_shape, start):
    """The rows `start:` of every optimiser-state leaf shaped like the activities."""
    return jax.tree.map(lambda leaf: leaf[start:] if jnp.shape(leaf) == full_shape else leaf, state)


def _merge_state(full_state, top_state, full_shape, start):
    return jax.tree.map(
        lambda full, top: full.at[start:].set(top) if jnp.shape(full) == full_shape else top,
        full_state,
        top_state,
    )


class DiscreteInference(InferenceSolver):
    """`steps` iterations of an Optax optimiser on the activities, compiled as one loop.

    Each iteration is $z \\leftarrow z + \\text{optimiser}(\\nabla_z F)$ with per-example
    gradients. Plain gradient descent (`optax.sgd(activity_lr)`) is the published setting;
    momentum or Adam work the same way.

    **Arguments:**

    - `optimiser`: an `optax.GradientTransformation` acting on the activities.
    - `steps`: T, the number of iterations; None means T = H (the published choice).
    - `tolerance`: if given, stop early once every example's activity-gradient norm
      $\\lVert\\nabla_{z^{(i)}} F_i\\rVert$ is below it.
    - `skip_inactive`: from a feedforward start, skip layers whose gradient is still exactly
      zero (at step t only the top t + 1 layers can move). Bit-for-bit equal to the full
      computation for the skipped layers (their errors are exactly zero) for any optimiser
      whose update is zero while every gradient so far has been zero (sgd, momentum, Adam,
      ...). Used only where the network supports layer slicing (the residual MLP); ignored
      with a `tolerance` or a non-feedforward start.
    """

    optimiser: optax.GradientTransformation
    steps: int | None = None
    tolerance: float | None = None
    skip_inactive: bool = True

    def __check_init__(self):
        if self.steps is not None and (
            not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 0
        ):
            raise ValueError(f"`steps` (T) must be an integer ≥ 0 or None, got {self.steps!r}.")
        if self.tolerance is not None and not (0 < self.tolerance < float("inf")):
            raise ValueError(
                f"`tolerance` must be finite and > 0, or None, got {self.tolerance!r}."
            )
        if not isinstance(self.skip_inactive, bool):
            raise ValueError(f"`skip_inactive` must be True or False, got {self.skip_inactive!r}.")

    @classmethod
    def gradient_descent(
        cls, activity_lr: float, steps: int | None = None, **kwargs
    ) -> "DiscreteInference":
        """Plain gradient descent with a per-example step size `activity_lr`."""
        if not (0 < activity_lr < float("inf")):
            raise ValueError(f"`activity_lr` must be finite and > 0, got {activity_lr!r}.")
        return cls(optax.sgd(activity_lr), steps, **kwargs)

    def run(self, network, activities, inputs, targets, loss, *, feedforward_start, reference=None):
        reference = self.reference_point(network, activities, inputs, feedforward_start, reference)
        features = network.features(reference)
        num_steps = self.default_steps(network) if self.steps is None else self.steps
        if self.tolerance is not None:

            def gradient(z):
                return activity_gradient(network, z, reference, features, targets, loss)

            final, taken = minimise(self.optimiser, gradient, activities, num_steps, self.tolerance)
            return InferenceResult(final, taken)
        state = self.optimiser.init(activities)
        if self.skip_inactive and feedforward_start and network.supports_layer_slicing:
            phases = _phases(num_steps, network.num_layers, _NUM_PHASES)
        else:
            phases = [(0, num_steps, 0)] if num_steps > 0 else []
        # A Python loop over at most _NUM_PHASES static phases, not over steps or layers.
        for first_step, end_step, start in phases:
            top = activities if start == 0 else activities[start:]
            top_ref = reference if start == 0 else reference[start:]
            top_features = features if start == 0 else features[start:]
            top_state = state if start == 0 else _slice_state(state, activities.shape, start)

            def iteration(_, carry, top_ref=top_ref, top_features=top_features, start=start):
                top, top_state = carry
                grad = activity_gradient(network, top, top_ref, top_features, targets, loss, start)
                updates, top_state = optax_update(self.optimiser, grad, top_state, top)
                return optax.apply_updates(top, updates), top_state

            top, top_state = jax.lax.fori_loop(first_step, end_step, iteration, (top, top_state))
            if start == 0:
                activities, state = top, top_state
            else:
                activities = activities.at[start:].set(top)
                state = _merge_state(state, top_state, activities.shape, start)
        return InferenceResult(activities, jnp.asarray(num_steps, jnp.int32))
