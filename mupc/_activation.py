"""Activation functions, by name or any callable."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

ActivationFn = Callable[[jax.Array], jax.Array]


def _linear(x: jax.Array) -> jax.Array:
    return x


ACTIVATIONS: dict[str, ActivationFn] = {
    "linear": _linear,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
}


def resolve_activation(activation: str | ActivationFn) -> ActivationFn:
    """Return the activation function $\\phi$ named by `activation` (or `activation` itself).

    **Raises:** `ValueError` for an unknown name.
    """
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"Unknown activation {activation!r}: expected one of {sorted(ACTIVATIONS)} "
        "or a callable mapping an array to an array of the same shape."
    )


def activation_name(activation: str | ActivationFn) -> str | None:
    """The registered name of `activation`, or None for an unregistered callable."""
    if isinstance(activation, str):
        return activation
    for name, fn in ACTIVATIONS.items():
        if fn is activation:
            return name
    return None
