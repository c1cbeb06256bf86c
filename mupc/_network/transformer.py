"""A pre-LN transformer as a predictive coding network, under Depth-μP (docs/method.md,
"Transformers").

The residual stream of one example is a (T, d) array: T tokens (characters of a text, or the
patches of an image) of width $d = n_h d_{\\text{head}}$. With $A_i$ and $M_i$ the attention
and MLP branches of block i (`mupc.nn.AttentionBranch`, `mupc.nn.MLPBranch`: pre-LN, no
biases), b the depth factor and the activities one PC layer per sub-layer (`activity =
"sublayer"`, the default):

$$z_1 = \\operatorname{embed}(x), \\qquad z_{2i} = z_{2i-1} + b\\, A_i(z_{2i-1}), \\qquad
z_{2i+1} = z_{2i} + b\\, M_i(z_{2i}), \\qquad \\hat y = a_L W_L \\operatorname{LN}(z_H),$$

so H = 2n + 1 PC layers for n blocks; with `activity = "block"` one PC layer per block (the
block's two branches as one, `mupc.nn.BlockBranch`), H = n + 1. Multipliers (μPC): dense
layers $1/\\sqrt{\\text{fan\\_in}}$, attention logits $1/d_{\\text{head}}$, embedding tables 1, a
patch projection $1/\\sqrt{p^2 c}$, the readout $1/d$, and $b = 1/\\sqrt{2n}$ (the residual
sub-layers counted); width grows by heads at a fixed $d_{\\text{head}}$.

Language models take token ids (B, T) with a causal mask and predict every position,
outputs (B, T, V); image models take images (B, h, w, c) as p × p patches and predict a class
from the mean over patches, outputs (B, C). The blocks are stacked and scanned (compile time
flat in depth), and the network is a `mupc.LayerStack` in everything but its construction.
"""

import dataclasses
from typing import Any, ClassVar, Literal

import equinox as eqx
from jaxtyping import PRNGKeyArray

from .._activation import ACTIVATIONS, resolve_activation
from .._parameterisation import resolve_parameterisation
from .stack import StackStructure, _Stacked, assemble

