"""The predictive coding energy (docs/method.md, "Network and energy"), computed so that the
method's zeros are exact.

For one example, with $z_0 = x$ and $z_L = y$ clamped,

$$F(z; W) = \\sum_{l=1}^{H} \\tfrac12 \\lVert \\varepsilon_l \\rVert^2 + \\ell(\\hat y(z_H), y),
\\qquad \\varepsilon_l = z_l - \\mu_l(z_{l-1}),$$

where $\\mu_l$ is the layer's prediction (e.g. $\\tau z_{l-1} + a_l W_l \\phi(z_{l-1})$) and
$\\ell$ the output loss.

**Exact errors.** Each error is computed from the *changes* of the activities relative to the
feedforward pass $\\bar z$ of the same input, whose errors are zero by definition:

$$\\varepsilon_l = \\Delta z_l - \\mu_l^{\\text{lin}}(\\Delta z_{l-1}, \\Delta\\phi_{l-1}),
\\qquad \\Delta z = z - \\bar z,\\ \\Delta\\phi = \\phi(z) - \\phi(\\bar z),$$

which equals $z_l - \\mu_l(z_{l-1})$ in exact arithmetic because the prediction is linear in
$(z_{l-1}, \\phi(z_{l-1}))$ and $\\bar z_l = \\mu_l(\\bar z_{l-1})$. In floating point, a layer
whose activity and input have not moved has $\\Delta = 0$ bit for bit, hence an error of exactly
0 and a weight gradient of exactly 0, whatever operations computed the feedforward pass. (Computing
$z_l - \\mu_l(z_{l-1})$ directly leaves rounding-level errors, whose weight gradients are pure
noise that Adam would turn into real updates.)

Activities are pytrees whose leaves have the layout (layers, batch, ...); every function here
is batched and vectorised over layers (no Python loop over layers).
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._custom_types import Inputs, PerExample, Targets
from ._loss import Loss

if TYPE_CHECKING:  # the network interface calls into this module, not the other way round
    from ._network.base import PCNetwork

Activities = Any
"""A pytree of (layers, batch, ...) arrays (see `mupc._network.base`)."""


def per_example_sum(tree: Activities) -> Array:
    """$\\sum$ over every axis but the batch axis (axis 1) of every leaf: shape (B,)."""
    sums = [jnp.sum(leaf, axis=(0, *range(2, leaf.ndim))) for leaf in jax.tree.leaves(tree)]
    return functools.reduce(operator.add, sums)


def errors_from_changes(
    network: PCNetwork,
    activities: Activities,
    reference: Activities,
    reference_features: Activities,
    start: int = 0,
) -> Activities:
    """The prediction errors $\\varepsilon_l$ of layers $s + 1..H$ (s = `start`), computed from
    the changes relative to the feedforward pass (module docstring).

    **Arguments:**

    - `network`: the network.
    - `activities`: $z$ of layers s + 1..H (all layers when s = 0).
    - `reference`: $\\bar z$, the feedforward activities of the same layers.
    - `reference_features`: $\\phi(\\bar z)$ of the same layers.
    - `start`: s; s > 0 needs `network.supports_layer_slicing` and means $z_s = \\bar z_s$.

    **Returns:** the errors, a pytree like `activities`.
    """
    change = jax.tree.map(jnp.subtract, activities, reference)
    feature_change = network.feature_change(activities, reference, reference_features)
    predicted = network.predict(change, feature_change, None, start)
    return jax.tree.map(jnp.subtract, change, predicted)


def prediction_errors(
    network: PCNetwork,
    activities: Activities,
    inputs: Inputs,
    reference: Activities | None = None,
) -> Activities:
    """The prediction errors $\\varepsilon_l = z_l - \\mu_l(z_{l-1})$ of every layer, exactly zero
    where neither $z_l$ nor $z_{l-1}$ differs from the feedforward pass.

    **Arguments:**

    - `network`: the network.
    - `activities`: $z$, a pytree of (layers, B, ...) arrays.
    - `inputs`: the clamped inputs x of the batch.
    - `reference`: the feedforward activities of `inputs` (computed when None).

    **Returns:** a pytree like `activities`.
    """
    if reference is None:
        reference = network.feedforward(inputs)[0]
    return errors_from_changes(network, activities, reference, network.features(reference))


def energy_from_errors(
    network: PCNetwork, activities: Activities, errors: Activities, targets: Targets, loss: Loss
) -> PerExample:
    """$\\sum_l \\tfrac12\\lVert\\varepsilon_l\\rVert^2 + \\ell(\\hat y(z_H), y)$ per example,
    shape (B,)."""
    hidden = 0.5 * per_example_sum(jax.tree.map(jnp.square, errors))
    return hidden + loss(network.readout(activities), targets)


def energy(
    network: PCNetwork,
    activities: Activities,
    inputs: Inputs,
    targets: Targets,
    loss: Loss,
    reference: Activities | None = None,
) -> PerExample:
    """The total energy $F$ of each example, shape (B,) (arguments as in
    `prediction_errors`; `loss` is the output term, e.g. `mupc.MSE()`)."""
    errors = prediction_errors(network, activities, inputs, reference)
    return energy_from_errors(network, activities, errors, targets, loss)


def _per_layer(leaf: Array) -> Array:
    return 0.5 * jnp.sum(leaf**2, axis=tuple(range(2, leaf.ndim)))


def layer_energies(
    network: PCNetwork,
    activities: Activities,
    inputs: Inputs,
    targets: Targets,
    loss: Loss,
    reference: Activities | None = None,
) -> Float[Array, "layers_plus_one batch"]:
    """Per-layer energies $\\tfrac12\\lVert\\varepsilon_l\\rVert^2$, l = 1..H (in the order of the
    activities' leaves), then the output loss: shape (H + 1, B)."""
    errors = prediction_errors(network, activities, inputs, reference)
    return errors_to_layer_energies(network, activities, errors, targets, loss)


def errors_to_layer_energies(network, activities, errors, targets, loss):
    """`layer_energies` from already computed errors."""
    hidden = [_per_layer(leaf) for leaf in jax.tree.leaves(errors)]
    output = loss(network.readout(activities), targets)
    return jnp.concatenate([*hidden, output[None]], axis=0)


def local_weight_gradients(
    network: PCNetwork,
    activities: Activities,
    errors: Activities,
    inputs: Inputs,
    targets: Targets,
    loss: Loss,
) -> tuple[Array, PCNetwork]:
    """The PC weight gradient $\\partial \\bar F / \\partial W$ of the batch-mean energy at the
    given activities, and $\\bar F$ itself.

    Since $\\partial \\varepsilon_l / \\partial W_l = -\\partial \\mu_l / \\partial W_l$, the
    gradient is that of the surrogate $\\sum_l \\langle \\operatorname{sg}(\\varepsilon_l),
    -\\mu_l(z_{l-1}; W) \\rangle + \\ell(\\hat y(z_H; W), y)$ (sg: stop-gradient), which uses
    the exact errors: a layer with $\\varepsilon_l = 0$ gets a gradient of exactly 0. It is local:
    layer l's gradient needs only $\\varepsilon_l$ and $z_{l-1}$.

    **Arguments:** the network, the (final) `activities` and their `errors`, the batch and
    the output `loss`.

    **Returns:** `(mean_energy, gradients)`, the gradients a pytree like the network (None
    for non-array fields).
    """
    activities = jax.lax.stop_gradient(activities)
    errors = jax.lax.stop_gradient(errors)
    params, static = eqx.partition(network, eqx.is_inexact_array)

    def surrogate(params):
        net = eqx.combine(params, static)
        # The features may depend on the weights (`mupc.LayerStack`); φ(z) does not.
        predicted = net.predict(activities, net.features(activities), inputs)
        coupling = per_example_sum(jax.tree.map(lambda e, p: -e * p, errors, predicted))
        output = loss(net.readout(activities), targets)
        return jnp.mean(coupling + output), output

    grads, output = jax.grad(surrogate, has_aux=True)(params)
    hidden = 0.5 * per_example_sum(jax.tree.map(jnp.square, errors))
    return jnp.mean(hidden + output), grads
