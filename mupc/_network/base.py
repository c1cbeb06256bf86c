"""The network interface: what the energy, the inference solvers, the trainers, the
diagnostics and the parallel path need from a predictive coding network.

A PC network is a stack of layers $l = 1, \\dots, H$ whose outputs are the activities $z_l$,
with a readout $\\hat y = r(z_H)$ on top. Each layer predicts its activity from the one below,

$$\\mu_l = \\tau_l\\, S_l(z_{l-1}) + a_l\\, W_l \\ast P_l(\\phi(z_{l-1})),
\\qquad \\mu_1 = a_1 W_1 \\ast x,$$

where $S_l$ and $P_l$ are fixed linear maps (identity, pooling), $\\ast$ is the layer's linear
operation (matrix product, convolution) and $\\tau_l \\in \\{0, 1\\}$ switches the skip. The
prediction is **linear in the pair** $(z_{l-1}, \\phi(z_{l-1}))$ (and in x for the first layer):
the energy uses this to compute each error from *changes* of the activities, so that a layer
whose activity and input have not moved has an error of exactly zero in floating point.

Activities are a pytree of arrays whose leaves all have the layout (layers, batch, ...): e.g.
one (H, B, N) array for the residual MLP, one (n + 1, B, h, w, c) array per stage for the conv
ResNet. Nothing outside a network's own module reads its fields.
"""

import abc
from typing import Any, ClassVar, Literal, NamedTuple, TypeAlias

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._activation import ActivationFn
from .._energy import energy_from_errors, errors_from_changes, per_example_sum

Activities: TypeAlias = Any
"""A pytree of arrays of layout (layers, batch, ...), one entry per PC layer (e.g. one
(H, B, N) array for the residual MLP)."""

LayerKind = Literal["input", "hidden", "residual", "readout", "embedding"]


class LayerSpec(NamedTuple):
    """What a parameterisation needs to know about one weight layer.

    **Fields:**

    - `kind`: `"input"` (the first layer, fed the clamped input x), `"hidden"` (a non-residual
      layer fed $\\phi(z_{l-1})$), `"residual"` (the branch of a residual layer), `"readout"`
      or `"embedding"` (a lookup table, e.g. of tokens or positions: multiplier 1).
    - `fan_in`: the number of inputs of one output unit: D or N for a dense layer,
      $C_{\\text{in}} k^2$ for a k × k convolution.
    - `gain`: the activation's gain g multiplying μPC's $1/\\sqrt{\\text{fan\\_in}}$ (1 for the MLP
      of docs/method.md, "Parameterisations"; $\\sqrt 2$ for ReLU in the conv ResNet).
    - `branches`: for a residual layer, the number of residual branches the depth factor
      $1/\\sqrt{\\text{branches}}$ counts (L = H + 1 for the MLP, the number of residual blocks
      for the conv ResNet); 1 otherwise.
    """

    kind: LayerKind
    fan_in: int
    gain: float = 1.0
    branches: int = 1


