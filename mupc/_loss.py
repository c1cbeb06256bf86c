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


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (MSE, CrossEntropy)}


def resolve_loss(loss: str | Loss) -> Loss:
    """Return the loss named `loss` (`"mse"` or `"cross-entropy"`), or `loss` itself.

    **Raises:** `ValueError` for an unknown name.
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ValueError(
        f"Unknown loss {loss!r}: expected one of {sorted(LOSSES)} or a `mupc.Loss` instance."
    )
