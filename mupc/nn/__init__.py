"""Layers for building predictive coding networks (`mupc.LayerStack`, `mupc.Transformer`).

Every weight-carrying layer declares its kind and fan-in; the network it is built into draws
its weights and sets its multipliers from the network's parameterisation (docs/method.md, the
multiplier tables). Layers act on ONE example; the network maps them over the batch.
"""

from ._attention import MLP as MLP, LayerNorm as LayerNorm, MultiHeadAttention as MultiHeadAttention
from ._blocks import (
    AttentionBranch as AttentionBranch,
    BlockBranch as BlockBranch,
    MLPBranch as MLPBranch,
    PatchEmbedding as PatchEmbedding,
    PooledReadout as PooledReadout,
    SequenceReadout as SequenceReadout,
    TokenEmbedding as TokenEmbedding,
    patchify as patchify,
)
from ._linear import Embedding as Embedding, Linear as Linear
from ._parameterised import (
    Parameterised as Parameterised,
    Resolution as Resolution,
    resolve as resolve,
    resolve_children as resolve_children,
)
