"""A predictive coding network built from any layers: `mupc.LayerStack`.

The network is a stack of PC layers $l = 1..H$ with one activity array of layout
(H, batch, ...): an input layer, $H - 1$ hidden layers and a readout,

$$z_1 = f_1(x), \\qquad z_l = \\tau z_{l-1} + b\\, f_l(z_{l-1})\\ (2 \\le l \\le H), \\qquad
\\hat y = r(z_H),$$

where the $f_l$ are any functions (Equinox modules acting on one example: dense layers,
attention, layer norm, gated MLPs, ...), $\\tau = 1$ for residual layers (else 0) and b the
depth factor of the parameterisation ($1/\\sqrt{\\text{branches}}$ under Depth-μP; 1 without
skips). Every hidden activity has the shape of $z_1$.

**Exact errors for any prediction function.** The energy computes each error from changes
relative to the feedforward pass $\\bar z$ (`mupc._energy`). Here the "features" of layer l
are the nonlinear part of the next layer's prediction, $g_l = b\\, f_{l+1}(z_l)$, so the
prediction $\\mu_{l+1} = \\tau z_l + g_l$ is linear in $(z, g)$, and

$$\\varepsilon_{l+1} = \\Delta z_{l+1} - \\tau\\, \\Delta z_l - \\Delta g_l, \\qquad
\\Delta g_l = \\begin{cases} 0 & z_l = \\bar z_l \\text{ (this example, bit for bit)} \\\\
g_l(z_l) - g_l(\\bar z_l) & \\text{otherwise,} \\end{cases}$$

with the zero enforced by construction (`feature_change`), not left to the rounding of two
evaluations, and the gradient of $\\Delta g$ passed through unchanged. A layer whose activity
and input have not moved therefore has an error, and a weight gradient, of exactly 0.

**Compiled once, whatever the depth.** The hidden layers are grouped by their period: with
layers of p kinds repeating (p = 1 for an MLP, p = 2 for attention / MLP sub-layers), the n
layers of each kind are stacked into one module with a leading axis, the feedforward pass
scans over the n groups and the features are computed for all layers at once (vmapped).
"""

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .._parameterisation import resolve_parameterisation
from .._validation import check_finite_arrays, check_matching_batch
from .base import Activities, LayerKind, LayerSpec, PCNetwork


@dataclasses.dataclass(frozen=True)
class StackStructure:
    """The static structure of a `LayerStack` (shapes, not weights).

    **Fields:**

    - `depth`: H, the number of PC layers (input layer + hidden layers).
    - `period`: p, the number of hidden-layer kinds repeating bottom to top.
    - `residual`: whether hidden layers are residual ($\\tau = 1$).
    - `branch_multiplier`: b, the depth factor on each hidden layer's output.
    - `input_shape`: one example's input shape; `integer_inputs`: inputs are indices (tokens).
    - `activity_shape`: one example's activity shape (every layer's).
    - `output_shape`: one example's output shape.
    - `parameterisation`: the parameterisation's name; `branches`: what the depth factor counts.
    - `layers`: the class names of the input layer, the p hidden kinds and the readout.
    """

    depth: int
    period: int
    residual: bool
    branch_multiplier: float
    input_shape: tuple[int, ...]
    integer_inputs: bool
    activity_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    parameterisation: str
    branches: int
    layers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (stored in checkpoints, compared on load)."""
        data = dataclasses.asdict(self)
        for name in ("input_shape", "activity_shape", "output_shape", "layers"):
            data[name] = list(data[name])
        return data


def _split(module):
    return eqx.partition(module, eqx.is_array)


def _same_kind(a, b) -> bool:
    """Whether two layers have the same type, tree structure, array shapes and static parts."""
    arrays_a, static_a = _split(a)
    arrays_b, static_b = _split(b)
    structure_a: Any = jax.tree.structure(arrays_a)
    if type(a) is not type(b) or structure_a != jax.tree.structure(arrays_b):
        return False
    shapes = [(x.shape, x.dtype) for x in jax.tree.leaves(arrays_a)]
    if shapes != [(x.shape, x.dtype) for x in jax.tree.leaves(arrays_b)]:
        return False
    leaves_a, def_a = jax.tree.flatten(static_a)
    leaves_b, def_b = jax.tree.flatten(static_b)
    def_a = cast(Any, def_a)
    return def_a == def_b and all(x is y or x == y for x, y in zip(leaves_a, leaves_b, strict=True))


def _period(layers: Sequence[Any]) -> int:
    """The smallest p dividing the number of layers with layer i of the same kind as i - p."""
    count = len(layers)
    for period in range(1, count + 1):
        if count % period == 0 and all(
            _same_kind(layers[i], layers[i - period]) for i in range(period, count)
        ):
            return period
    return max(count, 1)


def _stack(layers: Sequence[Any]):
    """One module whose arrays are the layers' arrays stacked along a new leading axis."""
    arrays = [_split(layer)[0] for layer in layers]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *arrays)
    return eqx.combine(stacked, _split(layers[0])[1])


