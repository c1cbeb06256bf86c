"""The device mesh: a 2-D grid of devices with axes ``("data", "layers")``."""

from typing import Literal

import jax
import numpy as np
from jax.sharding import Mesh

ParallelMode = Literal["data", "layers", "both"]

DATA, LAYERS = "data", "layers"


def _mesh_shape(devices: int, parallel: str) -> tuple[int, int]:
    if parallel == "data":
        return devices, 1
    if parallel == "layers":
        return 1, devices
    if parallel == "both":
        data = max(d for d in range(1, int(devices**0.5) + 1) if devices % d == 0)
        return data, devices // data
    raise ValueError(f"`parallel` must be one of 'data', 'layers' or 'both', got {parallel!r}.")


def device_mesh(
    devices: int | None = None,
    parallel: ParallelMode = "data",
    *,
    data: int | None = None,
    layers: int | None = None,
) -> Mesh:
    """A 2-D device mesh with axes ``("data", "layers")`` over the first devices present.

    Either give `devices` (K) and `parallel`: ``"data"`` is a K × 1 mesh, ``"layers"`` 1 × K,
    ``"both"`` the most nearly square factorisation data × layers = K with data ≤ layers
    (4 → 2 × 2, 8 → 2 × 4); or give the axis sizes `data` and `layers` directly.
    With `jax.distributed` initialised, `jax.devices()` lists the devices of every process,
    process by process, and the mesh spans them: the ``"layers"`` axis varies fastest, so it
    stays within one process (one host) whenever it is no longer than that process's devices.

    **Arguments:**

    - `devices`: K, the number of devices to use (default: all of `jax.devices()`).
    - `parallel`: ``"data"``, ``"layers"`` or ``"both"``.
    - `data`, `layers`: explicit axis sizes (override `devices` and `parallel`).

    **Returns:** a `jax.sharding.Mesh` of shape (data, layers).

    **Raises:** `ValueError` if K < 1, K exceeds the devices present, or `parallel` is unknown.
    """
    present = jax.devices()
    if data is not None or layers is not None:
        data = 1 if data is None else data
        layers = 1 if layers is None else layers
        devices = data * layers
    else:
        devices = len(present) if devices is None else devices
        if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
            raise ValueError(f"`devices` must be a positive integer, got {devices!r}.")
        data, layers = _mesh_shape(devices, parallel)
    if data < 1 or layers < 1:
        raise ValueError(f"Mesh axis sizes must be ≥ 1, got data={data}, layers={layers}.")
    if devices > len(present):
        raise ValueError(
            f"Asked for {devices} devices but only {len(present)} "
            f"{present[0].platform.upper()} device(s) are present. Use at most {len(present)} "
            "devices, or on CPU simulate more with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} (set before JAX starts)."
        )
    grid = np.array(present[:devices]).reshape(data, layers)
    return Mesh(grid, (DATA, LAYERS))
