"""How the activities (and the free ends) are initialised before inference."""

import math
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._clamp import Clamp
from ._custom_types import Inputs, PRNGKeyArray
from ._network.base import Activities, PCNetwork
from ._states import States


class Start(NamedTuple):
    """Where inference starts.

    **Fields:**

    - `inputs`: the input end's data, or the starting point $\\bar z_0$ of a free input end.
    - `targets`: the output end's data (None when it is free).
    - `states`: the initial `mupc.States` (hidden activities and free ends).
    - `feedforward`: whether `states` is the forward network's feedforward pass of `inputs`
      (every hidden error exactly 0, a free output end at $\\hat y$).
    - `reference`, `outputs`: that feedforward pass (activities and $\\hat y$) when computed,
      else None.
    - `output_start`: where a free output end starts (None: at $\\hat y$, or clamped).
    """

    inputs: Array
    targets: Array | None
    states: States
    feedforward: bool
    reference: Activities | None = None
    outputs: Array | None = None
    output_start: Array | None = None


def forward_network(model: Any) -> PCNetwork:
    """The network whose energy inference starts from: `model` itself, or the forward
    network of a `mupc.NetworkPair`."""
    from ._pair import NetworkPair

    return model.forward if isinstance(model, NetworkPair) else model


def batch_size(inputs: Array | None, targets: Array | None) -> int:
    """B, from whichever end holds data."""
    for data in (inputs, targets):
        if data is not None:
            return int(jnp.shape(data)[0])
    raise ValueError("Neither `inputs` nor `targets` was given: at least one end needs data.")


def _check_ends(clamp: Clamp, inputs, targets) -> None:
    if not clamp.free_input and inputs is None:
        raise ValueError("The input end is clamped (mupc.Clamp(input='clamped')): pass `inputs`.")
    if not clamp.free_output and targets is None:
        raise ValueError(
            "The output end is clamped (mupc.Clamp(output='clamped')): pass `targets`."
        )


class ActivityInit(eqx.Module):
    """Produces the initial activities for a batch.

    `__call__` gives the hidden activities for clamped inputs; `free_end` where a free end
    starts (default 0); `start` puts it together for any clamp pattern (override it for an
    initialisation that needs more than the network, e.g. `AmortisedInit`).
    """

    def __call__(self, network: PCNetwork, inputs: Inputs, key: PRNGKeyArray) -> Activities:
        """The initial hidden activities (a pytree like the network's)."""
        raise NotImplementedError

    def free_end(self, shape: tuple[int, ...], dtype: Any, key: PRNGKeyArray) -> Array:
        """Where a free end without data starts: 0 by default."""
        return jnp.zeros(shape, dtype)

    def start(
        self, model: Any, inputs: Array | None, targets: Array | None, clamp: Clamp, key
    ) -> Start:
        """Initial states for a batch: a free input end starts at `inputs` when given, else at
        `free_end`; the hidden activities are `self(network, z_0, key)`; a free output end
        starts at `targets` when given, else at `free_end`.

        **Raises:** `ValueError` when a clamped end has no data.
        """
        _check_ends(clamp, inputs, targets)
        network = forward_network(model)
        dtype = network.dtype
        rows = batch_size(inputs, targets)
        if inputs is None:
            inputs = self.free_end((rows, *network.input_shape), dtype, jax.random.fold_in(key, 1))
        hidden = self(network, inputs, key)
        output_start = None
        if clamp.free_output:
            if targets is None:
                shape = jax.eval_shape(network, inputs).shape
                targets = self.free_end(shape, dtype, jax.random.fold_in(key, 2))
            output_start, targets = targets, None
        return Start(inputs, targets, States(hidden), False, output_start=output_start)


