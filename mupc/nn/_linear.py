"""Dense layers and lookup tables whose multipliers come from the parameterisation."""

from typing import Any, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._network.base import LayerSpec
from ._parameterised import Parameterised, Resolution, draw, replace_fields

DenseKind = Literal["input", "hidden", "readout"]


def _unresolved(name: str) -> ValueError:
    return ValueError(
        f"This mupc.nn.{name} has no multiplier yet: build it into a network (mupc.LayerStack "
        "or mupc.Transformer), which draws its weights and sets its multiplier from the "
        "network's parameterisation."
    )


class Linear(Parameterised):
    """A dense layer without bias, $x \\mapsto a\\, W x$, with the multiplier $a$ of its
    `kind` and fan-in under the network's parameterisation (μPC: $g/\\sqrt{\\text{fan\\_in}}$
    for `"input"` and `"hidden"`, $1/\\text{fan\\_in}$ for `"readout"`).

    **Arguments:**

    - `in_features`, `out_features`: the fan-in and the number of outputs.
    - `kind`: `"input"` (a layer fed the clamped input), `"hidden"` (default) or `"readout"`.
    - `gain`: the gain g of the activation feeding it (1 by default; the parameterisation's
      multiplier is multiplied by it).

    The weights (shape (out, in)) and the multiplier are set by the network the layer is
    built into (`mupc.nn.resolve`); calling an unresolved layer raises. Acts on one example
    (..., in) → (..., out).
    """

    weight: Float[Array, "out in"]
    kind: DenseKind = eqx.field(static=True)
    gain: float = eqx.field(static=True)
    multiplier: float | None = eqx.field(static=True)

    def __init__(
        self, in_features: int, out_features: int, *, kind: DenseKind = "hidden", gain=1.0
    ):
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if kind not in ("input", "hidden", "readout"):
            raise ValueError(f"`kind` must be 'input', 'hidden' or 'readout', got {kind!r}.")
        if not (0 < gain < float("inf")):
            raise ValueError(f"`gain` must be finite and > 0, got {gain!r}.")
        self.weight = jnp.zeros((out_features, in_features))
        self.kind = kind
        self.gain = float(gain)
        self.multiplier = None

    @property
    def spec(self) -> LayerSpec:
        """The `LayerSpec` the parameterisation reads: kind, fan-in (the last weight axis),
        gain."""
        return LayerSpec(self.kind, self.weight.shape[-1], self.gain)

    def resolve(self, resolution: Resolution, key: Any) -> "Linear":
        weight = draw(resolution, key, self.weight.shape, self.spec)
        multiplier = resolution.parameterisation.multiplier(self.spec)
        return replace_fields(self, weight=weight, multiplier=multiplier)

    def __call__(self, x: Float[Array, "... in"], *, key=None) -> Float[Array, "... out"]:
        if self.multiplier is None:
            raise _unresolved("Linear")
        return self.multiplier * (x @ self.weight.T)


class Embedding(Parameterised):
    """A lookup table $i \\mapsto a\\, E_i$ (tokens, positions), multiplier 1 and
    $\\mathcal N(0, 1)$ entries under every parameterisation (a one-hot input times
    $1/\\sqrt{V}$ would collapse it).

    **Arguments:** `num_embeddings` (rows) and `dim` (columns). Acts on integer indices of any
    shape (float indices are truncated to integers).
    """

    weight: Float[Array, "rows dim"]
    multiplier: float | None = eqx.field(static=True)

    def __init__(self, num_embeddings: int, dim: int):
        for name, value in (("num_embeddings", num_embeddings), ("dim", dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        self.weight = jnp.zeros((num_embeddings, dim))
        self.multiplier = None

    @property
    def spec(self) -> LayerSpec:
        return LayerSpec("embedding", 1)

    def resolve(self, resolution: Resolution, key: Any) -> "Embedding":
        weight = draw(resolution, key, self.weight.shape, self.spec)
        multiplier = resolution.parameterisation.multiplier(self.spec)
        return replace_fields(self, weight=weight, multiplier=multiplier)

    def __call__(self, indices: Int[Array, "..."], *, key=None) -> Float[Array, "... dim"]:
        if self.multiplier is None:
            raise _unresolved("Embedding")
        return self.multiplier * jnp.take(self.weight, jnp.asarray(indices).astype(jnp.int32), 0)
