"""How the activities are initialised before inference."""

import abc

import equinox as eqx
import jax

from ._custom_types import Inputs, PRNGKeyArray
from ._network.base import Activities, PCNetwork


class ActivityInit(eqx.Module):
    """Produces the initial activities (a pytree like the network's) for a batch of inputs."""

    @abc.abstractmethod
    def __call__(self, network: PCNetwork, inputs: Inputs, key: PRNGKeyArray) -> Activities:
        """The initial activities."""


class FeedforwardInit(ActivityInit):
    """$z_l$ = the feedforward pass, so every hidden error starts at exactly zero (the
    default)."""

    def __call__(self, network, inputs, key):
        return network.feedforward(inputs)[0]


class NormalInit(ActivityInit):
    """$z_l \\sim \\mathcal{N}(0, \\sigma^2)$ independently, with $\\sigma$ = `std`."""

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
