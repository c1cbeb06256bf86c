"""Transformer pieces for one example: embeddings, pre-LN residual branches, readouts.

The residual stream is $z$ (tokens, width); a PC network built from these (`mupc.LayerStack`,
`mupc.Transformer`) makes each branch's output a residual PC layer,
$\\mu = z + b\\, \\text{branch}(z)$ with the depth factor b of the parameterisation.
"""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ._attention import MLP, LayerNorm, MultiHeadAttention
from ._linear import Embedding, Linear
from ._parameterised import Parameterised, Resolution, replace_fields, resolve_children


class TokenEmbedding(eqx.Module):
    """Token ids (T,) → $E_{x_t} + P_t$ (T, d): a token table and a position table, each a
    lookup with multiplier 1 (`mupc.nn.Embedding`)."""

    tokens: Embedding
    positions: Embedding

    def __init__(self, vocab_size: int, context: int, width: int):
        self.tokens = Embedding(vocab_size, width)
        self.positions = Embedding(context, width)

    def __call__(self, ids: Int[Array, " tokens"], *, key=None) -> Float[Array, "tokens width"]:
        return self.tokens(ids) + self.positions(jnp.arange(ids.shape[0]))


def patchify(image: Float[Array, "height width channels"], patch: int) -> Array:
    """(h, w, c) → (h/p · w/p, p · p · c): non-overlapping p × p patches in row-major order,
    each flattened as (row, column, channel)."""
    height, width, channels = image.shape
    rows, cols = height // patch, width // patch
    cut = image[: rows * patch, : cols * patch]
    blocks = cut.reshape(rows, patch, cols, patch, channels).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(rows * cols, patch * patch * channels)


class PatchEmbedding(eqx.Module):
    """An image (h, w, c) → $a_1 W_P\\, \\text{patch}_t + P_t$ (T, d) with T = (h/p)(w/p)
    patches: a dense `"input"` layer on each flattened p × p patch (multiplier
    $1/\\sqrt{p^2 c}$ under μPC) plus a position table."""

    projection: Linear
    positions: Embedding
    patch: int = eqx.field(static=True)

    def __init__(self, image_shape: tuple[int, int, int], patch: int, width: int):
        height, image_width, channels = image_shape
        if patch < 1 or height % patch or image_width % patch:
            raise ValueError(
                f"`patch` must divide the image's height and width {height}×{image_width}, "
                f"got {patch!r}."
            )
        self.projection = Linear(patch * patch * channels, width, kind="input")
        self.positions = Embedding((height // patch) * (image_width // patch), width)
        self.patch = patch

    def __call__(self, image: Float[Array, "height width channels"], *, key=None) -> Array:
        patches = patchify(image, self.patch)
        return self.projection(patches) + self.positions(jnp.arange(patches.shape[0]))


class AttentionBranch(eqx.Module):
    """$z \\mapsto \\operatorname{Attn}(\\operatorname{LN}(z))$: the attention sub-layer's
    residual branch (pre-LN)."""

    norm: LayerNorm
    attention: MultiHeadAttention

    def __init__(self, width: int, heads: int, *, causal: bool):
        self.norm = LayerNorm()
        self.attention = MultiHeadAttention(width, heads, causal=causal)

    def __call__(
        self, z: Float[Array, "tokens width"], *, key=None
    ) -> Float[Array, "tokens width"]:
        return self.attention(self.norm(z))


class MLPBranch(eqx.Module):
    """$z \\mapsto \\operatorname{MLP}(\\operatorname{LN}(z))$: the MLP sub-layer's residual
    branch (pre-LN)."""

    norm: LayerNorm
    mlp: MLP

    def __init__(self, width: int, hidden: int, activation):
        self.norm = LayerNorm()
        self.mlp = MLP(width, hidden, activation)

    def __call__(self, z: Float[Array, "... width"], *, key=None) -> Float[Array, "... width"]:
        return self.mlp(self.norm(z))


class BlockBranch(Parameterised):
    """A whole pre-LN transformer block as one residual branch (one PC activity per block):
    with $h = z + b\\,A(z)$, $A$ the attention branch and $M$ the MLP branch,

    $$\\text{branch}(z) = A(z) + M(h), \\qquad z + b\\,\\text{branch}(z) = h + b\\,M(h),$$

    b the depth factor (set from the parameterisation when the network is built)."""

    attention: AttentionBranch
    mlp: MLPBranch
    branch_multiplier: float | None = eqx.field(static=True)

    def __init__(self, width: int, heads: int, hidden: int, activation, *, causal: bool):
        self.attention = AttentionBranch(width, heads, causal=causal)
        self.mlp = MLPBranch(width, hidden, activation)
        self.branch_multiplier = None

    def resolve(self, resolution: Resolution, key: Any) -> "BlockBranch":
        resolved = resolve_children(self, resolution, key)
        b = resolution.parameterisation.branch_multiplier(resolution.branches)
        return replace_fields(resolved, branch_multiplier=b)

    def __call__(
        self, z: Float[Array, "tokens width"], *, key=None
    ) -> Float[Array, "tokens width"]:
        if self.branch_multiplier is None:
            raise ValueError("This BlockBranch has no depth factor yet: build it into a network.")
        attended = self.attention(z)
        return attended + self.mlp(z + self.branch_multiplier * attended)


class SequenceReadout(eqx.Module):
    """(T, d) → (T, C): $a_L W_L \\operatorname{LN}(z_t)$ at every position (a language
    model's next-token logits)."""

    norm: LayerNorm
    projection: Linear

    def __init__(self, width: int, outputs: int):
        self.norm = LayerNorm()
        self.projection = Linear(width, outputs, kind="readout")

    def __call__(
        self, z: Float[Array, "tokens width"], *, key=None
    ) -> Float[Array, "tokens outputs"]:
        return self.projection(self.norm(z))


class PooledReadout(eqx.Module):
    """(T, d) → (C,): $a_L W_L \\operatorname{mean}_t \\operatorname{LN}(z_t)$ (a ViT's class
    logits from the mean over patches)."""

    norm: LayerNorm
    projection: Linear

    def __init__(self, width: int, outputs: int):
        self.norm = LayerNorm()
        self.projection = Linear(width, outputs, kind="readout")

    def __call__(self, z: Float[Array, "tokens width"], *, key=None) -> Float[Array, " outputs"]:
        return self.projection(jnp.mean(self.norm(z), axis=0))
