"""The fully connected pre-activation residual network (docs/method.md, "Network and energy").

$$z_1 = a_1 W_1 x, \\qquad z_l = \\tau z_{l-1} + a_l W_l \\phi(z_{l-1})\\ (2 \\le l \\le H),
\\qquad \\hat y = a_L W_L \\phi(z_H),$$

with $\\tau = 1$ when skip connections are on, else 0. The H - 1 hidden-to-hidden weight
matrices are stacked in one array and the forward pass is a `lax.scan`, so one compiled
program serves every depth. Activities are one array of shape (H, B, N).
"""

import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._activation import ActivationFn, activation_name, resolve_activation
from .._custom_types import Activities, HiddenWeights, Inputs, InputWeights, Outputs, OutputWeights
from .._parameterisation import Multipliers, Parameterisation, resolve_parameterisation
from .._validation import check_targets
from .base import LayerSpec, PCNetwork


def _check_positive_int(name: str, value: Any, minimum: int = 1, what: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}`{what} must be a positive integer (≥ {minimum}), got {value!r}.")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The shape and parameterisation of a residual MLP; validated when built.

    **Arguments:**

    - `input_dim`: D, the number of inputs.
    - `width`: N, the width of every hidden layer.
    - `depth`: H ≥ 1, the number of hidden layers (there are L = H + 1 weight matrices).
    - `output_dim`: C, the number of outputs.
    - `activation`: $\\phi$: `"linear"`, `"tanh"`, `"relu"`, `"gelu"`, `"silu"` or a callable.
    - `parameterisation`: `"sp"`, `"mupc"`, `"ntp"` or a `mupc.Parameterisation`.
    - `skips`: identity skip connections on the hidden-to-hidden layers.

    **Raises:** `ValueError` for a non-positive size, H < 1, or an unknown activation or
    parameterisation.
    """

    input_dim: int
    width: int
    depth: int
    output_dim: int
    activation: str | ActivationFn = "relu"
    parameterisation: str | Parameterisation = "mupc"
    skips: bool = True

    def __post_init__(self):
        for field in ("input_dim", "width", "output_dim"):
            _check_positive_int(field, getattr(self, field))
        _check_positive_int("depth", self.depth, what=" (the number of hidden layers H)")
        resolve_activation(self.activation)
        resolve_parameterisation(self.parameterisation)
        if not isinstance(self.skips, bool):
            raise ValueError(f"`skips` must be True or False, got {self.skips!r}.")

    def _hidden_spec(self) -> LayerSpec:
        if self.skips:
            return LayerSpec("residual", self.width, branches=self.depth + 1)
        return LayerSpec("hidden", self.width)

    def layer_specs(self) -> list[LayerSpec]:
        """`LayerSpec`s of $W_1$ (fan-in D), $W_2..W_H$ (residual branches over L = H + 1
        layers, fan-in N) and $W_L$ (readout, fan-in N)."""
        return [
            LayerSpec("input", self.input_dim),
            *[self._hidden_spec()] * (self.depth - 1),
            LayerSpec("readout", self.width),
        ]

    @property
    def multipliers(self) -> Multipliers:
        """$a_1, a_l, a_L$ for this configuration."""
        param = resolve_parameterisation(self.parameterisation)
        return Multipliers(
            param.multiplier(LayerSpec("input", self.input_dim)),
            param.multiplier(self._hidden_spec()),
            param.multiplier(LayerSpec("readout", self.width)),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description.

        **Raises:** `ValueError` if the activation is a callable with no registered name.
        """
        name = activation_name(self.activation)
        if name is None:
            raise ValueError(
                f"Cannot serialise the custom activation {self.activation!r}: only the named "
                "activations can be saved. Register it by name or save the weights yourself."
            )
        return {
            "input_dim": self.input_dim,
            "width": self.width,
            "depth": self.depth,
            "output_dim": self.output_dim,
            "activation": name,
            "parameterisation": resolve_parameterisation(self.parameterisation).name,
            "skips": self.skips,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NetworkConfig":
        """Inverse of `to_dict`."""
        return cls(**data)


class ResNet(PCNetwork):
    """A residual MLP $x \\mapsto \\hat y$ with stacked hidden weights.

    **Fields:**

    - `input_weights`: $W_1$, shape (N, D).
    - `hidden_weights`: $W_2, \\dots, W_H$ stacked, shape (H - 1, N, N).
    - `output_weights`: $W_L$, shape (C, N).
    - `config`: the `NetworkConfig` it was built from (static).

    Every method works on a batch: inputs of shape (B, D), activities (H, B, N).
    """

    input_weights: InputWeights
    hidden_weights: HiddenWeights
    output_weights: OutputWeights
    config: NetworkConfig = eqx.field(static=True)

    kind: ClassVar[str] = "resnet"
    supports_layer_slicing: ClassVar[bool] = True

    def __init__(self, config: NetworkConfig, *, key: PRNGKeyArray, dtype: Any = None):
        """**Arguments:**

        - `config`: the network's `NetworkConfig`.
        - `key`: a JAX PRNG key for the initial weights.
        - `dtype`: the weights' floating dtype (default: JAX's default float). The initial
          weights are drawn in float32 and cast, so networks of every dtype built from the
          same key start from the same values (a float64 twin of a float32 run).
        """
        if not isinstance(config, NetworkConfig):
            raise ValueError(f"`config` must be a NetworkConfig, got {type(config).__name__}.")
        dtype = jnp.zeros((), dtype).dtype if dtype is not None else jnp.result_type(float)
        if not jnp.issubdtype(dtype, jnp.floating):  # integer weights would train silently
            raise ValueError(f"`dtype` must be a floating dtype (e.g. float32), got {dtype}.")
        param = resolve_parameterisation(config.parameterisation)
        d, n, h, c = config.input_dim, config.width, config.depth, config.output_dim
        specs = config.layer_specs()
        input_key, hidden_key, output_key = jax.random.split(key, 3)

        def draw(key, shape, spec):
            # Drawn in float32 and cast, so a float64 twin starts from the same weights.
            return param.init_weight(key, shape, spec, jnp.float32).astype(dtype)

        self.input_weights = draw(input_key, (n, d), specs[0])
        self.hidden_weights = draw(hidden_key, (h - 1, n, n), config._hidden_spec())
        self.output_weights = draw(output_key, (c, n), specs[-1])
        self.config = config

    @classmethod
    def from_config(cls, data, *, key, dtype=None):
        return cls(NetworkConfig.from_dict(data), key=key, dtype=dtype)

    @property
    def multipliers(self) -> Multipliers:
        """$a_1, a_l, a_L$."""
        return self.config.multipliers

    @property
    def skip(self) -> float:
        """$\\tau$: 1.0 with skip connections, else 0.0."""
        return 1.0 if self.config.skips else 0.0

    @property
    def dtype(self) -> jnp.dtype:
        return self.input_weights.dtype

    @property
    def num_layers(self) -> int:
        return self.config.depth

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.config.input_dim,)

    def activation(self, x):
        return resolve_activation(self.config.activation)(x)

    def layer_specs(self) -> list[LayerSpec]:
        return self.config.layer_specs()

    def layer_weights(self, tree) -> list[Array]:
        hidden = [tree.hidden_weights[i] for i in range(tree.hidden_weights.shape[0])]
        return [tree.input_weights, *hidden, tree.output_weights]

    def first_prediction(self, inputs: Inputs) -> Float[Array, "batch width"]:
        """$a_1 W_1 x$."""
        return self.multipliers.input * (inputs @ self.input_weights.T)

    def hidden_layer(
        self, previous: Float[Array, "batch width"], weight: Float[Array, "width width"]
    ) -> Float[Array, "batch width"]:
        """One residual layer, $\\tau z_{l-1} + a_l W_l \\phi(z_{l-1})$, for a single weight
        matrix (the body of the feedforward scan)."""
        branch = self.activation(previous) @ weight.T
        return self.skip * previous + self.multipliers.hidden * branch

    def hidden_predictions(
        self,
        previous: Float[Array, "layers batch width"],
        hidden_weights: Float[Array, "layers width width"] | None = None,
    ) -> Float[Array, "layers batch width"]:
        """$\\tau z_{l-1} + a_l W_l \\phi(z_{l-1})$ for a stack of layers at once (`previous[i]`
        is the activity under the layer with weights `hidden_weights[i]`)."""
        weights = self.hidden_weights if hidden_weights is None else hidden_weights
        branch = jnp.einsum("lbn,lmn->lbm", self.activation(previous), weights)
        return self.skip * previous + self.multipliers.hidden * branch

    def feedforward(self, inputs, errors=None):
        """The (error-perturbed) forward pass: activities (H, B, N) and outputs (B, C).

        A `lax.scan` over the stacked hidden weights: one compiled loop body for any depth.
        """
        first = self.first_prediction(inputs)
        if errors is not None:
            first = first + errors[0]

        def layer(previous, weight_and_error):
            weight, error = weight_and_error
            current = self.hidden_layer(previous, weight)
            if error is not None:
                current = current + error
            return current, current

        rest_errors = None if errors is None else errors[1:]
        top, rest = jax.lax.scan(layer, first, (self.hidden_weights, rest_errors))
        activities = jnp.concatenate([first[None], rest], axis=0)
        return activities, self.readout(top[None])

    def predict(self, states, features, inputs=None, start=0):
        """$\\mu_l$ for layers $s + 1..H$ (s = `start`): entry $s + 1$ is $a_1 W_1 x$ when s = 0
        and `inputs` is given, else zero; the others are
        $\\tau s_{l-1} + a_l W_l f_{l-1}$, one batched matrix product over the layers."""
        if start > 0 and inputs is not None:
            raise ValueError("`inputs` must be None when `start` > 0 (the layer below is fixed).")
        weights = self._weights_below(jax.tree.leaves(features)[0].shape[0], start)
        branch = jnp.einsum("lbn,lmn->lbm", features[:-1], weights)
        rest = self.skip * states[:-1] + self.multipliers.hidden * branch
        # Shift down one layer with `pad`, not `concatenate`: the same values, but a layer-sharded
        # `pad` partitions into one boundary transfer, a `concatenate` into all-to-alls.
        shifted = jnp.pad(rest, ((1, 0), (0, 0), (0, 0)))
        if inputs is None:
            return shifted
        return shifted.at[0].set(self.first_prediction(inputs))

    def _weights_below(self, rows: int, start: int) -> Float[Array, "layers width width"]:
        """The weights $W_{s+2}, \\dots, W_H$ predicting the rows above the first of `rows`
        activity rows for layers $s + 1..H$: the last `rows` - 1 matrices of the stack, which
        is all of it for a network from `for_layers_above(start)`."""
        stacked = self.hidden_weights.shape[0]
        if stacked == self.config.depth - 1 and rows == self.config.depth - start:
            return self.hidden_weights[start:]
        if stacked == rows - 1:  # already cut by `for_layers_above`
            return self.hidden_weights
        raise ValueError(
            f"{rows} activity rows from layer {start + 1} do not fit {stacked} stacked weights "
            f"of a network of depth {self.config.depth}."
        )

    def for_layers_above(self, start: int) -> "ResNet":
        """A copy whose stacked weights are cut to $W_{s+2}, \\dots, W_H$ once, for the
        `energy_gradient(..., start)` calls of an inference loop (XLA would otherwise copy
        the slice in every step). Only `energy_gradient` and `predict` with this `start`
        may be called on it."""
        if start == 0:
            return self
        return eqx.tree_at(lambda n: n.hidden_weights, self, self.hidden_weights[start:])

    def energy_gradient(self, activities, reference, reference_features, targets, loss, start=0):
        """$\\nabla_z \\sum_i F_i$ in closed form (the interface's automatic differentiation,
        written out so that XLA makes fewer passes over the (layers, B, N) arrays). With
        $\\Delta z = z - \\bar z$, $\\Delta\\phi = \\phi(z) - \\phi(\\bar z)$ and rows $j = 0..n-1$
        for the layers $s + 1..H$:

        $$\\varepsilon_0 = \\Delta z_0, \\qquad \\varepsilon_{j} = \\Delta z_{j} - \\big(\\tau
        \\Delta z_{j-1} + a_l W_{s+j} \\Delta\\phi_{j-1}\\big),$$

        $$\\nabla_{z_j} = \\varepsilon_j - \\tau \\varepsilon_{j+1} + \\phi'(z_j) \\odot
        g_j, \\qquad g_j = -a_l W_{s+j+1}^\\top \\varepsilon_{j+1}\\ (j < n - 1),\\quad
        g_{n-1} = \\partial \\ell / \\partial \\phi(z_H).$$

        The errors are computed with the same operations as `errors_from_changes`, so they
        are the same numbers; the gradient equals automatic differentiation up to the order of
        float additions, and is exactly 0 wherever both errors are 0 and no loss gradient
        arrives. Every full-size array is read elementwise by the final expression, so XLA
        updates the activities in place (no copy of the activities per step)."""
        z, a = activities, self.multipliers.hidden
        weights = self._weights_below(z.shape[0], start)
        # ε_j for j ≥ 1: the same operations as `errors_from_changes` (which gives ε_0 = Δz_0:
        # the layer below the first row and the inputs are fixed).
        branch = jnp.einsum(
            "lbn,lmn->lbm", self.activation(z[:-1]) - reference_features[:-1], weights
        )
        change_below = z[:-1] - reference[:-1]
        upper = (z[1:] - reference[1:]) - (self.skip * change_below + a * branch)
        back = jnp.einsum("lbm,lmn->lbn", upper, weights)

        def output_energy(top_features):
            outputs = self.multipliers.output * (top_features @ self.output_weights.T)
            return jnp.sum(loss(outputs, targets))

        top_grad = jax.grad(output_energy)(self.activation(z[-1]))
        feature_grad = jnp.concatenate([-a * back, top_grad[None]])
        # Row 0's error Δz_0, written as a select over all rows (reading only the (B, N) row of
        # the reference), so that `z` is read elementwise and the update can happen in place.
        first_row = np.arange(z.shape[0]).reshape(-1, 1, 1) == 0  # a constant, not a kernel
        errors = jnp.where(first_row, z - reference[:1], jnp.pad(upper, ((1, 0), (0, 0), (0, 0))))
        errors_above = jnp.pad(upper, ((0, 1), (0, 0), (0, 0)))
        _, activation_vjp = jax.vjp(self.activation, z)
        return errors - self.skip * errors_above + activation_vjp(feature_grad)[0]

    def readout(self, activities: Activities) -> Outputs:
        """$\\hat y = a_L W_L \\phi(z_H)$, from activities whose last row is $z_H$."""
        return self.multipliers.output * (self.activation(activities[-1]) @ self.output_weights.T)

    def check_batch(self, inputs, targets, *, check_finite=True):
        """Raise `ValueError` unless `inputs` is (B, D) and `targets` is (B, C), both finite."""
        d, c = self.config.input_dim, self.config.output_dim
        in_shape = np.shape(inputs)
        if len(in_shape) != 2 or in_shape[1] != d:
            raise ValueError(
                f"`inputs` must have shape (batch, {d}) for this network (input_dim={d}), got "
                f"{in_shape}. Flatten images to vectors first."
            )
        check_targets(inputs, targets, c, check_finite)