def _index(stack, index: int):
    """Layer `index` of a stacked module."""
    arrays, static = _split(stack)
    return eqx.combine(jax.tree.map(lambda x: x[index], arrays), static)


def _cut(stack, start: int):
    """The layers `start:` of a stacked module."""
    arrays, static = _split(stack)
    return eqx.combine(jax.tree.map(lambda x: x[start:], arrays), static)


def _stack_length(stack) -> int:
    leaves = jax.tree.leaves(_split(stack)[0])
    return leaves[0].shape[0] if leaves else 0


def _over_batch(layer, x: Array) -> Array:
    return jax.vmap(layer)(x)


def _over_layers_and_batch(stack, x: Array) -> Array:
    """`stack[i]` applied to every example of `x[i]`: (n, B, ...) → (n, B, ...)."""
    return eqx.filter_vmap(_over_batch, in_axes=(eqx.if_array(0), 0))(stack, x)


def _moved(activities: Array, reference: Array) -> Array:
    """(rows, B) booleans: whether each example's activity differs from the reference."""
    differs = activities != reference
    return jnp.any(differs, axis=tuple(range(2, differs.ndim)))


class _Stacked(PCNetwork):
    """The algorithm shared by every network made of an input layer, stacked hidden layers
    and a readout (`LayerStack`, `Transformer`); see the module docstring."""

    input_layer: eqx.AbstractVar[Any]
    hidden_stacks: eqx.AbstractVar[tuple[Any, ...]]
    readout_layer: eqx.AbstractVar[Any]
    structure: eqx.AbstractVar[StackStructure]

    supports_layer_slicing: ClassVar[bool] = True

    @property
    def num_layers(self) -> int:
        return self.structure.depth

    @property
    def slice_alignment(self) -> int:
        return self.structure.period

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.structure.integer_inputs:
            raise ValueError(
                "Index inputs (token ids) cannot be a free activity: keep them clamped."
            )
        return self.structure.input_shape

    @property
    def dtype(self) -> jnp.dtype:
        floating = [x for x in jax.tree.leaves(self) if eqx.is_inexact_array(x)]
        return floating[0].dtype

    @property
    def _skip(self) -> float:
        return 1.0 if self.structure.residual else 0.0

    def _stacks_for(self, rows: int) -> tuple[Any, ...]:
        """The hidden stacks predicting activity rows 1.. of the top `rows` rows (rows
        H - rows + 1..H): all of them, or cut from layer s = H - rows (a multiple of p)."""
        period, depth = self.structure.period, self.structure.depth
        if not self.hidden_stacks:
            return ()
        length = _stack_length(self.hidden_stacks[0])
        if rows - 1 == period * length:
            return self.hidden_stacks
        start = depth - rows
        if start < 0 or start % period or rows - 1 != period * (length - start // period):
            raise ValueError(
                f"{rows} top activity rows of a depth-{depth} network do not start at a "
                f"multiple of its period {period}."
            )
        return tuple(_cut(stack, start // period) for stack in self.hidden_stacks)

    def features(self, activities: Activities) -> Activities:
        """$g_l = b\\, f_{l+1}(z_l)$ for every row but the top one: shape (rows - 1, B, ...)."""
        below = activities[:-1]
        stacks = self._stacks_for(activities.shape[0])
        if not stacks:
            return below
        period = self.structure.period
        grouped = below.reshape(below.shape[0] // period, period, *below.shape[1:])
        outputs = [_over_layers_and_batch(stack, grouped[:, k]) for k, stack in enumerate(stacks)]
        branches = jnp.stack(outputs, axis=1).reshape(below.shape)
        return self.structure.branch_multiplier * branches

    def feature_change(self, activities, reference, reference_features):
        """$\\Delta g$ of the module docstring: exactly 0 for an example whose activity has not
        moved, $g(z) - \\bar g$ otherwise, with the gradient of $g(z)$."""
        change = self.features(activities) - reference_features
        moved = _moved(activities[:-1], reference[:-1])
        moved = moved.reshape(*moved.shape, *([1] * (change.ndim - 2)))
        unmoved_part = jnp.where(moved, jnp.zeros_like(change), change)
        return change - jax.lax.stop_gradient(unmoved_part)

    def first_prediction(self, inputs: Array) -> Array:
        """$\\mu_1 = f_1(x)$ for a batch, shape (B, ...)."""
        return _over_batch(self.input_layer, inputs)

    def predict(self, states, features, inputs=None, start=0):
        """$\\mu_l$ for the rows given: row 0 is $f_1(x)$ when `inputs` is given (else 0),
        row j > 0 is $\\tau s_{j-1} + g_{j-1}$ (linear in states and features)."""
        if start > 0 and inputs is not None:
            raise ValueError("`inputs` must be None when `start` > 0 (the layer below is fixed).")
        rest = self._skip * states[:-1] + features
        shifted = jnp.pad(rest, ((1, 0),) + ((0, 0),) * (rest.ndim - 1))
        if inputs is None:
            return shifted
        return shifted.at[0].set(self.first_prediction(inputs))

    def for_layers_above(self, start: int):
        if start == 0 or not self.hidden_stacks:
            return self
        stacks = self._stacks_for(self.structure.depth - start)
        return eqx.tree_at(lambda n: n.hidden_stacks, self, stacks)

    def feedforward(self, inputs, errors=None):
        """The (error-perturbed) forward pass: a `lax.scan` over the groups of p hidden
        layers, activities (H, B, ...) and outputs (B, ...)."""
        first = self.first_prediction(inputs)
        if errors is not None:
            first = first + errors[0]
        if not self.hidden_stacks:
            activities = first[None]
            return activities, self.readout(activities)
        period, skip = self.structure.period, self._skip
        b = self.structure.branch_multiplier
        arrays, static = _split(self.hidden_stacks)
        length = _stack_length(self.hidden_stacks[0])
        grouped_errors = (
            None if errors is None else errors[1:].reshape(length, period, *errors.shape[1:])
        )

        def group(previous, xs):
            layer_arrays, group_errors = xs
            layers = eqx.combine(layer_arrays, static)
            outputs = []
            for k in range(period):  # the p kinds of one group, not the depth
                previous = skip * previous + b * _over_batch(layers[k], previous)
                if group_errors is not None:
                    previous = previous + group_errors[k]
                outputs.append(previous)
            return previous, jnp.stack(outputs)

        # Rematerialised: the backward pass recomputes each group instead of stacking its
        # residuals (attention probabilities, ...) across the loop, which XLA's CPU backend
        # handles slowly (measured: a 4-block transformer's gradient 5x faster).
        _, rest = jax.lax.scan(jax.checkpoint(group), first, (arrays, grouped_errors))
        rest = rest.reshape(length * period, *rest.shape[2:])
        activities = jnp.concatenate([first[None], rest], axis=0)
        return activities, self.readout(activities)

    def readout(self, activities):
        """$\\hat y = r(z_H)$ from the top row, shape (B, ...)."""
        return _over_batch(self.readout_layer, activities[-1])

    def _hidden_layer(self, tree, index: int):
        """Hidden layer `index` (0-based, bottom first) of `tree` (this network or a pytree
        like it)."""
        period = self.structure.period
        stack = tree.hidden_stacks[index % period]
        return jax.tree.map(lambda x: x[index // period] if eqx.is_array(x) else x, stack)

    def layer_weights(self, tree) -> list[Array]:
        """Per PC weight layer (input layer, each hidden layer, readout), all its arrays
        flattened into one vector (diagnostics compare layers through these)."""

        def flat(part):
            leaves = [jnp.ravel(x) for x in jax.tree.leaves(part) if eqx.is_array(x)]
            return jnp.concatenate(leaves) if leaves else jnp.zeros((0,))

        hidden = [flat(self._hidden_layer(tree, i)) for i in range(self.structure.depth - 1)]
        return [flat(tree.input_layer), *hidden, flat(tree.readout_layer)]

    def layer_specs(self) -> list[LayerSpec]:
        """One spec per PC weight layer; `fan_in` is the activity's last dimension."""
        width = self.structure.activity_shape[-1]
        hidden: LayerKind = "residual" if self.structure.residual else "hidden"
        input_dim = int(np.prod(self.structure.input_shape)) if self.structure.input_shape else 1
        return [
            LayerSpec("input", input_dim),
            *[LayerSpec(hidden, width, branches=self.structure.branches)]
            * (self.structure.depth - 1),
            LayerSpec("readout", width),
        ]

    def check_batch(self, inputs, targets, *, check_finite=True):
        """Raise `ValueError` unless `inputs` is (B, *input_shape) and `targets` (B,
        *output_shape) with the same B ≥ 1; with `check_finite` also unless both are finite
        (and, for index inputs, non-negative integers)."""
        structure = self.structure
        shape = np.shape(inputs)
        if tuple(shape[1:]) != structure.input_shape or len(shape) < 1:
            raise ValueError(
                f"`inputs` must have shape (batch, {', '.join(map(str, structure.input_shape))}) "
                f"for this network, got {shape}."
            )
        out_shape = np.shape(targets)
        if tuple(out_shape[1:]) != structure.output_shape:
            raise ValueError(
                f"`targets` must have shape (batch, "
                f"{', '.join(map(str, structure.output_shape))}) for this network, got "
                f"{out_shape}. Classification labels must be one-hot."
            )
        check_matching_batch(inputs, targets)
        if not check_finite:  # values may be traced: shapes only
            return
        check_finite_arrays(inputs=inputs, targets=targets)
        if structure.integer_inputs:
            values = np.asarray(inputs)
            if np.any(values != np.round(values)) or np.any(values < 0):
                raise ValueError("`inputs` must be non-negative integer indices (token ids).")


def _resolution(parameterisation, branches, dtype):
    from ..nn import Resolution

    return Resolution(resolve_parameterisation(parameterisation), branches, dtype)


def assemble(
    input_layer,
    hidden_layers: Sequence[Any],
    readout_layer,
    *,
    input_shape: tuple[int, ...],
    integer_inputs: bool,
    parameterisation,
    residual: bool,
    branches: int | None,
    key: PRNGKeyArray,
    dtype: Any,
):
    """Resolve (draw weights, set multipliers) and stack the layers of a `_Stacked` network.

    **Returns:** `(input_layer, hidden_stacks, readout_layer, structure)`.
    """
    from ..nn import resolve

    dtype = jnp.zeros((), dtype).dtype if dtype is not None else jnp.result_type(float)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"`dtype` must be a floating dtype, got {dtype}.")
    param = resolve_parameterisation(parameterisation)
    hidden_layers = list(hidden_layers)
    if residual and branches is None:
        branches = max(1, len(hidden_layers))
    if branches is not None and (not isinstance(branches, int) or branches < 1):
        raise ValueError(f"`branches` must be a positive integer or None, got {branches!r}.")
    branches = branches or 1
    period = _period(hidden_layers) if hidden_layers else 1
    stacks = tuple(_stack(hidden_layers[k::period]) for k in range(period)) if hidden_layers else ()
    resolution = _resolution(param, branches, dtype)
    input_key, hidden_key, readout_key = jax.random.split(key, 3)
    input_layer = resolve(input_layer, resolution, input_key)
    stacks = resolve(stacks, resolution, hidden_key)
    readout_layer = resolve(readout_layer, resolution, readout_key)
    b = param.branch_multiplier(branches) if residual else 1.0
    # Inputs arrive in the network's floating dtype (index layers cast them to integers).
    example = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    activity = jax.eval_shape(input_layer, example)
    for k, stack in enumerate(stacks):
        out = jax.eval_shape(_index(stack, 0), activity)
        if out.shape != activity.shape:
            raise ValueError(
                f"Hidden layer kind {k} maps activities of shape {activity.shape} to "
                f"{out.shape}: every hidden layer must keep the activity's shape."
            )
    output = jax.eval_shape(readout_layer, activity)
    layer_names = (
        type(input_layer).__name__,
        *[type(hidden_layers[k]).__name__ for k in range(len(stacks))],
        type(readout_layer).__name__,
    )
    structure = StackStructure(
        depth=1 + len(hidden_layers),
        period=period,
        residual=bool(residual),
        branch_multiplier=float(b),
        input_shape=tuple(input_shape),
        integer_inputs=bool(integer_inputs),
        activity_shape=tuple(activity.shape),
        output_shape=tuple(output.shape),
        parameterisation=param.name,
        branches=branches,
        layers=layer_names,
    )
    return input_layer, stacks, readout_layer, structure


class LayerStack(_Stacked):
    """A PC network from your own layers (see the module docstring for the equations).

    **Arguments:**

    - `input_layer`: a module mapping one input example (shape `input_shape`) to $z_1$.
    - `hidden_layers`: a sequence of H - 1 modules, each mapping one example's activity to a
      branch of the same shape. Layers of p kinds may repeat (attention, MLP, attention,
      ...): they are stacked by kind, so compile time does not grow with depth.
    - `readout`: a module mapping $z_H$ of one example to its output.
    - `input_shape`: one example's input shape, e.g. `(784,)`.
    - `key`: PRNG key for the weights.
    - `parameterisation`: `"mupc"` (default), `"sp"`, `"ntp"` or a `mupc.Parameterisation`;
      it draws every weight and sets every multiplier of the `mupc.nn` layers inside.
    - `residual`: hidden layers are residual branches, $z_l = z_{l-1} + b f_l(z_{l-1})$
      (default); False gives $z_l = f_l(z_{l-1})$.
    - `branches`: what the depth factor $b = 1/\\sqrt{\\text{branches}}$ counts (default:
      the number of hidden layers).
    - `integer_inputs`: inputs are indices (token ids), not real values.
    - `dtype`: the weights' floating dtype.

    Layers are Equinox modules acting on one example; weights inside `mupc.nn.Linear`,
    `mupc.nn.Embedding` (and other `mupc.nn.Parameterised` layers) are drawn from the
    parameterisation, other arrays are kept as given.

    **Raises:** `ValueError` if a hidden layer changes the activity's shape, or for a bad
    option.
    """

    input_layer: Any
    hidden_stacks: tuple[Any, ...]
    readout_layer: Any
    structure: StackStructure = eqx.field(static=True)
    config: StackStructure = eqx.field(static=True)
    """The structure again (a `LayerStack` has no configuration it could be rebuilt from:
    build it again in Python and load a checkpoint into it with `mupc.load_checkpoint`)."""

    kind: ClassVar[str] = "layer-stack"

    def __init__(
        self,
        input_layer,
        hidden_layers: Sequence[Any],
        readout,
        *,
        input_shape: tuple[int, ...],
        key: PRNGKeyArray,
        parameterisation="mupc",
        residual: bool = True,
        branches: int | None = None,
        integer_inputs: bool = False,
        dtype: Any = None,
    ):
        self.input_layer, self.hidden_stacks, self.readout_layer, self.structure = assemble(
            input_layer,
            hidden_layers,
            readout,
            input_shape=tuple(input_shape),
            integer_inputs=integer_inputs,
            parameterisation=parameterisation,
            residual=residual,
            branches=branches,
            key=key,
            dtype=dtype,
        )
        self.config = self.structure

    @classmethod
    def from_config(cls, data, *, key, dtype=None):
        raise ValueError(
            "A LayerStack cannot be rebuilt from its description alone (its layers are your "
            "own code): build the same network in Python and load the checkpoint into "
            "`trainer.init(network)` with mupc.load_checkpoint(path, like=state)."
        )
