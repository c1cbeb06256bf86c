"""The free activities of inference: `mupc.States`."""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array

from ._network.base import Activities


class States(NamedTuple):
    """Everything inference moves, a pytree whose leaves all have the layout (layers, batch,
    ...) (so per-example sums and optimisers treat it like the activities).

    **Fields:**

    - `hidden`: the hidden activities $z_1, \\dots, z_H$, a pytree like the network's (one
      (H, B, N) array for the residual MLP).
    - `input`: the free input end $z_0$, shape (1, B, ...), or None when it is clamped.
    - `output`: the free output end $z_L$, shape (1, B, ...), or None when it is clamped (or
      free under a non-Gaussian output term, whose prediction is read instead).
    """

    hidden: Activities
    input: Array | None = None
    output: Array | None = None


def flip(states: States) -> States:
    """The same activities seen from the other end: layers in reverse order and the two ends
    swapped (how the backward network of a `mupc.NetworkPair` sees the shared activities)."""
    return States(jnp.flip(states.hidden, axis=0), states.output, states.input)
