"""A convolutional pre-activation ResNet under Depth-μP (docs/method.md, "Convolutional ResNets").

S stages; stage s works at one resolution with $c_s$ channels and has a non-residual k × k
convolution followed by n identical residual blocks; 2 × 2 average pooling joins the stages:

$$z_{s,0} = a_{s,0}\\, W_{s,0} \\ast \\begin{cases} x & s = 0 \\\\
\\operatorname{pool}(\\phi(z_{s-1,n})) & s > 0 \\end{cases}, \\qquad
z_{s,i} = z_{s,i-1} + a_{\\text{res}}\\, W_{s,i} \\ast \\phi(z_{s,i-1})\\ (1 \\le i \\le n),$$

$$\\hat y = a_L W_L \\operatorname{mean}_{h,w} \\phi(z_{S-1,n}).$$

Every layer's output is a PC activity with its own error. No biases. Under μPC a
convolution with $C_{\\text{in}}$ input channels gets $g/\\sqrt{C_{\\text{in}} k^2}$ (g the
activation's gain; 1 on the raw image), a residual block also $1/\\sqrt{L_{\\text{res}}}$ with
$L_{\\text{res}} = S n$ residual blocks in all, the readout $1/c_{S-1}$; weights
$\\mathcal N(0, 1)$. Under `sp` every multiplier is 1 with $U(\\pm 1/\\sqrt{\\text{fan\\_in}})$
weights.

Activities are a tuple of S arrays, stage s of shape (n + 1, B, h_s, w_s, c_s) (row 0 the
stage's convolution, rows 1..n its blocks); images are (B, height, width, channels). Within a
stage the blocks' weights are stacked (n, k, k, c_s, c_s) and the forward pass scans over them,
so compile time does not grow with n.
"""

import dataclasses
import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .._activation import activation_name, resolve_activation
from .._parameterisation import resolve_parameterisation
from .._validation import check_targets
from .base import LayerSpec, PCNetwork

GAINS = {
    "linear": 1.0,
    "relu": math.sqrt(2.0),
    "tanh": 5.0 / 3.0,
    "gelu": math.sqrt(2.0),
    "silu": math.sqrt(2.0),
}
"""Activation gains g of the μPC conv multipliers (ReLU: √2, tanh: 5/3, as for He and Xavier
initialisation; GELU and SiLU are treated like ReLU)."""

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _raw_conv(inputs: Array, kernel: Array) -> Array:
    return jax.lax.conv_general_dilated(
        inputs, kernel, (1, 1), "SAME", dimension_numbers=_DIMENSIONS
    )


def _patches(images: Array, size: int) -> Array:
    """(B, h, w, c) → (B, h, w, size² c): every pixel's zero-padded size × size neighbourhood,
    ordered (row offset, column offset, channel) like an HWIO kernel's first three axes."""
    pad = size // 2
    height, width = images.shape[1], images.shape[2]
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    shifted = [
        padded[:, i : i + height, j : j + width, :] for i in range(size) for j in range(size)
    ]
    return jnp.concatenate(shifted, axis=-1)


@jax.custom_vjp
def _conv(inputs: Array, kernel: Array) -> Array:
    """A stride-1 'same' convolution (cross-correlation) of (B, h, w, c_in) images with a
    (k, k, c_in, c_out) kernel.

    Its backward pass is written out (the input gradient as a convolution with the flipped,
    transposed kernel; the kernel gradient as one matrix product of image patches), because
    XLA's CPU backend runs the default transposed convolutions slowly inside loops. Being a
    `custom_vjp`, it supports reverse-mode differentiation only.
    """
    return _raw_conv(inputs, kernel)


def _conv_forward(inputs, kernel):
    return _raw_conv(inputs, kernel), (inputs, kernel)


def _conv_transpose(cotangent: Array, kernel: Array) -> Array:
    """The input gradient of `_conv`: a convolution of the (B, h, w, c_out) `cotangent` with
    the flipped, transposed (k, k, c_out, c_in) kernel."""
    return _raw_conv(cotangent, jnp.flip(kernel, (0, 1)).swapaxes(2, 3))


def _conv_backward(residuals, cotangent):
    inputs, kernel = residuals
    size = kernel.shape[0]
    input_grad = _conv_transpose(cotangent, kernel)
    kernel_grad = jnp.einsum("bhwp,bhwo->po", _patches(inputs, size), cotangent)
    return input_grad, kernel_grad.reshape(kernel.shape)


