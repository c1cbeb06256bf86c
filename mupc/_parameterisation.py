"""Parameterisations: the per-layer multipliers and initialisation of the network (spec §2).

A parameterisation is one piece of data, computed in one place: `multipliers(...)` gives
$a_1, a_l, a_L$ as a function of (D, N, H, C, skips) and `init_weight(...)` draws a weight
matrix. The forward pass, the energy and the initialiser all read these; nothing else
computes a multiplier.
"""

import abc
import math
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class Multipliers(NamedTuple):
    """The constant multipliers $a_1$ (input layer), $a_l$ for $2 \\le l \\le H$ (hidden
    layers) and $a_L$ (readout)."""

    input: float
    hidden: float
    output: float


class Parameterisation(eqx.Module):
    """How a network's multipliers and initial weights depend on its shape.

    Subclasses set `name` (used in checkpoints and on the command line) and implement
    `multipliers` and `init_weight`.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def multipliers(
        self, input_dim: int, width: int, depth: int, output_dim: int, skips: bool
    ) -> Multipliers:
        """The multipliers for D = `input_dim`, N = `width`, H = `depth`, C = `output_dim`."""

    @abc.abstractmethod
    def init_weight(
        self, key: PRNGKeyArray, shape: tuple[int, ...], dtype: jnp.dtype
    ) -> Float[Array, "..."]:
        """Draw a weight array of `shape`, whose last axis is the fan-in."""


class StandardPC(Parameterisation):
    """Standard PC (`sp`): all multipliers 1, weights $\\sim U(\\pm 1/\\sqrt{\\text{fan\\_in}})$."""

    name: ClassVar[str] = "sp"

    def multipliers(self, input_dim, width, depth, output_dim, skips):
        return Multipliers(1.0, 1.0, 1.0)

    def init_weight(self, key, shape, dtype):
        bound = 1.0 / math.sqrt(shape[-1])
        return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)


class MuPC(Parameterisation):
    """μPC (`mupc`, Depth-μP): $a_1 = 1/\\sqrt{D}$, $a_l = 1/\\sqrt{N L}$ with skips
    ($1/\\sqrt{N}$ without), $a_L = 1/N$; weights $\\sim \\mathcal{N}(0, 1)$, $L = H + 1$."""

    name: ClassVar[str] = "mupc"

    def _readout(self, width: int) -> float:
        return 1.0 / width

    def multipliers(self, input_dim, width, depth, output_dim, skips):
        num_weight_layers = depth + 1
        hidden = 1.0 / math.sqrt(width * num_weight_layers) if skips else 1.0 / math.sqrt(width)
        return Multipliers(1.0 / math.sqrt(input_dim), hidden, self._readout(width))

    def init_weight(self, key, shape, dtype):
        return jax.random.normal(key, shape, dtype)


class NeuralTangent(MuPC):
    """Neural-tangent parameterisation (`ntp`): as μPC but with readout $a_L = 1/\\sqrt{N}$."""

    name: ClassVar[str] = "ntp"

    def _readout(self, width: int) -> float:
        return 1.0 / math.sqrt(width)


PARAMETERISATIONS: dict[str, type[Parameterisation]] = {
    cls.name: cls for cls in (StandardPC, MuPC, NeuralTangent)
}


def resolve_parameterisation(parameterisation: str | Parameterisation) -> Parameterisation:
    """Return the parameterisation named `parameterisation` (or `parameterisation` itself).

    **Raises:** `ValueError` for an unknown name.
    """
    if isinstance(parameterisation, Parameterisation):
        return parameterisation
    if isinstance(parameterisation, str) and parameterisation in PARAMETERISATIONS:
        return PARAMETERISATIONS[parameterisation]()
    raise ValueError(
        f"Unknown parameterisation {parameterisation!r}: expected one of "
        f"{sorted(PARAMETERISATIONS)} or a `mupc.Parameterisation` instance."
    )
