"""Optax optimisers by name, for the command line and configuration files."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
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


def freeze_layers(network, trainable_top: int) -> optax.GradientTransformation:
    """A transformation that zeroes the gradient of every weight layer but the readout and
    the top `trainable_top` hidden layers of a `mupc.ResNet`: chained before the optimiser,
    `optax.chain(freeze_layers(network, k), optax.adam(lr))`, the frozen layers keep their
    initial weights exactly (the "top layers only" control of docs/method.md, "The learning
    signal").

    **Arguments:** `network` (its shape defines the mask) and `trainable_top` = k, the number
    of hidden layers whose weights train: $W_{H-k+1}, \\dots, W_H$ (0 ≤ k ≤ H; $W_1$, the input
    layer's weights, belong to hidden layer 1).

    **Raises:** `ValueError` for a network other than `ResNet` or k out of range.
    """

    from ._network.resnet import ResNet

    if not isinstance(network, ResNet):
        raise ValueError(f"`freeze_layers` needs a mupc.ResNet, got {type(network).__name__}.")
    depth = network.config.depth
    if (
        isinstance(trainable_top, bool)
        or not isinstance(trainable_top, int)
        or not (0 <= trainable_top <= depth)
    ):
        raise ValueError(
            f"`trainable_top` must be an integer in [0, H = {depth}], got {trainable_top!r}."
        )
    return freeze_bottom_layers(depth, trainable_top)


def freeze_bottom_layers(depth: int, trainable_top: int) -> optax.GradientTransformation:
    """`freeze_layers` for a residual MLP with H = `depth` hidden layers (checked by the
    caller)."""
    import equinox as eqx

    first = depth - trainable_top  # 0-based index of the first trainable layer
    input_trains = first == 0
    hidden_trains = (jnp.arange(1, depth) >= first)[:, None, None]  # row i: layer i + 1

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        def mask(tree):
            return (
                jnp.where(input_trains, tree.input_weights, 0.0).astype(tree.input_weights.dtype),
                jnp.where(hidden_trains, tree.hidden_weights, 0.0).astype(
                    tree.hidden_weights.dtype
                ),
            )

        fields = lambda tree: (tree.input_weights, tree.hidden_weights)
        return eqx.tree_at(fields, updates, mask(updates)), state

    return optax.GradientTransformation(init, update)
