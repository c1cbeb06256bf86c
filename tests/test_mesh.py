"""The device mesh's shapes, numerically: every K and mode against a brute-force search of the
factorisations, and the devices laid out with the "layers" axis varying fastest."""

import jax
import numpy as np
import pytest

from mupc._parallel import device_mesh
from mupc._parallel.mesh import _mesh_shape


def _most_nearly_square(k: int) -> tuple[int, int]:
    """Of every (data, layers) with data × layers = K and data ≤ layers, the one with the
    smallest difference (found by trying every pair)."""
    pairs = [(d, k // d) for d in range(1, k + 1) if k % d == 0 and d <= k // d]
    return min(pairs, key=lambda pair: pair[1] - pair[0])


@pytest.mark.parametrize("k", range(1, 65))
def test_mesh_shapes_of_every_mode(k):
    assert _mesh_shape(k, "data") == (k, 1)
    assert _mesh_shape(k, "layers") == (1, k)
    data, layers = _mesh_shape(k, "both")
    assert (data, layers) == _most_nearly_square(k)
    assert data * layers == k and data <= layers


def test_known_factorisations():
    """The docstring's examples, and primes (only 1 × K is possible)."""
    expected = {4: (2, 2), 8: (2, 4), 12: (3, 4), 16: (4, 4), 18: (3, 6), 36: (6, 6),
                7: (1, 7), 13: (1, 13), 2: (1, 2), 1: (1, 1)}  # fmt: skip
    assert {k: _mesh_shape(k, "both") for k in expected} == expected


def test_the_mesh_lays_the_devices_out_layers_fastest():
    present = jax.devices()
    k = len(present)
    for mode in ("data", "layers", "both"):
        mesh = device_mesh(k, mode)
        data, layers = _mesh_shape(k, mode)
        assert mesh.devices.shape == (data, layers)
        assert mesh.axis_names == ("data", "layers")
        ids = np.array([[device.id for device in row] for row in mesh.devices])
        np.testing.assert_array_equal(ids, np.array([d.id for d in present]).reshape(data, layers))
    mesh = device_mesh(data=1, layers=k)
    assert mesh.devices.shape == (1, k)