class PCNetwork(eqx.Module):
    """The interface every predictive coding network implements (see the module docstring).

    Subclasses implement `feedforward`, `predict`, `readout`, `activation` (or `features`),
    `layer_specs`, `layer_weights`, `check_batch` and the `config`, `num_layers` and `dtype`
    properties; the energy, the solvers, the trainers and the diagnostics use nothing else.
    """

    config: eqx.AbstractVar[Any]
    """The static configuration (a frozen dataclass with `to_dict` / `from_dict`)."""

    kind: ClassVar[str]
    """The network family's name, e.g. `"resnet"`, stored in checkpoints."""

    @abc.abstractmethod
    def feedforward(
        self, inputs: Array, errors: Activities | None = None
    ) -> tuple[Activities, Array]:
        """The activities and outputs of the (error-perturbed) forward pass,

        $z_l = \\mu_l(z_{l-1}) + \\varepsilon_l$, $\\hat y = r(z_H)$,

        with $\\varepsilon = 0$ when `errors` is None (the ordinary feedforward pass, after
        which every error of the energy is exactly zero).

        **Arguments:** `inputs` (B, ...) and optional `errors`, a pytree like the activities.

        **Returns:** `(activities, outputs)`, outputs of shape (B, C).
        """

    @abc.abstractmethod
    def predict(
        self,
        states: Activities,
        features: Activities,
        inputs: Array | None = None,
        start: int = 0,
    ) -> Activities:
        """Every layer's prediction from the layer below, computed for all layers at once:
        entry l is $\\tau_l S_l(s_{l-1}) + a_l W_l \\ast P_l(f_{l-1})$, and entry 1 is
        $a_1 W_1 \\ast x$ (zero when `inputs` is None).

        Linear in (`states`, `features`, `inputs`) jointly: with `states` = z,
        `features` = $\\phi(z)$ it is $\\mu(z)$; with changes of both it is the change of
        $\\mu$.

        `start` > 0 (only where `supports_layer_slicing`) means the arguments hold the top
        layers $s + 1, \\dots, H$ only, and the layer below them, $z_s$, is unchanged: then
        entry $s + 1$ is zero.
        """

    @abc.abstractmethod
    def readout(self, activities: Activities) -> Array:
        """$\\hat y = r(z_H)$ from the activities, shape (B, C)."""

    def activation(self, x: Array) -> Array:
        """$\\phi$, elementwise (networks whose features are not $\\phi(z)$ override
        `features` instead)."""
        raise NotImplementedError(f"{type(self).__name__} has no single activation function.")

    @abc.abstractmethod
    def layer_specs(self) -> list[LayerSpec]:
        """One `LayerSpec` per weight layer, bottom to top (the readout last)."""

    @abc.abstractmethod
    def layer_weights(self, tree: "PCNetwork") -> list[Array]:
        """The weights of each layer, bottom to top, of `tree`: this network or a pytree of
        the same structure (e.g. its gradient). Entry l matches `layer_specs()[l]`."""

    @abc.abstractmethod
    def check_batch(self, inputs: Any, targets: Any, *, check_finite: bool = True) -> None:
        """Raise `ValueError` naming the problem unless `inputs` and `targets` form a batch
        this network accepts (shapes, and finite values when `check_finite`)."""

    @property
    @abc.abstractmethod
    def num_layers(self) -> int:
        """H, the number of PC layers (activity layers)."""

    @property
    @abc.abstractmethod
    def dtype(self) -> jnp.dtype:
        """The weights' floating dtype."""

    @classmethod
    @abc.abstractmethod
    def from_config(cls, data: dict[str, Any], *, key: Any, dtype: Any = None) -> "PCNetwork":
        """A freshly initialised network from its configuration's `to_dict()`."""

    forward_mode_autodiff: ClassVar[bool] = True
    """Whether `jax.jvp` works through the network (False where a layer has a hand-written
    backward pass); Hessian-vector products then use reverse-over-reverse differentiation."""

    supports_layer_slicing: ClassVar[bool] = False
    """Whether the activities' leaves are consecutive stacks of layers in leaf order (bottom
    to top; `mupc._slicing`) and `predict(..., start=s)` is implemented, which lets
    inference skip layers that have not moved yet."""

    @property
    def slice_alignment(self) -> int:
        """Layer slicing (`predict(..., start)`) needs `start` to be a multiple of this (1:
        any start; a network whose hidden layers repeat in groups of p different kinds needs
        p)."""
        return 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's input shape, e.g. `(D,)`: what a free input end $z_0$ looks like
        (`mupc.Clamp(input="free")`).

        **Raises:** `ValueError` for a network whose inputs cannot be a free activity."""
        raise ValueError(
            f"{type(self).__name__} does not declare its input shape, so its input end cannot "
            "be free: keep it clamped (mupc.Clamp(input='clamped'))."
        )

    def first_prediction(self, inputs: Array) -> Array:
        """$\\mu_1(x)$, the first layer's prediction from a batch of inputs, shaped like
        $z_1$ (the first row of the first activity leaf): what a free input end moves.

        **Raises:** `ValueError` where not implemented (the input end must stay clamped)."""
        raise ValueError(
            f"{type(self).__name__} has no separate first-layer prediction, so its input end "
            "cannot be free: keep it clamped (mupc.Clamp(input='clamped'))."
        )

    def features(self, activities: Activities) -> Activities:
        """$\\phi(z)$ for every layer."""
        return jax.tree.map(self.activation, activities)

    def feature_change(
        self, activities: Activities, reference: Activities, reference_features: Activities
    ) -> Activities:
        """The change of the features, `features(activities) - reference_features`, for the
        layers in `activities` (the top layers s + 1..H when sliced).

        It must be exactly zero for an example whose activities (and hence features) have
        not moved from `reference`, whatever operations computed `reference_features`: true
        by construction for an elementwise $\\phi$; networks with other features guard it.
        """
        return jax.tree.map(jnp.subtract, self.features(activities), reference_features)

    def for_layers_above(self, start: int) -> "PCNetwork":
        """This network prepared for the `energy_gradient(..., start)` calls of an inference
        loop: a network that `supports_layer_slicing` may return a copy whose per-layer weights
        are cut to the layers above `start` once, outside the loop (XLA would otherwise copy
        the slice in every step). Only `energy_gradient` and `predict` with the same `start`
        may be called on the copy. Default: the network itself."""
        return self

    def energy_gradient(
        self,
        activities: Activities,
        reference: Activities,
        reference_features: Activities,
        targets: Array,
        loss: Any,
        start: int = 0,
    ) -> Activities:
        """$\\nabla_z \\sum_i F_i$, each example's gradient of its own energy with respect to
        its activities, with the errors computed exactly from the changes relative to the
        feedforward pass (`mupc._energy.errors_from_changes`).

        The default differentiates the energy automatically. A network may override it with
        a closed form (`ResNet` does, for speed); an override must keep the exact zeros: a
        layer whose error and the error above it are exactly 0, and which gets no loss
        gradient, has a gradient of exactly 0.

        **Arguments:**

        - `activities`: $z$ of layers $s + 1..H$ (all layers when s = 0).
        - `reference`, `reference_features`: $\\bar z$ and $\\phi(\\bar z)$ of the same layers.
        - `targets`, `loss`: the clamped targets and the output energy (a `mupc.Loss`).
        - `start`: s; s > 0 needs `supports_layer_slicing` and means $z_s = \\bar z_s$.

        **Returns:** a pytree like `activities`.
        """

        def total(top):
            errors = errors_from_changes(self, top, reference, reference_features, start)
            return jnp.sum(energy_from_errors(self, top, errors, targets, loss))

        return jax.grad(total)(activities)

    def __call__(self, inputs: Array) -> Array:
        """$\\hat y$ for a batch of inputs."""
        return self.feedforward(inputs)[1]


__all__ = [
    "ActivationFn",
    "Activities",
    "LayerKind",
    "LayerSpec",
    "PCNetwork",
    "per_example_sum",
]
