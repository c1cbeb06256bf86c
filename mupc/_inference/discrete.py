"""Discrete-time inference: T steps of an Optax optimiser on the activities."""

import jax
import jax.numpy as jnp
import optax

from .._optimisers import optax_update
from .._slicing import (
    activity_like_parts,
    layer_differs,
    merge_layers,
    merge_state,
    slice_layers,
    slice_state,
)
from .base import InferenceResult, InferenceSolver, minimise

# The sizes of the blocks of top layers that inference updates, as fractions of the depth H
# (rounded up): finer at the top, where the moving layers usually stay (in float32 most layers
# never move, e.g. 9 of 128 with the published ReLU setting); at most this many compiled loop
# bodies whatever H is (fewer when H is small).
_BUCKET_FRACTIONS = (1 / 16, 3 / 32, 1 / 8, 3 / 16, 1 / 4, 3 / 8, 1 / 2, 3 / 4, 1)


def _bucket_starts(depth: int, alignment: int = 1) -> list[int]:
    """The first layer (0-based) of each block of top layers, smallest block first: for H =
    128 the blocks hold the top 8, 12, 16, 24, 32, 48, 64, 96 and 128 layers. Starts are
    rounded down to a multiple of `alignment` (the network's `slice_alignment`)."""
    sizes = {max(1, int(-(-depth * fraction // 1))) for fraction in _BUCKET_FRACTIONS}
    return sorted({(depth - size) // alignment * alignment for size in sizes}, reverse=True)


def _lowest_changed(low, current, initial):
    """`low` - 1 if layer `low` - 1 (0-based) of the states or of any part of the optimiser
    state shaped like them differs from its start, else `low`: the gradient of a step reaches
    at most one layer further down. `current` and `initial` are `(states, optimiser state)`
    pairs; the free ends (after the H layers in leaf order) are never read here."""
    row = jnp.maximum(low - 1, 0)
    states, state = initial
    now_states, now_state = current
    pairs = [(now_states, states)] + list(
        zip(
            activity_like_parts(now_state, states),
            activity_like_parts(state, states),
            strict=True,
        )
    )
    changed = jnp.asarray(False)
    for now, then in pairs:
        changed |= layer_differs(now, then, row)
    return jnp.where(changed & (low > 0), low - 1, low)


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
    - `skip_inactive`: from a feedforward start, update only the smallest block of top
      layers that holds every layer that has moved and the one below the lowest of them
      (found exactly at every step; a layer gets a non-zero gradient only once the layer
      above it has moved). The skipped layers would get exactly zero updates, so the result
      equals the full computation for any optimiser whose update is zero while every
      gradient so far has been zero (sgd, momentum, Adam, ...). Used only where the network
      supports layer slicing (the residual MLP, the conv ResNet, layer stacks); ignored
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

    def solve(self, energy, states, *, feedforward_start, key=None):
        num_steps = self.default_steps(energy) if self.steps is None else self.steps
        if self.tolerance is not None:
            final, taken = minimise(
                self.optimiser, energy.gradient, states, num_steps, self.tolerance
            )
            return InferenceResult(final, taken)
        state = self.optimiser.init(states)
        depth = energy.num_layers
        skipping = self.skip_inactive and feedforward_start and energy.supports_layer_slicing
        starts = _bucket_starts(depth, energy.slice_alignment) if skipping else [0]
        # `low`: the lowest layer whose activity or optimiser state differs from the start (H:
        # none yet). Every layer below it still has its feedforward activity and an untouched
        # optimiser state, so only layers low - 1, ..., H can have a non-zero gradient in the
        # next step (layer low - 1 through the error of layer low); a free input end moves
        # only with layer 1, unless its prior pulls it from the start (`initial_low` is then
        # 0). Each bucket's loop runs while that block fits in it; `low` only decreases, so
        # the buckets run smallest first, once each.
        # A Python loop over at most len(_BUCKET_FRACTIONS) static sizes, not over steps or layers.
        low = energy.initial_low(states) if skipping else jnp.asarray(depth, jnp.int32)
        carry = (jnp.asarray(0, jnp.int32), low, states, state)
        for start in starts:
            phase_energy = energy.for_layers_above(start)

            def fits(carry, start=start):
                step, low = carry[0], carry[1]
                return (step < num_steps) & ((low - 1 >= start) | (start == 0))

            def iteration(carry, start=start, phase_energy=phase_energy):
                step, low, full, full_state = carry
                # The hidden layers come first in the states' leaf order, so slicing the
                # states cuts the hidden layers only and keeps the free ends whole.
                top = slice_layers(full, start)
                top_state = slice_state(full_state, states, start)
                grad = phase_energy.gradient(top, start)
                updates, top_state = optax_update(self.optimiser, grad, top_state, top)
                top = optax.apply_updates(top, updates)
                top = merge_layers(full, top, start)
                top_state = merge_state(full_state, top_state, states, start)
                if skipping:
                    low = _lowest_changed(low, (top, top_state), (states, state))
                return step + 1, low, top, top_state

            carry = jax.lax.while_loop(fits, iteration, carry)
        return InferenceResult(carry[2], jnp.asarray(num_steps, jnp.int32))
