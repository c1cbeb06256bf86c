"""Layers whose multipliers and initial weights come from the network's parameterisation.

A layer declares what it is (its `LayerSpec`: kind and fan-in); the network it is built into
draws its weights and sets its multiplier from the network's parameterisation
(`mupc.MuPC`, `mupc.StandardPC`, ...), once, when the network is built (`resolve`). So one
layer definition serves every parameterisation, and a multiplier is never typed in twice.
"""

import abc
import dataclasses
from typing import Any, NamedTuple, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._parameterisation import Parameterisation

_T = TypeVar("_T")


class Resolution(NamedTuple):
    """What a layer needs to set its multipliers and draw its weights.

    **Fields:**

    - `parameterisation`: the network's `mupc.Parameterisation`.
    - `branches`: the number of residual branches the depth factor counts
      ($1/\\sqrt{\\text{branches}}$ under Depth-μP).
    - `dtype`: the weights' floating dtype (weights are drawn in float32 and cast, so a
      float64 twin starts from the same values).
    """

    parameterisation: Parameterisation
    branches: int
    dtype: Any


class Parameterised(eqx.Module):
    """A layer whose weights and multipliers the network sets from its parameterisation.

    Subclasses implement `resolve`; a composite layer resolves its children with
    `resolve_children`.
    """

    @abc.abstractmethod
    def resolve(self, resolution: Resolution, key: Any) -> "Parameterised":
        """This layer with its weights drawn and its multipliers set for `resolution`."""


def _is_parameterised(node: Any) -> bool:
    return isinstance(node, Parameterised)


def resolve(tree: _T, resolution: Resolution, key: Any) -> _T:
    """Every `Parameterised` layer in `tree` (outermost first), resolved with its own key.

    **Arguments:** a pytree of layers (a module, a list of modules, ...), the `Resolution`
    and a PRNG key.

    **Returns:** the same structure with every parameterised layer resolved.
    """
    nodes = [n for n in jax.tree.leaves(tree, is_leaf=_is_parameterised) if _is_parameterised(n)]
    if not nodes:
        return tree
    keys = iter(jax.random.split(key, len(nodes)))
    return jax.tree.map(
        lambda node: node.resolve(resolution, next(keys)) if _is_parameterised(node) else node,
        tree,
        is_leaf=_is_parameterised,
    )


def resolve_children(module: _T, resolution: Resolution, key: Any) -> _T:
    """`module` with every parameterised layer among its fields resolved (for composite
    layers whose own `resolve` sets something and then resolves what they contain)."""
    names = [name for name in module.__dataclass_fields__ if not _is_static(module, name)]  # type: ignore[attr-defined]
    values = [getattr(module, name) for name in names]
    resolved = resolve(values, resolution, key)
    return eqx.tree_at(
        lambda m: [getattr(m, name) for name in names],
        module,
        resolved,
        is_leaf=lambda x: x is None,
    )


def replace_fields(module: _T, **changes: Any) -> _T:
    """A copy of the Equinox module with some fields (static ones included) replaced, without
    calling its `__init__`."""
    new = object.__new__(type(module))
    for field in dataclasses.fields(module):  # type: ignore[arg-type]
        object.__setattr__(new, field.name, changes.get(field.name, getattr(module, field.name)))
    return new


def _is_static(module: Any, name: str) -> bool:
    return bool(module.__dataclass_fields__[name].metadata.get("static", False))


def draw(resolution: Resolution, key: Any, shape: tuple[int, ...], spec) -> jax.Array:
    """Weights of `shape` for a layer described by `spec`, drawn by the parameterisation in
    float32 and cast to the network's dtype."""
    weights = resolution.parameterisation.init_weight(key, shape, spec, jnp.float32)
    return weights.astype(resolution.dtype)
