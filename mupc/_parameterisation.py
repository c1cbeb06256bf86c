"""Parameterisations: every layer's constant multiplier and initial weights, from its kind and
fan-in (docs/method.md, "Parameterisations", for the residual MLP and the conv ResNet).

A parameterisation is one piece of data, computed in one place: `multiplier(layer)` gives
$a_l$ and `init_weight(key, shape, layer, dtype)` draws $W_l$, both from the layer's
`LayerSpec` (kind, fan-in, gain, residual branches). The forward pass, the energy and the
initialiser all read these; nothing else computes a multiplier.

- `sp`: every multiplier 1; weights $U(\\pm 1/\\sqrt{\\text{fan\\_in}})$ (embedding
  tables $\\mathcal N(0, 1)$); attention logits over $\\sqrt{d_{\\text{head}}}$.
- `mupc`: $g/\\sqrt{\\text{fan\\_in}}$ on input and hidden layers,
  $g/\\sqrt{\\text{fan\\_in}\\cdot\\text{branches}}$ on residual branches and
  $1/\\text{fan\\_in}$ on the readout; 1 on embedding tables (a lookup); weights
  $\\mathcal N(0, 1)$; attention logits over $d_{\\text{head}}$ (μP).
- `ntp`: as `mupc` but $1/\\sqrt{\\text{fan\\_in}}$ on the readout.

Networks built from layers (`mupc.LayerStack`, `mupc.Transformer`) apply the depth factor
$1/\\sqrt{\\text{branches}}$ (`branch_multiplier`) to each residual branch's output and
$g/\\sqrt{\\text{fan\\_in}}$ to every dense layer inside it, whose product is the
`residual` multiplier above.

For the MLP g = 1, fan-ins D and N, and branches L = H + 1 (with skips), which gives the method
page's $a_1 = 1/\\sqrt D$, $a_l = 1/\\sqrt{N L}$, $a_L = 1/N$ (μPC).
"""

import abc
import math
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._network.base import LayerSpec


class Multipliers(NamedTuple):
    """The residual MLP's multipliers: $a_1$ (input layer), $a_l$ for $2 \\le l \\le H$
    (hidden layers) and $a_L$ (readout)."""

    input: float
    hidden: float
    output: float


class Parameterisation(eqx.Module):
    """How a network's multipliers and initial weights depend on each layer's shape.

    Subclasses set `name` (used in checkpoints and on the command line) and implement
    `multiplier` and `init_weight`.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def multiplier(self, layer: LayerSpec) -> float:
        """The constant multiplier $a_l$ of a layer."""

    @abc.abstractmethod
    def init_weight(
        self, key: PRNGKeyArray, shape: tuple[int, ...], layer: LayerSpec, dtype: jnp.dtype
    ) -> Float[Array, "..."]:
        """Draw the weights of a layer (or of a stack of identical layers) of `shape`."""

    @abc.abstractmethod
    def branch_multiplier(self, branches: int) -> float:
        """The depth factor of one residual branch among `branches`: $1/\\sqrt{\\text{branches}}$
        under Depth-μP, 1 under `sp`."""

    @abc.abstractmethod
    def attention_scale(self, head_dim: int) -> float:
        """The factor on attention logits $q \\cdot k$: $1/d_{\\text{head}}$ under μP,
        $1/\\sqrt{d_{\\text{head}}}$ under `sp`."""


class StandardPC(Parameterisation):
    """Standard PC (`sp`): all multipliers 1, weights $\\sim U(\\pm 1/\\sqrt{\\text{fan\\_in}})$."""

    name: ClassVar[str] = "sp"

    def multiplier(self, layer):
        return 1.0

    def init_weight(self, key, shape, layer, dtype):
        if layer.kind == "embedding":
            return jax.random.normal(key, shape, dtype)
        bound = 1.0 / math.sqrt(layer.fan_in)
        return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

    def branch_multiplier(self, branches):
        return 1.0

    def attention_scale(self, head_dim):
        return 1.0 / math.sqrt(head_dim)


class MuPC(Parameterisation):
    """μPC (`mupc`, Depth-μP): $g/\\sqrt{\\text{fan\\_in}}$ on input and hidden layers, an extra
    $1/\\sqrt{\\text{branches}}$ on residual branches, $1/\\text{fan\\_in}$ on the readout;
    weights $\\sim \\mathcal{N}(0, 1)$."""

    name: ClassVar[str] = "mupc"

    def _readout(self, fan_in: int) -> float:
        return 1.0 / fan_in

    def multiplier(self, layer):
        match layer.kind:
            case "input" | "hidden":
                return layer.gain / math.sqrt(layer.fan_in)
            case "residual":
                return layer.gain / math.sqrt(layer.fan_in * layer.branches)
            case "readout":
                return self._readout(layer.fan_in)
            case "embedding":
                return 1.0
            case _:
                raise ValueError(f"Unknown layer kind {layer.kind!r}.")

    def init_weight(self, key, shape, layer, dtype):
        return jax.random.normal(key, shape, dtype)

    def branch_multiplier(self, branches):
        return 1.0 / math.sqrt(branches)

    def attention_scale(self, head_dim):
        return 1.0 / head_dim


class NeuralTangent(MuPC):
    """Neural-tangent parameterisation (`ntp`): as μPC but with readout
    $1/\\sqrt{\\text{fan\\_in}}$."""

    name: ClassVar[str] = "ntp"

    def _readout(self, fan_in: int) -> float:
        return 1.0 / math.sqrt(fan_in)


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