ActivityKind = Literal["sublayer", "block"]


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """The shape and parameterisation of a PC transformer; validated when built.

    **Arguments:**

    - `input_shape`: one example's input: `(T,)` token ids for a language model (then
      `vocab_size` is required), or an image `(height, width, channels)`.
    - `output_dim`: the outputs per position (the vocabulary, for a language model) or the
      number of classes (images).
    - `vocab_size`: the input vocabulary of a language model; None for images.
    - `patch_size`: p, the side of an image patch (dividing the image's height and width).
    - `heads`, `head_dim`: $n_h$ and $d_{\\text{head}}$; the width is $d = n_h d_{\\text{head}}$.
    - `blocks`: n ≥ 1 transformer blocks.
    - `mlp_ratio`: the MLP's hidden width over d.
    - `activation`: the MLP's $\\phi$ (`"gelu"` by default).
    - `causal`: a causal attention mask (default: True for tokens, False for images).
    - `activity`: `"sublayer"` (one PC layer per attention and per MLP sub-layer) or
      `"block"` (one per block).
    - `parameterisation`: `"mupc"` (default), `"sp"`, `"ntp"` or a `mupc.Parameterisation`.

    **Raises:** `ValueError` naming the bad field.
    """

    input_shape: tuple[int, ...]
    output_dim: int
    vocab_size: int | None = None
    patch_size: int = 7
    heads: int = 4
    head_dim: int = 16
    blocks: int = 2
    mlp_ratio: int = 4
    activation: str = "gelu"
    causal: bool | None = None
    activity: ActivityKind = "sublayer"
    parameterisation: Any = "mupc"

    def __post_init__(self):
        shape = tuple(self.input_shape)
        object.__setattr__(self, "input_shape", shape)
        if self.vocab_size is not None:
            if len(shape) != 1 or not _positive_int(shape[0]):
                raise ValueError(
                    f"`input_shape` of a language model must be (context,), got {shape!r}."
                )
            if not _positive_int(self.vocab_size):
                raise ValueError(
                    f"`vocab_size` must be a positive integer, got {self.vocab_size!r}."
                )
        else:
            if len(shape) != 3 or not all(_positive_int(v) for v in shape):
                raise ValueError(
                    "`input_shape` must be (height, width, channels) for images, or (context,) "
                    f"with `vocab_size` for tokens; got {shape!r}."
                )
            if (
                not _positive_int(self.patch_size)
                or shape[0] % self.patch_size
                or (shape[1] % self.patch_size)
            ):
                raise ValueError(
                    f"`patch_size` must divide the image's height and width {shape[:2]}, got "
                    f"{self.patch_size!r}."
                )
        for name in ("output_dim", "heads", "head_dim", "blocks", "mlp_ratio"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(
                    f"`{name}` must be a positive integer, got {getattr(self, name)!r}."
                )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"Unknown activation {self.activation!r}: expected one of {sorted(ACTIVATIONS)}."
            )
        if self.causal is not None and not isinstance(self.causal, bool):
            raise ValueError(f"`causal` must be True, False or None, got {self.causal!r}.")
        if self.activity not in ("sublayer", "block"):
            raise ValueError(f"`activity` must be 'sublayer' or 'block', got {self.activity!r}.")
        resolve_parameterisation(self.parameterisation)

    @property
    def tokens(self) -> bool:
        """Whether the inputs are token ids (a language model)."""
        return self.vocab_size is not None

    @property
    def width(self) -> int:
        """$d = n_h d_{\\text{head}}$."""
        return self.heads * self.head_dim

    @property
    def is_causal(self) -> bool:
        """The attention mask in use."""
        return self.tokens if self.causal is None else self.causal

    @property
    def num_layers(self) -> int:
        """H: 2n + 1 PC layers with `activity="sublayer"`, n + 1 with `"block"`."""
        per_block = 2 if self.activity == "sublayer" else 1
        return 1 + per_block * self.blocks

    @property
    def branches(self) -> int:
        """2n, the residual sub-layers the depth factor $1/\\sqrt{2n}$ counts."""
        return 2 * self.blocks

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (inverse: `from_dict`)."""
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["parameterisation"] = resolve_parameterisation(self.parameterisation).name
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TransformerConfig":
        """Inverse of `to_dict`."""
        data = dict(data)
        data["input_shape"] = tuple(data["input_shape"])
        return cls(**data)


def transformer_layers(config: TransformerConfig):
    """The input layer, hidden layers (bottom first) and readout of a transformer, unresolved
    (`mupc.nn` modules; the network draws their weights)."""
    from .. import nn

    width, activation = config.width, resolve_activation(config.activation)
    hidden_width = config.mlp_ratio * width
    if config.tokens:
        assert config.vocab_size is not None
        embed: Any = nn.TokenEmbedding(config.vocab_size, config.input_shape[0], width)
        readout: Any = nn.SequenceReadout(width, config.output_dim)
    else:
        image_shape = (config.input_shape[0], config.input_shape[1], config.input_shape[2])
        embed = nn.PatchEmbedding(image_shape, config.patch_size, width)
        readout = nn.PooledReadout(width, config.output_dim)
    causal = config.is_causal
    hidden: list[Any] = []
    for _ in range(config.blocks):
        if config.activity == "sublayer":
            hidden.append(nn.AttentionBranch(width, config.heads, causal=causal))
            hidden.append(nn.MLPBranch(width, hidden_width, activation))
        else:
            hidden.append(
                nn.BlockBranch(width, config.heads, hidden_width, activation, causal=causal)
            )
    return embed, hidden, readout


class Transformer(_Stacked):
    """A pre-LN PC transformer (see the module docstring).

    **Arguments:** a `TransformerConfig`, a PRNG `key` and the weights' `dtype`.

    **Fields:** `input_layer` (the token or patch embedding), `hidden_stacks` (the attention
    and MLP branches, stacked by kind), `readout_layer`, `structure` and `config`.
    """

    input_layer: Any
    hidden_stacks: tuple[Any, ...]
    readout_layer: Any
    structure: StackStructure = eqx.field(static=True)
    config: TransformerConfig = eqx.field(static=True)

    kind: ClassVar[str] = "transformer"

    def __init__(self, config: TransformerConfig, *, key: PRNGKeyArray, dtype: Any = None):
        if not isinstance(config, TransformerConfig):
            raise ValueError(f"`config` must be a TransformerConfig, got {type(config).__name__}.")
        embed, hidden, readout = transformer_layers(config)
        self.input_layer, self.hidden_stacks, self.readout_layer, self.structure = assemble(
            embed,
            hidden,
            readout,
            input_shape=config.input_shape,
            integer_inputs=config.tokens,
            parameterisation=config.parameterisation,
            residual=True,
            branches=config.branches,
            key=key,
            dtype=dtype,
        )
        self.config = config

    @classmethod
    def from_config(cls, data, *, key, dtype=None):
        return cls(TransformerConfig.from_dict(data), key=key, dtype=dtype)

    def check_batch(self, inputs, targets, *, check_finite=True):
        super().check_batch(inputs, targets, check_finite=check_finite)
        vocab = self.config.vocab_size
        if vocab is not None and check_finite:
            import numpy as np

            largest = int(np.max(np.asarray(inputs)))
            if largest >= vocab:
                raise ValueError(
                    f"`inputs` holds token id {largest}, outside the vocabulary of {vocab} "
                    f"(ids 0..{vocab - 1})."
                )