class FeedforwardInit(ActivityInit):
    """$z_l$ = the feedforward pass of the input end, so every hidden error starts at exactly
    zero (the default). A free input end (a latent) starts at $m + s\\,\\xi$, $\\xi \\sim
    \\mathcal N(0, I)$, with `latent_mean` m and `latent_std` s (default 0: at m); a free output
    end starts at the prediction $\\hat y$."""

    latent_mean: float = 0.0
    latent_std: float = 0.0

    def __check_init__(self):
        if not math.isfinite(self.latent_mean):
            raise ValueError(f"`latent_mean` must be finite, got {self.latent_mean!r}.")
        if not (0 <= self.latent_std < float("inf")):
            raise ValueError(f"`latent_std` must be finite and ≥ 0, got {self.latent_std!r}.")

    def __call__(self, network, inputs, key):
        return network.feedforward(inputs)[0]

    def free_end(self, shape, dtype, key):
        if self.latent_std == 0:
            return jnp.full(shape, self.latent_mean, dtype)
        return self.latent_mean + self.latent_std * jax.random.normal(key, shape, dtype)

    def start(self, model, inputs, targets, clamp, key):
        _check_ends(clamp, inputs, targets)
        network = forward_network(model)
        if inputs is None:
            shape = (batch_size(inputs, targets), *network.input_shape)
            inputs = self.free_end(shape, network.dtype, jax.random.fold_in(key, 1))
        hidden, outputs = network.feedforward(inputs)
        output_start = None
        if clamp.free_output:
            output_start, targets = (outputs if targets is None else targets), None
        return Start(inputs, targets, States(hidden), True, hidden, outputs, output_start)


class ZerosInit(ActivityInit):
    """Every activity, and every free end, starts at 0."""

    def __call__(self, network, inputs, key):
        shapes = jax.eval_shape(lambda x: network.feedforward(x)[0], inputs)
        return jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), shapes)


class NormalInit(ActivityInit):
    """$z_l \\sim \\mathcal{N}(0, \\sigma^2)$ independently, with $\\sigma$ = `std`, and so
    does every free end without data."""

    std: float = 1.0

    def __check_init__(self):
        if not (0 <= self.std < float("inf")):
            raise ValueError(f"`std` must be finite and ≥ 0, got {self.std!r}.")

    def __call__(self, network, inputs, key):
        shapes = jax.eval_shape(lambda x: network.feedforward(x)[0], inputs)
        leaves, treedef = jax.tree.flatten(shapes)
        keys = jax.random.split(key, len(leaves))
        drawn = [
            self.std * jax.random.normal(k, leaf.shape, leaf.dtype)
            for k, leaf in zip(keys, leaves, strict=True)
        ]
        return jax.tree.unflatten(treedef, drawn)

    def free_end(self, shape, dtype, key):
        return self.std * jax.random.normal(key, shape, dtype)


class AmortisedInit(ActivityInit):
    """Start from the backward network of a `mupc.NetworkPair` (the amortiser): its
    feedforward pass from the output end's data gives the hidden activities (in reverse
    order) and, for a free input end, $z_0$ = its prediction. Hybrid PC (`mupc.Amortised`)
    and bidirectional PC start here.

    **Raises:** `ValueError` for a single network or a free output end (the amortiser reads
    the output end's data).
    """

    def __call__(self, network, inputs, key):
        raise ValueError("AmortisedInit starts from the backward network of a mupc.NetworkPair.")

    def start(self, model, inputs, targets, clamp, key):
        from ._pair import NetworkPair

        if not isinstance(model, NetworkPair):
            raise ValueError(
                "AmortisedInit starts from the backward network of a mupc.NetworkPair, got "
                f"{type(model).__name__}."
            )
        if clamp.free_output or targets is None:
            raise ValueError(
                "AmortisedInit reads the output end's data: clamp it (mupc.Clamp(output="
                "'clamped')) and pass `targets`."
            )
        _check_ends(clamp, inputs, targets)
        activities, prediction = model.backward.feedforward(targets)
        hidden = jnp.flip(activities, axis=0)
        if clamp.free_input and inputs is None:
            inputs = prediction
        return Start(inputs, targets, States(hidden), False)
