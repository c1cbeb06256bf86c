"""The top layers of an activity pytree, for inference that skips the layers that have not moved.

A network that `supports_layer_slicing` lays its H layers out as **consecutive stacks in leaf
order**: leaf i of the activities holds layers $o_i + 1, \\dots, o_i + n_i$ along its first
axis, with $o_0 = 0$ and $o_{i+1} = o_i + n_i$ (the residual MLP: one (H, B, N) leaf; the conv
ResNet: one (n + 1, B, h_s, w_s, c_s) leaf per stage). The layers above $s$ (0-based rows
$s, \\dots, H - 1$) are then, leaf by leaf, the rows $\\operatorname{clip}(s - o_i, 0, n_i)$
onwards: a leaf wholly below $s$ keeps its place with zero rows, so the pytree keeps its
structure and every leaf its layout.

Every slice here is static (a Python int): one compiled program per bucket of top layers, no
dynamic shapes.
"""

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

Activities = Any


def layer_counts(tree: Activities) -> list[int]:
    """$n_i$, the layers (first-axis length) of each leaf, in leaf order."""
    return [int(jnp.shape(leaf)[0]) for leaf in jax.tree.leaves(tree)]


def _cuts(counts: list[int], start: int) -> list[int]:
    """Per leaf: the first of its rows that lies at or above layer `start` (0-based)."""
    cuts, offset = [], 0
    for count in counts:
        cuts.append(min(max(start - offset, 0), count))
        offset += count
    return cuts


def slice_layers(tree: Activities, start: int) -> Activities:
    """The layers `start`.. (0-based) of an activity-shaped pytree: leaf i cut to its rows
    $\\operatorname{clip}(s - o_i, 0, n_i)$: (module docstring); `start` = 0 returns `tree`."""
    if start == 0:
        return tree
    leaves, treedef = jax.tree.flatten(tree)
    cuts = _cuts([jnp.shape(leaf)[0] for leaf in leaves], start)
    return jax.tree.unflatten(treedef, [leaf[cut:] for leaf, cut in zip(leaves, cuts, strict=True)])


def merge_layers(full: Activities, top: Activities, start: int) -> Activities:
    """`full` with its layers `start`.. replaced by `top` (a `slice_layers(full, start)`-shaped
    pytree); `start` = 0 returns `top`."""
    if start == 0:
        return top
    leaves, treedef = jax.tree.flatten(full)
    cuts = _cuts([jnp.shape(leaf)[0] for leaf in leaves], start)
    merged = [
        whole if cut == jnp.shape(whole)[0] else whole.at[cut:].set(part)
        for whole, part, cut in zip(leaves, jax.tree.leaves(top), cuts, strict=True)
    ]
    return jax.tree.unflatten(treedef, merged)


def layer_differs(current: Activities, initial: Activities, index: Array) -> Bool[Array, ""]:
    """Whether layer `index` (0-based, a traced integer in [0, H)) of `current` differs from
    `initial` in any coordinate (bitwise); reads that layer's row only."""
    changed = jnp.asarray(False)
    offset = 0
    for now, then in zip(jax.tree.leaves(current), jax.tree.leaves(initial), strict=True):
        count = jnp.shape(now)[0]
        if count == 0:
            continue
        row = jnp.clip(index - offset, 0, count - 1)
        inside = (index >= offset) & (index < offset + count)
        differs = jnp.any(
            jax.lax.dynamic_index_in_dim(now, row, keepdims=False)
            != jax.lax.dynamic_index_in_dim(then, row, keepdims=False)
        )
        changed |= inside & differs
        offset += count
    return changed


def _like(node: Any, activities: Activities) -> bool:
    """Whether `node` is a pytree of the activities' structure and leaf shapes (e.g. Adam's
    first moment of the activities)."""
    structure: Any = jax.tree.structure(node)  # PyTreeDef's stubs lack `==`
    if structure != jax.tree.structure(activities):
        return False
    return all(
        jnp.shape(a) == jnp.shape(b)
        for a, b in zip(jax.tree.leaves(node), jax.tree.leaves(activities), strict=True)
    )


def activity_like_parts(state: Any, activities: Activities) -> list[Activities]:
    """The sub-pytrees of an optimiser `state` shaped like `activities` (momentum, Adam's
    moments, ...), in order."""
    parts: list[Activities] = []
    jax.tree.map(
        lambda node: parts.append(node) if _like(node, activities) else None,
        state,
        is_leaf=lambda node: _like(node, activities),
    )
    return parts


def slice_state(state: Any, activities: Activities, start: int) -> Any:
    """An optimiser state on the activities cut to the layers `start`..: every part shaped like
    the activities sliced with `slice_layers`, everything else (step counts) kept."""
    if start == 0:
        return state
    return jax.tree.map(
        lambda node: slice_layers(node, start) if _like(node, activities) else node,
        state,
        is_leaf=lambda node: _like(node, activities),
    )


def merge_state(full: Any, top: Any, activities: Activities, start: int) -> Any:
    """Inverse of `slice_state`: `full` with the layers `start`.. of its activity-shaped parts
    taken from `top`, its other parts replaced by `top`'s."""
    if start == 0:
        return top
    return jax.tree.map(
        lambda whole, part: merge_layers(whole, part, start) if _like(whole, activities) else part,
        full,
        top,
        is_leaf=lambda node: _like(node, activities),
    )
