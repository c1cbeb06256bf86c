"""The fully connected pre-activation residual network of spec §2.

$$z_1 = a_1 W_1 x, \\qquad z_l = \\tau z_{l-1} + a_l W_l \\phi(z_{l-1})\\ (2 \\le l \\le H),
\\qquad \\hat y = a_L W_L \\phi(z_H),$$

with $\\tau = 1$ when skip connections are on, else 0. The H - 1 hidden-to-hidden weight
matrices are stacked in one array and the forward pass is a `lax.scan`, so one compiled
program serves every depth.
"""

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._activation import ActivationFn, activation_name, resolve_activation
from ._custom_types import Activities, HiddenWeights, Inputs, InputWeights, Outputs, OutputWeights
from ._parameterisation import Multipliers, Parameterisation, resolve_parameterisation


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The shape and parameterisation of a residual network; validated when built.

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
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{field}` must be a positive integer, got {value!r}.")
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 1:
            raise ValueError(
                f"`depth` (the number of hidden layers H) must be an integer ≥ 1, got "
                f"{self.depth!r}."
            )
        resolve_activation(self.activation)
        resolve_parameterisation(self.parameterisation)
        if not isinstance(self.skips, bool):
            raise ValueError(f"`skips` must be True or False, got {self.skips!r}.")

    @property
    def multipliers(self) -> Multipliers:
        """$a_1, a_l, a_L$ for this configuration."""
        return resolve_parameterisation(self.parameterisation).multipliers(
            self.input_dim, self.width, self.depth, self.output_dim, self.skips
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


class ResNet(eqx.Module):
    """A residual network $x \\mapsto \\hat y$ with stacked hidden weights.

    **Fields:**

    - `input_weights`: $W_1$, shape (N, D).
    - `hidden_weights`: $W_2, \\dots, W_H$ stacked, shape (H - 1, N, N).
    - `output_weights`: $W_L$, shape (C, N).
    - `config`: the `NetworkConfig` it was built from (static).

    Every method works on a batch: inputs of shape (B, D).
    """

    input_weights: InputWeights
    hidden_weights: HiddenWeights
    output_weights: OutputWeights
    config: NetworkConfig = eqx.field(static=True)

    def __init__(
        self,
        config: NetworkConfig,
        *,
        key: PRNGKeyArray,
        dtype: Any = None,
    ):
        """**Arguments:**

        - `config`: the network's `NetworkConfig`.
        - `key`: a JAX PRNG key for the initial weights.
        - `dtype`: the weights' floating dtype (default: JAX's default float).
        """
        if not isinstance(config, NetworkConfig):
            raise ValueError(f"`config` must be a NetworkConfig, got {type(config).__name__}.")
        dtype = jnp.zeros((), dtype).dtype if dtype is not None else jnp.result_type(float)
        param = resolve_parameterisation(config.parameterisation)
        d, n, h, c = config.input_dim, config.width, config.depth, config.output_dim
        input_key, hidden_key, output_key = jax.random.split(key, 3)
        self.input_weights = param.init_weight(input_key, (n, d), dtype)
        self.hidden_weights = param.init_weight(hidden_key, (h - 1, n, n), dtype)
        self.output_weights = param.init_weight(output_key, (c, n), dtype)
        self.config = config

    @property
    def multipliers(self) -> Multipliers:
        """$a_1, a_l, a_L$."""
        return self.config.multipliers

    @property
    def activation(self) -> ActivationFn:
        """$\\phi$."""
        return resolve_activation(self.config.activation)

    @property
    def skip(self) -> float:
        """$\\tau$: 1.0 with skip connections, else 0.0."""
        return 1.0 if self.config.skips else 0.0

    @property
    def dtype(self) -> jnp.dtype:
        return self.input_weights.dtype

    def first_prediction(self, inputs: Inputs) -> Float[Array, "batch width"]:
        """$a_1 W_1 x$."""
        return self.multipliers.input * (inputs @ self.input_weights.T)

    def hidden_predictions(
        self,
        previous: Float[Array, "layers batch width"],
        hidden_weights: Float[Array, "layers width width"] | None = None,
    ) -> Float[Array, "layers batch width"]:
        """$\\tau z_{l-1} + a_l W_l \\phi(z_{l-1})$ for a stack of layers at once.

        `previous[i]` is the activity below the layer whose weights are `hidden_weights[i]`
        (default: all of `self.hidden_weights`, so `previous` = $z_1, \\dots, z_{H-1}$).
        """
        if hidden_weights is None:
            hidden_weights = self.hidden_weights
        branch = jnp.einsum("lbn,lmn->lbm", self.activation(previous), hidden_weights)
        return self.skip * previous + self.multipliers.hidden * branch

    def hidden_layer(
        self, previous: Float[Array, "batch width"], weight: Float[Array, "width width"]
    ) -> Float[Array, "batch width"]:
        """One residual layer, $\\tau z_{l-1} + a_l W_l \\phi(z_{l-1})$, for a single weight
        matrix (the body of the feedforward scan)."""
        branch = self.activation(previous) @ weight.T
        return self.skip * previous + self.multipliers.hidden * branch

    def readout(self, top: Float[Array, "batch width"]) -> Outputs:
        """$\\hat y = a_L W_L \\phi(z_H)$."""
        return self.multipliers.output * (self.activation(top) @ self.output_weights.T)

    def feedforward(self, inputs: Inputs) -> tuple[Activities, Outputs]:
        """The feedforward pass: all hidden activities (H, B, N) and the output (B, C).

        A `lax.scan` over the stacked hidden weights: one compiled loop body for any depth.
        """
        first = self.first_prediction(inputs)

        def layer(previous, weight):
            current = self.hidden_layer(previous, weight)
            return current, current

        top, rest = jax.lax.scan(layer, first, self.hidden_weights)
        activities = jnp.concatenate([first[None], rest], axis=0)
        return activities, self.readout(top)

    def __call__(self, inputs: Inputs) -> Outputs:
        """$\\hat y$ for a batch of inputs of shape (B, D)."""
        return self.feedforward(inputs)[1]