_conv.defvjp(_conv_forward, _conv_backward)


def _stacked_conv(images: Array, kernels: Array) -> Array:
    """`_conv` of a stack of n image batches (n, B, h, w, c) with n kernels (n, k, k, c, o),
    one after another in a loop (XLA's CPU backend runs a vmapped, grouped convolution far
    more slowly)."""
    return jax.lax.map(lambda pair: _conv(*pair), (images, kernels))


def _stacked_conv_transpose(cotangents: Array, kernels: Array) -> Array:
    """`_conv_transpose` of a stack of n cotangents (n, B, h, w, o) with n kernels, in a loop."""
    return jax.lax.map(lambda pair: _conv_transpose(*pair), (cotangents, kernels))


def _pool(images: Array) -> Array:
    """2 × 2 average pooling with stride 2 (a trailing odd row or column is dropped)."""
    summed = jax.lax.reduce_window(images, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return summed / 4.0


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """The shape and parameterisation of a conv ResNet; validated when built.

    **Arguments:**

    - `input_shape`: (height, width, channels) of one image.
    - `channels`: $c_s$, the channels of each stage (S = `len(channels)` stages).
    - `blocks`: n ≥ 0, the residual blocks in every stage.
    - `output_dim`: C, the number of outputs.
    - `kernel_size`: k, odd.
    - `activation`: $\\phi$: `"linear"`, `"tanh"`, `"relu"`, `"gelu"` or `"silu"`.
    - `parameterisation`: `"sp"`, `"mupc"`, `"ntp"` or a `mupc.Parameterisation`.

    **Raises:** `ValueError` naming the bad field.
    """

    input_shape: tuple[int, int, int]
    channels: tuple[int, ...] = (16, 32, 64)
    blocks: int = 2
    output_dim: int = 10
    kernel_size: int = 3
    activation: str = "relu"
    parameterisation: Any = "mupc"

    def __post_init__(self):
        shape = tuple(self.input_shape)
        if len(shape) != 3 or not all(_positive_int(v) for v in shape):
            raise ValueError(
                f"`input_shape` must be (height, width, channels) of positive integers, got "
                f"{self.input_shape!r}."
            )
        object.__setattr__(self, "input_shape", shape)
        channels = tuple(self.channels)
        if not channels or not all(_positive_int(c) for c in channels):
            raise ValueError(
                f"`channels` must be a non-empty sequence of positive integers, got "
                f"{self.channels!r}."
            )
        object.__setattr__(self, "channels", channels)
        if not isinstance(self.blocks, int) or isinstance(self.blocks, bool) or self.blocks < 0:
            raise ValueError(f"`blocks` (per stage) must be an integer ≥ 0, got {self.blocks!r}.")
        if not _positive_int(self.output_dim):
            raise ValueError(f"`output_dim` must be a positive integer, got {self.output_dim!r}.")
        if not _positive_int(self.kernel_size) or self.kernel_size % 2 == 0:
            raise ValueError(
                f"`kernel_size` must be a positive odd integer, got {self.kernel_size!r}."
            )
        if self.activation not in GAINS:
            raise ValueError(
                f"Unknown activation {self.activation!r} for a conv network: expected one of "
                f"{sorted(GAINS)}."
            )
        resolve_parameterisation(self.parameterisation)
        height, width, _ = shape
        smallest = min(height, width) // 2 ** (len(channels) - 1)
        if smallest < 1:
            raise ValueError(
                f"{len(channels)} stages pool a {height}×{width} image below 1×1; use fewer "
                "stages (`channels`) or larger images."
            )

    @property
    def gain(self) -> float:
        """g of the activation."""
        return GAINS[self.activation]

    @property
    def num_layers(self) -> int:
        """H = S (n + 1) PC layers."""
        return len(self.channels) * (self.blocks + 1)

    def layer_specs(self) -> list[LayerSpec]:
        """Bottom to top: each stage's convolution, its n blocks, then the readout."""
        k2 = self.kernel_size**2
        residual_blocks = max(1, len(self.channels) * self.blocks)
        specs = []
        previous = self.input_shape[2]
        for stage, channels in enumerate(self.channels):
            if stage == 0:
                specs.append(LayerSpec("input", previous * k2))
            else:
                specs.append(LayerSpec("hidden", previous * k2, self.gain))
            block = LayerSpec("residual", channels * k2, self.gain, residual_blocks)
            specs.extend([block] * self.blocks)
            previous = channels
        specs.append(LayerSpec("readout", self.channels[-1]))
        return specs

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (inverse: `from_dict`)."""
        return {
            "input_shape": list(self.input_shape),
            "channels": list(self.channels),
            "blocks": self.blocks,
            "output_dim": self.output_dim,
            "kernel_size": self.kernel_size,
            "activation": activation_name(self.activation),
            "parameterisation": resolve_parameterisation(self.parameterisation).name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ConvConfig":
        """Inverse of `to_dict`."""
        data = dict(data)
        data["input_shape"] = tuple(data["input_shape"])
        data["channels"] = tuple(data["channels"])
        return cls(**data)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class ConvResNet(PCNetwork):
    """A conv ResNet for images (B, height, width, channels) (see the module docstring).

    **Fields:**

    - `stage_weights`: tuple of S kernels $W_{s,0}$, shape (k, k, c_{s-1}, c_s) (c_{-1} the
      image channels).
    - `block_weights`: tuple of S stacks of block kernels, shape (n, k, k, c_s, c_s).
    - `output_weights`: $W_L$, shape (C, c_{S-1}).
    - `config`: the `ConvConfig` (static).
    """

    stage_weights: tuple[Array, ...]
    block_weights: tuple[Array, ...]
    output_weights: Array
    config: ConvConfig = eqx.field(static=True)

    kind: ClassVar[str] = "conv-resnet"
    forward_mode_autodiff: ClassVar[bool] = False
    supports_layer_slicing: ClassVar[bool] = True

    def __init__(self, config: ConvConfig, *, key: PRNGKeyArray, dtype: Any = None):
        """**Arguments:** the `ConvConfig`, a PRNG `key`, and the weights' `dtype` (drawn in
        float32 and cast, as for `ResNet`)."""
        if not isinstance(config, ConvConfig):
            raise ValueError(f"`config` must be a ConvConfig, got {type(config).__name__}.")
        dtype = jnp.zeros((), dtype).dtype if dtype is not None else jnp.result_type(float)
        if not jnp.issubdtype(dtype, jnp.floating):  # integer weights would train silently
            raise ValueError(f"`dtype` must be a floating dtype (e.g. float32), got {dtype}.")
        param = resolve_parameterisation(config.parameterisation)
        specs = config.layer_specs()
        k, n = config.kernel_size, config.blocks
        keys = jax.random.split(key, 2 * len(config.channels) + 1)

        def draw(key, shape, spec):
            return param.init_weight(key, shape, spec, jnp.float32).astype(dtype)

        stages, blocks = [], []
        previous, index = config.input_shape[2], 0
        for stage, channels in enumerate(config.channels):
            stages.append(draw(keys[2 * stage], (k, k, previous, channels), specs[index]))
            block_spec = specs[index + 1] if n else LayerSpec("residual", channels * k * k)
            blocks.append(draw(keys[2 * stage + 1], (n, k, k, channels, channels), block_spec))
            previous, index = channels, index + 1 + n
        self.stage_weights = tuple(stages)
        self.block_weights = tuple(blocks)
        self.output_weights = draw(keys[-1], (config.output_dim, previous), specs[-1])
        self.config = config

    @classmethod
    def from_config(cls, data, *, key, dtype=None):
        return cls(ConvConfig.from_dict(data), key=key, dtype=dtype)

    @property
    def dtype(self) -> jnp.dtype:
        return self.output_weights.dtype

    @property
    def num_layers(self) -> int:
        return self.config.num_layers

    def _multipliers(self) -> tuple[list[float], list[float], float]:
        """Per stage: the convolution's and the residual blocks' multipliers; the readout's."""
        param = resolve_parameterisation(self.config.parameterisation)
        specs = self.config.layer_specs()
        n = self.config.blocks
        starts = [s * (n + 1) for s in range(len(self.config.channels))]
        stage = [param.multiplier(specs[i]) for i in starts]
        residual = [param.multiplier(specs[i + 1]) if n else 0.0 for i in starts]
        return stage, residual, param.multiplier(specs[-1])

    def activation(self, x):
        return resolve_activation(self.config.activation)(x)

    def layer_specs(self) -> list[LayerSpec]:
        return self.config.layer_specs()

    def layer_weights(self, tree) -> list[Array]:
        layers: list[Array] = []
        for stage, blocks in zip(tree.stage_weights, tree.block_weights, strict=True):
            layers.append(stage)
            layers.extend(blocks[i] for i in range(blocks.shape[0]))
        layers.append(tree.output_weights)
        return layers

    def feedforward(self, inputs, errors=None):
        stage_mults, residual_mults, _ = self._multipliers()
        activities = []
        top = None
        for stage, (kernel, blocks) in enumerate(
            zip(self.stage_weights, self.block_weights, strict=True)
        ):
            source = inputs if stage == 0 else _pool(self.activation(top))
            first = stage_mults[stage] * _conv(source, kernel)
            stage_errors = None if errors is None else errors[stage]
            if stage_errors is not None:
                first = first + stage_errors[0]

            residual = residual_mults[stage]

            def block(previous, kernel_and_error, residual=residual):
                kernel, error = kernel_and_error
                current = previous + residual * _conv(self.activation(previous), kernel)
                if error is not None:
                    current = current + error
                return current, current

            rest_errors = None if stage_errors is None else stage_errors[1:]
            top, rest = jax.lax.scan(block, first, (blocks, rest_errors))
            activities.append(jnp.concatenate([first[None], rest], axis=0))
        activities = tuple(activities)
        return activities, self.readout(activities)

    def _first_rows(self, start: int) -> list[int]:
        """Per stage: the first of its rows (0..n + 1) at or above layer `start` (0-based;
        the stages' rows are the layers in order, `mupc._slicing`)."""
        rows = self.config.blocks + 1
        return [min(max(start - stage * rows, 0), rows) for stage in range(len(self.stage_weights))]

    def predict(self, states, features, inputs=None, start=0):
        """Every layer's prediction from the layer below, stage by stage: row 0 of stage s is
        $a_{s,0} W_{s,0} \ast$ (the image, or the pooled features of stage s - 1's top), rows
        i ≥ 1 are $z_{s,i-1} + a_{\text{res}} W_{s,i} \ast f_{s,i-1}$ (one convolution per block,
        in a loop).

        With `start` = s > 0 the arguments hold the layers above s only (stage by stage, the
        rows from `_first_rows(s)` on; a stage wholly below s has zero rows) and the layer
        below them is unchanged, so the first of them is predicted as exactly zero."""
        if start > 0 and inputs is not None:
            raise ValueError("`inputs` must be None when `start` > 0 (the layer below is fixed).")
        stage_mults, residual_mults, _ = self._multipliers()
        predictions = []
        for stage, (kernel, blocks, cut) in enumerate(
            zip(self.stage_weights, self.block_weights, self._first_rows(start), strict=True)
        ):
            state = states[stage]
            if state.shape[0] == 0:  # wholly below `start`
                predictions.append(state)
                continue
            # Row `cut` (the first one present) is predicted from the layer below it: the image
            # (stage 0), stage s - 1's top (when present), or a layer below `start` (zero).
            if cut == 0 and stage == 0 and inputs is not None:
                first = stage_mults[stage] * _conv(inputs, kernel)
            elif cut == 0 and stage > 0 and features[stage - 1].shape[0] > 0:
                first = stage_mults[stage] * _conv(_pool(features[stage - 1][-1]), kernel)
            else:
                first = jnp.zeros_like(state[0])
            if state.shape[0] == 1:
                predictions.append(first[None])
                continue
            weights = self._blocks_from(blocks, cut, state.shape[0])
            branch = _stacked_conv(features[stage][:-1], weights)
            rest = state[:-1] + residual_mults[stage] * branch
            predictions.append(jnp.concatenate([first[None], rest], axis=0))
        return tuple(predictions)

    def _blocks_from(self, blocks: Array, cut: int, rows: int) -> Array:
        """The block kernels predicting the rows above the first of `rows` rows that start at
        row `cut` of their stage: `blocks[cut:]`, which is all of `blocks` for a network from
        `for_layers_above`."""
        if blocks.shape[0] == self.config.blocks and rows == self.config.blocks + 1 - cut:
            return blocks[cut:]
        if blocks.shape[0] == rows - 1:  # already cut by `for_layers_above`
            return blocks
        raise ValueError(
            f"{rows} activity rows from row {cut} do not fit {blocks.shape[0]} stacked block "
            f"kernels of a stage with {self.config.blocks} blocks."
        )

    def for_layers_above(self, start: int) -> "ConvResNet":
        """A copy whose stacked block kernels are cut to the blocks above layer `start` once
        (stage by stage, as `predict(..., start)` needs them), for the `energy_gradient(...,
        start)` calls of an inference loop. Only `energy_gradient` and `predict` with this
        `start` may be called on it."""
        if start == 0:
            return self
        cuts = self._first_rows(start)
        blocks = tuple(stack[cut:] for stack, cut in zip(self.block_weights, cuts, strict=True))
        return eqx.tree_at(lambda network: network.block_weights, self, blocks)

    def energy_gradient(self, activities, reference, reference_features, targets, loss, start=0):
        """$\\nabla_z \\sum_i F_i$ in closed form, stage by stage (automatic differentiation
        of the energy, written out: the same expression serves every `start`, so inference that
        skips unmoved layers gets the very numbers of the full computation). With the exact
        errors $\\varepsilon$ of `errors_from_changes` and rows $i = 0..n$ of stage s:

        $$\\nabla_{z_{s,i}} = \\varepsilon_{s,i} - \\varepsilon_{s,i+1} + \\phi'(z_{s,i})
        \\odot g_{s,i}, \\qquad g_{s,i} = -a_{\\text{res}} W_{s,i+1}^{\\top} \\ast
        \\varepsilon_{s,i+1}\\ (i < n),$$

        and for a stage's top row ($\\varepsilon_{s,n+1} = 0$: no skip across stages)
        $g_{s,n} = -a_{s+1,0} \\operatorname{pool}^{\\top}(W_{s+1,0}^{\\top} \\ast
        \\varepsilon_{s+1,0})$, or $\\partial \\ell / \\partial \\phi(z_{S-1,n})$ for the
        last stage ($W^{\\top} \\ast$: the transposed convolution). Exactly 0 wherever both
        errors are 0 and no loss gradient arrives."""
        from .._energy import errors_from_changes

        errors = errors_from_changes(self, activities, reference, reference_features, start)
        stage_mults, residual_mults, output_mult = self._multipliers()
        cuts = self._first_rows(start)
        last = len(self.stage_weights) - 1

        def output_energy(top_features):
            pooled = jnp.mean(top_features, axis=(1, 2))
            return jnp.sum(loss(output_mult * (pooled @ self.output_weights.T), targets))

        gradients = []
        for stage, (z, error) in enumerate(zip(activities, errors, strict=True)):
            if z.shape[0] == 0:  # wholly below `start`
                gradients.append(z)
                continue
            if stage == last:
                top = jax.grad(output_energy)(self.activation(z[-1]))
            else:
                above = _conv_transpose(errors[stage + 1][0], self.stage_weights[stage + 1])
                _, pool_vjp = jax.vjp(_pool, z[-1])
                top = -stage_mults[stage + 1] * pool_vjp(above)[0]
            if z.shape[0] > 1:
                blocks = self._blocks_from(self.block_weights[stage], cuts[stage], z.shape[0])
                within = -residual_mults[stage] * _stacked_conv_transpose(error[1:], blocks)
                feature_grad = jnp.concatenate([within, top[None]], axis=0)
                error_above = jnp.pad(error[1:], ((0, 1),) + ((0, 0),) * (z.ndim - 1))
            else:
                feature_grad, error_above = top[None], jnp.zeros_like(error)
            _, activation_vjp = jax.vjp(self.activation, z)
            gradients.append(error - error_above + activation_vjp(feature_grad)[0])
        return tuple(gradients)

    def readout(self, activities):
        _, _, output = self._multipliers()
        top = activities[-1][-1]  # (B, h, w, c)
        pooled = jnp.mean(self.activation(top), axis=(1, 2))
        return output * (pooled @ self.output_weights.T)

    def check_batch(self, inputs, targets, *, check_finite=True):
        """Raise `ValueError` unless `inputs` is (B, height, width, channels) and `targets`
        (B, C), both finite."""
        expected = self.config.input_shape
        shape = np.shape(inputs)
        if len(shape) != 4 or tuple(shape[1:]) != expected:
            raise ValueError(
                f"`inputs` must have shape (batch, {expected[0]}, {expected[1]}, {expected[2]}) "
                f"(images as height × width × channels) for this network, got {shape}. Load "
                "images with layout NHWC."
            )
        check_targets(inputs, targets, self.config.output_dim, check_finite)
