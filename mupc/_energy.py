"""The predictive coding energy (spec §3).

For one example, with $z_0 = x$ and $z_L = y$ clamped,

$$F(z; W) = \\sum_{l=1}^{H} \\tfrac12 \\lVert \\varepsilon_l \\rVert^2 + \\ell(\\hat y(z_H), y),
\\qquad \\varepsilon_l = z_l - \\tau_l z_{l-1} - a_l W_l \\phi(z_{l-1}),$$

where $\\ell$ is the output loss ($\\tfrac12\\lVert y - a_L W_L \\phi(z_H)\\rVert^2$ for MSE).
Hidden activities are stacked as an array of shape (H, B, N); every function here is batched
and vectorised over layers (no Python loop over layers).
"""

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._custom_types import Activities, Inputs, PerExample, Targets
from ._loss import Loss
from ._network import ResNet


def hidden_errors(
    network: ResNet,
    activities: Float[Array, "layers batch width"],
    below: Float[Array, "batch _"],
    start: int = 0,
) -> Float[Array, "layers batch width"]:
    """Errors $\\varepsilon_{s+1}, \\dots, \\varepsilon_H$ of the top layers.

    **Arguments:**

    - `network`: the network.
    - `activities`: $z_{s+1}, \\dots, z_H$, shape (H - s, B, N).
    - `below`: the clamped activity under them: the inputs x (B, D) when `start` s = 0,
      else $z_s$ (B, N).
    - `start`: s, a static integer in [0, H).

    **Returns:** the errors, shape (H - s, B, N).
    """
    if start == 0:
        first = activities[:1] - network.first_prediction(below)[None]
        rest = activities[1:] - network.hidden_predictions(activities[:-1])
        return jnp.concatenate([first, rest], axis=0)
    previous = jnp.concatenate([below[None], activities[:-1]], axis=0)
    weights = network.hidden_weights[start - 1 :]
    return activities - network.hidden_predictions(previous, weights)


def energy_from(
    network: ResNet,
    activities: Float[Array, "layers batch width"],
    below: Float[Array, "batch _"],
    targets: Targets,
    loss: Loss,
    start: int = 0,
) -> PerExample:
    """Per-example energy of layers s + 1 .. L (arguments as in `hidden_errors`).

    With the layers below s at their feedforward values their errors are zero, so this
    equals the total energy; the inference solver uses it to skip inactive layers.
    """
    errors = hidden_errors(network, activities, below, start)
    hidden = 0.5 * jnp.sum(errors**2, axis=(0, 2))
    return hidden + loss(network.readout(activities[-1]), targets)


def energy(
    network: ResNet, activities: Activities, inputs: Inputs, targets: Targets, loss: Loss
) -> PerExample:
    """The total energy $F$ of each example, shape (B,)."""
    return energy_from(network, activities, inputs, targets, loss)


def layer_energies(
    network: ResNet, activities: Activities, inputs: Inputs, targets: Targets, loss: Loss
) -> Float[Array, "layers_plus_one batch"]:
    """Per-layer energies $\\tfrac12\\lVert\\varepsilon_l\\rVert^2$, l = 1..H, then the output
    loss: shape (H + 1, B)."""
    errors = hidden_errors(network, activities, inputs)
    hidden = 0.5 * jnp.sum(errors**2, axis=2)
    output = loss(network.readout(activities[-1]), targets)
    return jnp.concatenate([hidden, output[None]], axis=0)
