"""Optax optimisers by name, for the command line and configuration files."""

from collections.abc import Callable

import jax
import optax


def _momentum(learning_rate: float, momentum: float = 0.9) -> optax.GradientTransformation:
    return optax.sgd(learning_rate, momentum=momentum)


OPTIMISERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": _momentum,
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
}


def make_optimiser(name: str, learning_rate: float, **kwargs) -> optax.GradientTransformation:
    """The Optax optimiser called `name` (`sgd`, `momentum`, `adam`, `adamw`, `rmsprop`) with
    learning rate `learning_rate`; extra keyword arguments go to the Optax constructor.

    **Raises:** `ValueError` for an unknown name or a learning rate that is not positive and
    finite.
    """
    if name not in OPTIMISERS:
        raise ValueError(f"Unknown optimiser {name!r}: expected one of {sorted(OPTIMISERS)}.")
    if not 0 < learning_rate < float("inf"):
        raise ValueError(f"The learning rate must be > 0 and finite, got {learning_rate!r}.")
    return OPTIMISERS[name](learning_rate, **kwargs)


def optax_update(optimiser: optax.GradientTransformation, grads, state, params):
    """`optimiser.update(grads, state, params)` under standard dtype promotion.

    Some Optax transformations (Adam's bias correction raises a Python float to an int32
    count) fail under `jax_numpy_dtype_promotion="strict"`; the library's own arithmetic is
    strict-clean, so only this call is relaxed, and users may run everything else strictly.
    """
    with jax.numpy_dtype_promotion("standard"):
        return optimiser.update(grads, state, params)
