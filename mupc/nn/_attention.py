"""Layer norm and multi-head self-attention, for one example (a sequence of T tokens)."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._linear import Linear
from ._parameterised import Parameterised, Resolution, replace_fields, resolve_children


class LayerNorm(eqx.Module):
    """$x \\mapsto (x - \\bar x) / \\sqrt{\\operatorname{var}(x) + \\epsilon}$ over the last axis,
    without a learnable gain or bias. Layer norm absorbs any multiplier on its input
    ($\\operatorname{LN}(a x) = \\operatorname{LN}(x)$ for $\\epsilon \\to 0$), so multipliers go on
    branch outputs, not before a norm."""

    eps: float = eqx.field(static=True, default=1e-5)

    def __call__(self, x: Float[Array, "... dim"], *, key=None) -> Float[Array, "... dim"]:
        centred = x - jnp.mean(x, axis=-1, keepdims=True)
        variance = jnp.mean(centred**2, axis=-1, keepdims=True)
        return centred * jax.lax.rsqrt(variance + self.eps)


class MultiHeadAttention(Parameterised):
    """Multi-head self-attention of one sequence (T, d) → (T, d), without biases:

    $$\\operatorname{Attn}(x) = W_O \\big[\\operatorname{softmax}(s\\, Q_h K_h^\\top + M)
    V_h\\big]_{h=1..n_h}, \\quad Q = a W_Q x,\\ K = a W_K x,\\ V = a W_V x,$$

    with $a$ the dense layers' multipliers, the logit scale $s = 1/d_{\\text{head}}$ under μP
    ($1/\\sqrt{d_{\\text{head}}}$ under `sp`; set by the parameterisation) and M the causal mask
    ($-\\infty$ above the diagonal) when `causal`. Width grows by adding heads at a fixed
    $d_{\\text{head}}$ (the μP limit of attention).

    **Arguments:** `width` d, `heads` $n_h$ (dividing d), `causal`.
    """

    query: Linear
    key: Linear
    value: Linear
    output: Linear
    heads: int = eqx.field(static=True)
    causal: bool = eqx.field(static=True)
    scale: float | None = eqx.field(static=True)

    def __init__(self, width: int, heads: int, *, causal: bool):
        if not isinstance(heads, int) or heads < 1 or width % heads:
            raise ValueError(
                f"`heads` must be a positive integer dividing the width {width}, got {heads!r}."
            )
        self.query, self.key, self.value, self.output = (Linear(width, width) for _ in range(4))
        self.heads = heads
        self.causal = bool(causal)
        self.scale = None

    @property
    def head_dim(self) -> int:
        """$d_{\\text{head}} = d / n_h$."""
        return self.query.weight.shape[-1] // self.heads

    def resolve(self, resolution: Resolution, key: Any) -> "MultiHeadAttention":
        resolved = resolve_children(self, resolution, key)
        scale = resolution.parameterisation.attention_scale(self.head_dim)
        return replace_fields(resolved, scale=scale)

    def __call__(
        self, x: Float[Array, "tokens width"], *, key=None
    ) -> Float[Array, "tokens width"]:
        if self.scale is None:
            raise ValueError(
                "This MultiHeadAttention has no logit scale yet: build it into a network."
            )
        tokens = x.shape[0]

        def split(projected):
            return projected.reshape(tokens, self.heads, self.head_dim)

        query, key, value = split(self.query(x)), split(self.key(x)), split(self.value(x))
        logits = self.scale * jnp.einsum("thd,shd->hts", query, key)
        if self.causal:
            allowed = jnp.tril(jnp.ones((tokens, tokens), bool))
            logits = jnp.where(allowed, logits, -jnp.inf)
        weights = jax.nn.softmax(logits, axis=-1)
        mixed = jnp.einsum("hts,shd->thd", weights, value).reshape(tokens, -1)
        return self.output(mixed)


class MLP(eqx.Module):
    """The two-layer MLP of a transformer block, $x \\mapsto W_2\\, \\phi(W_1 x)$ (no
    biases), hidden width `hidden`."""

    up: Linear
    down: Linear
    activation: Any = eqx.field(static=True)

    def __init__(self, width: int, hidden: int, activation):
        self.up = Linear(width, hidden)
        self.down = Linear(hidden, width)
        self.activation = activation

    def __call__(self, x: Float[Array, "... width"], *, key=None) -> Float[Array, "... width"]:
        return self.down(self.activation(self.up(x)))
