"""Output losses: the energy of the readout layer (docs/method.md, "Network and energy")."""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._custom_types import Outputs, PerExample, Targets


class Loss(eqx.Module):
    """The output term of the energy, per example."""

    name: ClassVar[str]

    @abc.abstractmethod
    def __call__(self, outputs: Outputs, targets: Targets) -> PerExample:
        """The loss of each example, shape (B,)."""


def _per_example(values):
    """Sum over every axis but the first (the batch): (B, C) and (B, T, C) alike."""
    return jnp.sum(values, axis=tuple(range(1, values.ndim)))


class MSE(Loss):
    """$\\tfrac12 \\lVert y - \\hat y \\rVert^2$ per example (summed over outputs, and over
    positions for sequence outputs (B, T, C))."""

    name: ClassVar[str] = "mse"

    def __call__(self, outputs, targets):
        return 0.5 * _per_example((targets - outputs) ** 2)


class CrossEntropy(Loss):
    """$-\\sum_k y_k \\log \\operatorname{softmax}(\\hat y)_k$ per example, computed with a
    stable log-softmax over the last axis; `outputs` are logits (summed over positions for
    sequence outputs (B, T, C))."""

    name: ClassVar[str] = "cross-entropy"

    def __call__(self, outputs, targets):
        return -_per_example(targets * jax.nn.log_softmax(outputs, axis=-1))


class Bernoulli(Loss):
    """The Bernoulli output energy for binary (or [0, 1]) targets, with logits $\\hat y$:

    $$-\\sum_k \\big[y_k \\log \\sigma(\\hat y_k) + (1 - y_k) \\log(1 - \\sigma(\\hat y_k))\\big]
    = \\sum_k \\big[\\operatorname{softplus}(\\hat y_k) - y_k \\hat y_k\\big]$$

    per example (summed over every non-batch axis), computed in the stable softplus form; the
    probability of pixel k is $\\sigma(\\hat y_k)$. Its gradient in the logits is
    $\\sigma(\\hat y) - y$."""

    name: ClassVar[str] = "bernoulli"

    def __call__(self, outputs, targets):
        return _per_example(jax.nn.softplus(outputs) - targets * outputs)


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (MSE, CrossEntropy, Bernoulli)}


def resolve_loss(loss: str | Loss) -> Loss:
    """Return the loss named `loss` (`"mse"`, `"cross-entropy"` or `"bernoulli"`), or `loss`
    itself.

    **Raises:** `ValueError` for an unknown name.
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(
        f"Unknown loss {loss!r}: expected one of {sorted(LOSSES)} or a `mupc.Loss` instance."
    )
