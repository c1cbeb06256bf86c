"""Layer slicing of activity pytrees (`mupc._slicing`) against a naive oracle: the
layers as one flat Python list, sliced and compared layer by layer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mupc._inference.discrete import _bucket_starts
from mupc._slicing import (
    layer_counts,
    layer_differs,
    merge_layers,
    merge_state,
    slice_layers,
    slice_state,
)

COUNTS = (3, 1, 4)  # three leaves of consecutive layers: 8 layers in all


def _tree(seed=0):
    keys = jax.random.split(jax.random.key(seed), len(COUNTS))
    shapes = [(n, 2, 3 + i) for i, n in enumerate(COUNTS)]  # every leaf its own shape
    return tuple(jax.random.normal(k, s) for k, s in zip(keys, shapes, strict=True))


def _layers(tree):
    """The naive view: every layer's (B, ...) array, bottom to top."""
    return [leaf[i] for leaf in tree for i in range(leaf.shape[0])]


@pytest.mark.parametrize("start", range(sum(COUNTS)))
def test_slice_and_merge_follow_the_flat_layer_order(start):
    tree, other = _tree(0), _tree(1)
    top = slice_layers(tree, start)
    assert jax.tree.structure(top) == jax.tree.structure(tree)
    assert sum(layer_counts(top)) == sum(COUNTS) - start
    for got, want in zip(_layers(top), _layers(tree)[start:], strict=True):
        np.testing.assert_array_equal(got, want)
    merged = merge_layers(tree, slice_layers(other, start), start)
    expected = _layers(tree)[:start] + _layers(other)[start:]
    for got, want in zip(_layers(merged), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert [leaf.shape for leaf in merged] == [leaf.shape for leaf in tree]


def test_layer_differs_finds_each_changed_layer():
    tree = _tree(0)
    for changed in range(sum(COUNTS)):
        layers = _layers(tree)
        layers[changed] = layers[changed].at[1, 2].add(1e-3)
        offsets = np.cumsum((0,) + COUNTS)
        moved = tuple(jnp.stack(layers[a:b]) for a, b in zip(offsets, offsets[1:], strict=False))
        found = [bool(layer_differs(moved, tree, jnp.asarray(i))) for i in range(sum(COUNTS))]
        assert found == [i == changed for i in range(sum(COUNTS))]


def test_optimiser_state_is_sliced_where_it_is_shaped_like_the_activities():
    """Adam's two moments are sliced and merged like the activities; its step count is not."""
    tree, start = _tree(0), 2
    adam = optax.adam(0.1)
    with jax.numpy_dtype_promotion("standard"):
        state = adam.update(tree, adam.init(tree), tree)[1]
    top = slice_state(state, tree, start)
    assert int(top[0].count) == 1
    for moment in (top[0].mu, top[0].nu):
        assert layer_counts(moment) == [1, 1, 4]
    doubled = jax.tree.map(lambda leaf: 2 * leaf, top)
    merged = merge_state(state, doubled, tree, start)
    assert int(merged[0].count) == 2
    got, old = _layers(merged[0].mu), _layers(state[0].mu)
    for i in range(sum(COUNTS)):
        np.testing.assert_array_equal(got[i], old[i] if i < start else 2 * old[i])


@pytest.mark.parametrize(
    "depth, alignment, expected",
    [
        (128, 1, [120, 116, 112, 104, 96, 80, 64, 32, 0]),
        (10, 1, [9, 8, 7, 6, 5, 2, 0]),  # sizes ⌈10 f⌉ = 1, 2, 3, 4, 5, 8, 10
        (12, 3, [9, 6, 3, 0]),  # 11, 10, 9, 7, 6, 3, 0 rounded down to multiples of 3
        (1, 1, [0]),
    ],
)
def test_bucket_starts(depth, alignment, expected):
    """The blocks of top layers inference updates: fractions 1/16 ... 1 of the depth, rounded
    up, their starts rounded down to multiples of the network's `slice_alignment`."""
    assert _bucket_starts(depth, alignment) == expected
