"""Closed forms for linear networks: the equilibrium of inference and its energy
(docs/method.md, "Linear networks in closed form").

With $\\phi$ the identity, write $A_1 z_0 := a_1 W_1 x$, $A_l = \\tau I + a_l W_l$ for
$2 \\le l \\le H$ and $A_L = a_L W_L$. The energy (MSE output) is quadratic in the activities,

$$F(z) = \\sum_{l=1}^{H} \\tfrac12 \\lVert z_l - A_l z_{l-1} \\rVert^2
+ \\tfrac12 \\lVert y - A_L z_H \\rVert^2 = \\tfrac12 z^\\top H_z z - b^\\top z + \\text{const},$$

so inference converges to $z^* = H_z^{-1} b$ with $b = [a_1 W_1 x; 0; \\dots; 0; A_L^\\top y]$
and $H_z$ block tridiagonal: diagonal blocks $I + A_{l+1}^\\top A_{l+1}$ ($l < H$) and
$I + A_L^\\top A_L$ (l = H), off-diagonal blocks $(l + 1, l) = -A_{l+1}$.

Eliminating the activities instead leaves the equilibrium energy as a function of the
feedforward residual $r = y - \\hat y$ alone: $F^* = \\tfrac12 r^\\top S^{-1} r$ with
$S = I + \\sum_{l=1}^{H} J_l J_l^\\top$ and $J_l = \\partial \\hat y / \\partial z_l$ (C × N). When
$S \\approx I$ the equilibrium energy is the MSE loss, and PC's weight gradients are
backprop's; at μPC initialisation $S \\to I$ as $H / N \\to 0$.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._activation import activation_name
from .._custom_types import Activities, Inputs, PerExample, Targets
from .._network import ResNet


def _require_linear(network: ResNet, what: str) -> None:
    if activation_name(network.config.activation) != "linear":
        raise ValueError(
            f"`{what}` is a closed form for linear networks only, got activation "
            f"{network.config.activation!r}. Build the network with activation='linear'."
        )


def _layer_maps(network: ResNet) -> Float[Array, "hidden width width"]:
    """$A_l = \\tau I + a_l W_l$ for l = 2..H, shape (H - 1, N, N)."""
    width = network.config.width
    identity = jnp.eye(width, dtype=network.dtype)
    return network.skip * identity[None] + network.multipliers.hidden * network.hidden_weights


@eqx.filter_jit
def linear_activity_hessian(network: ResNet) -> Float[Array, "dim dim"]:
    """The activity Hessian $H_z$ of a linear network (the same for every example), built
    block by block from the closed form above; layers ordered as in `activity_hessian`.

    **Returns:** shape (H N, H N).

    **Raises:** `ValueError` if the activation is not linear.
    """
    _require_linear(network, "linear_activity_hessian")
    depth, width = network.config.depth, network.config.width
    identity = jnp.eye(width, dtype=network.dtype)
    maps = _layer_maps(network)
    readout = network.multipliers.output * network.output_weights
    # Diagonal blocks: I + A_{l+1}^T A_{l+1} for l < H, I + A_L^T A_L for l = H.
    gram = jnp.einsum("lmn,lmk->lnk", maps, maps)
    top = (readout.T @ readout)[None]
    diagonal = identity[None] + jnp.concatenate([gram, top], axis=0)
    blocks = jnp.zeros((depth, depth, width, width), network.dtype)
    index = jnp.arange(depth)
    blocks = blocks.at[index, index].set(diagonal)
    if depth > 1:
        lower = jnp.arange(1, depth)
        blocks = blocks.at[lower, lower - 1].set(-maps)
        blocks = blocks.at[lower - 1, lower].set(-jnp.swapaxes(maps, 1, 2))
    return blocks.transpose(0, 2, 1, 3).reshape(depth * width, depth * width)


@eqx.filter_jit
def equilibrium_activities(network: ResNet, inputs: Inputs, targets: Targets) -> Activities:
    """$z^* = H_z^{-1} b$: where inference on a linear network with MSE output converges.

    **Arguments:** `network` (linear), `inputs` (B, D), `targets` (B, C).

    **Returns:** the equilibrium activities, shape (H, B, N).

    **Raises:** `ValueError` if the activation is not linear.

    Solves the dense $HN \\times HN$ system: fine up to HN of a few thousand.
    """
    _require_linear(network, "equilibrium_activities")
    depth, width = network.config.depth, network.config.width
    batch = inputs.shape[0]
    hessian = linear_activity_hessian(network)
    readout = network.multipliers.output * network.output_weights
    b = jnp.zeros((depth, batch, width), network.dtype)
    b = b.at[0].add(network.first_prediction(inputs))
    b = b.at[-1].add(targets @ readout)
    rhs = b.transpose(0, 2, 1).reshape(depth * width, batch)
    solution = jnp.linalg.solve(hessian, rhs)
    return solution.reshape(depth, width, batch).transpose(0, 2, 1)


@eqx.filter_jit
def output_jacobians(network: ResNet, inputs: Inputs) -> Float[Array, "depth batch output width"]:
    """$J_l = \\partial \\hat y / \\partial z_l$ at the feedforward pass, l = 1..H.

    Backward recursion $J_H = a_L W_L \\operatorname{diag}\\phi'(z_H)$,
    $J_{l} = J_{l+1} (\\tau I + a_{l+1} W_{l+1} \\operatorname{diag}\\phi'(z_l))$, one `lax.scan`.
    For a linear network these do not depend on the inputs.

    **Returns:** shape (H, B, C, N).
    """
    activities, _ = network.feedforward(inputs)
    slopes = jax.jvp(network.activation, (activities,), (jnp.ones_like(activities),))[1]
    readout = network.multipliers.output * network.output_weights
    top = readout[None] * slopes[-1][:, None, :]  # (B, C, N)

    def step(jacobian, layer):
        weight, slope = layer
        branch = network.multipliers.hidden * jnp.einsum("bcm,mn->bcn", jacobian, weight)
        below = network.skip * jacobian + branch * slope[:, None, :]
        return below, below

    _, rest = jax.lax.scan(step, top, (network.hidden_weights, slopes[:-1]), reverse=True)
    return jnp.concatenate([rest, top[None]], axis=0)


@eqx.filter_jit
def output_covariance(network: ResNet, inputs: Inputs) -> Float[Array, "batch output output"]:
    """$S = I + \\sum_{l=1}^{H} J_l J_l^\\top$ for each example, shape (B, C, C)."""
    jacobians = output_jacobians(network, inputs)
    identity = jnp.eye(network.config.output_dim, dtype=network.dtype)
    return identity[None] + jnp.einsum("lbcn,lbdn->bcd", jacobians, jacobians)


class Equilibrium(NamedTuple):
    """The equilibrium energy against the loss, per example.

    **Fields:** `loss` ($\\tfrac12\\lVert r\\rVert^2$) and `energy`
    ($F^* = \\tfrac12 r^\\top S^{-1} r$), both shape (B,),
    and `covariance_eigenvalues`, the eigenvalues of S, shape (B, C).
    """

    loss: PerExample
    energy: PerExample
    covariance_eigenvalues: Float[Array, "batch output"]


@eqx.filter_jit
def equilibrium_energy(network: ResNet, inputs: Inputs, targets: Targets) -> Equilibrium:
    """The energy at the end of inference, $F^* = \\tfrac12 r^\\top S^{-1} r$, next to the
    feedforward MSE loss $\\tfrac12 \\lVert r \\rVert^2$, $r = y - \\hat y$.

    Exact for a linear network with MSE output. For other activations it is the equilibrium
    of the network linearised at the feedforward pass (a Gauss-Newton approximation).

    **Arguments:** `network`, `inputs` (B, D), `targets` (B, C).

    **Returns:** an `Equilibrium`.
    """
    residual = targets - network(inputs)
    covariance = output_covariance(network, inputs)
    solved = jnp.linalg.solve(covariance, residual[..., None])[..., 0]
    return Equilibrium(
        loss=0.5 * jnp.sum(residual**2, axis=-1),
        energy=0.5 * jnp.sum(residual * solved, axis=-1),
        covariance_eigenvalues=jnp.linalg.eigvalsh(covariance),
    )
