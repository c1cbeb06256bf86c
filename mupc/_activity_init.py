"""How the hidden activities are initialised before inference."""

import abc

import equinox as eqx
import jax

from ._custom_types import Activities, Inputs, PRNGKeyArray
from ._network import ResNet


class ActivityInit(eqx.Module):
    """Produces the initial hidden activities (H, B, N) for a batch of inputs."""

    @abc.abstractmethod
    def __call__(self, network: ResNet, inputs: Inputs, key: PRNGKeyArray) -> Activities:
        """The initial activities."""


class FeedforwardInit(ActivityInit):
    """$z_l$ = the feedforward pass, so every hidden error starts at zero (the default)."""

    def __call__(self, network, inputs, key):
        return network.feedforward(inputs)[0]


class NormalInit(ActivityInit):
    """$z_l \\sim \\mathcal{N}(0, \\sigma^2)$ independently, with $\\sigma$ = `std`."""

    std: float = 1.0

    def __call__(self, network, inputs, key):
        shape = (network.config.depth, inputs.shape[0], network.config.width)
        return self.std * jax.random.normal(key, shape, network.dtype)
