"""Coordinate check for predictive coding: the μP "coord check" adapted to inference and
learning.

Under a good parameterisation every per-coordinate quantity stays O(1) (neither explodes nor
vanishes) as the width N and the depth H grow, at initialisation and after a few steps. For
a PC training step we measure, per layer, the root mean square over examples and units
$\\operatorname{rms}(u) = \\sqrt{\\operatorname{mean}(u^2)}$ of

- the feedforward activities $z_l$ (l = 1..H) and the output $\\hat y$;
- the prediction errors after inference $\\varepsilon_l$ (l = 1..H) and $y - \\hat y(z_H)$;
- the activity updates of inference $z_l^{(T)} - z_l^{(0)}$;
- the weight updates $\\Delta W_l$ of the learning step (stored entries, l = 1..L);
- the change of the feedforward pass caused by that weight update,
  $z_l(W + \\Delta W) - z_l(W)$ and $\\hat y(W + \\Delta W) - \\hat y(W)$ (the quantity
  microsoft/mup's coord check plots).
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._activity_init import FeedforwardInit
from .._custom_types import Inputs, Targets
from .._energy import prediction_errors
from .._network.base import PCNetwork


class Coordinates(NamedTuple):
    """Per-layer RMS values over S recorded training steps.

    **Fields** (layer axis: H hidden layers, or L = H + 1 when the output is included as the
    last entry):

    - `step`: the step each row was measured at (before that step's update), shape (S,).
    - `activity`: feedforward $z_1..z_H$ then $\\hat y$, shape (S, L).
    - `error`: errors after inference $\\varepsilon_1..\\varepsilon_H$ then $y - \\hat y$, (S, L).
    - `activity_update`: $z^{(T)}_l - z^{(0)}_l$, shape (S, H).
    - `weight_update`: $\\Delta W_1..\\Delta W_L$, shape (S, L).
    - `feedforward_update`: change of $z_1..z_H, \\hat y$ from the weight update, (S, L).
    """

    step: Int[Array, " steps"]
    activity: Float[Array, "steps layers"]
    error: Float[Array, "steps layers"]
    activity_update: Float[Array, "steps depth"]
    weight_update: Float[Array, "steps layers"]
    feedforward_update: Float[Array, "steps layers"]


QUANTITIES = (
    "activity",
    "error",
    "activity_update",
    "weight_update",
    "feedforward_update",
)


def _rms(x, axes):
    return jnp.sqrt(jnp.mean(x**2, axis=axes))


def _layer_rms(tree) -> Array:
    """RMS over examples and units of every layer of a pytree of (layers, batch, ...)
    arrays, shape (H,)."""
    return jnp.concatenate(
        [_rms(leaf, tuple(range(1, leaf.ndim))) for leaf in jax.tree.leaves(tree)]
    )


def _inference_coordinates(trainer, network: PCNetwork, inputs, targets, key):
    activities, outputs = network.feedforward(inputs)
    feedforward_start = isinstance(trainer.activity_init, FeedforwardInit)
    initial = activities if feedforward_start else trainer.activity_init(network, inputs, key)
    result = trainer.inference.run(
        network,
        initial,
        inputs,
        targets,
        trainer.loss,
        feedforward_start=feedforward_start,
        reference=activities,
    )
    final = result.activities
    errors = prediction_errors(network, final, inputs, activities)
    output_error = targets - network.readout(final)
    activity = jnp.concatenate([_layer_rms(activities), _rms(outputs, None)[None]])
    error = jnp.concatenate([_layer_rms(errors), _rms(output_error, None)[None]])
    update = _layer_rms(jax.tree.map(jnp.subtract, final, initial))
    return activity, error, update


def _learning_coordinates(before: PCNetwork, after: PCNetwork, inputs):
    weight = jnp.stack(
        [
            _rms(new - old, None)
            for new, old in zip(
                after.layer_weights(after), before.layer_weights(before), strict=True
            )
        ]
    )
    acts_before, out_before = before.feedforward(inputs)
    acts_after, out_after = after.feedforward(inputs)
    change = jnp.concatenate(
        [
            _layer_rms(jax.tree.map(jnp.subtract, acts_after, acts_before)),
            _rms(out_after - out_before, None)[None],
        ]
    )
    return weight, change


@eqx.filter_jit
def _coordinate_step(trainer, state, inputs, targets):
    """One recorded training step, compiled as one program."""
    key = jax.random.split(state.key)[1]  # the key PCTrainer gives its activity initialiser
    activity, error, activity_update = _inference_coordinates(
        trainer, state.network, inputs, targets, key
    )
    new_state, _ = trainer._step(state, inputs, targets)
    weight, change = _learning_coordinates(state.network, new_state.network, inputs)
    return new_state, (activity, error, activity_update, weight, change)


def coordinate_check(trainer, state, inputs: Inputs, targets: Targets, steps: int):
    """Run `steps` PC training steps on one batch, recording per-layer RMS coordinates of
    each step (see the module docstring).

    **Arguments:**

    - `trainer`: a `mupc.PCTrainer` (its inference solver, activity initialiser and loss are
      used for the inference measurements, and its `step` for learning).
    - `state`: the `TrainState` to start from (e.g. `trainer.init(network)`).
    - `inputs`, `targets`: the batch, shapes (B, D) and (B, C), used at every step.
    - `steps`: S ≥ 1, the number of training steps recorded.

    **Returns:** `(state, Coordinates)`, the state after S steps and the record.

    **Raises:** `ValueError` if `steps` < 1 or the trainer has no inference solver.
    """
    from .._training import TrainState
    from .._validation import check_instance

    check_instance("state", state, TrainState, "a mupc TrainState (e.g. from trainer.init)")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be an integer ≥ 1, got {steps!r}.")
    if not hasattr(trainer, "inference"):
        raise ValueError(
            f"`trainer` must be a predictive coding trainer (mupc.PCTrainer), got "
            f"{type(trainer).__name__}."
        )
    state.network.check_batch(inputs, targets)
    dtype = state.network.dtype
    inputs, targets = jnp.asarray(inputs, dtype), jnp.asarray(targets, dtype)
    rows = []
    for _ in range(steps):
        step = int(state.step)
        state, values = _coordinate_step(trainer, state, inputs, targets)
        rows.append((step, *values))
    columns = list(zip(*rows, strict=True))
    record = Coordinates(jnp.asarray(columns[0]), *(jnp.stack(column) for column in columns[1:]))
    return state, record
