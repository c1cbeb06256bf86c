"""Will a run fit in memory? An estimate made before anything is allocated, from the shapes
alone (`jax.eval_shape` builds the network and its forward pass without arrays).

$$M \\approx (3 + s)\\,P + 4\\,B\\,A$$

with $P$ the bytes of the weights (the weights, their gradient, and the update's copy, plus
$s$ copies of optimiser state: 2 for Adam, 1 for SGD with momentum or RMSProp-like, 0 for
plain SGD), $A$ the bytes of one example's activities (every layer's output) and $B$ the batch
size (activities, prediction errors, their gradient and the inference optimiser's state). It
is a lower bound of what XLA needs (no temporaries): a run above the memory of its device is
refused up front with the estimate, instead of being accepted and failing or swapping for
minutes.
"""

import math
import os
from typing import NamedTuple

from ._config import RunConfig

# Optimiser state per weight, in copies of the weights.
_STATE_COPIES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2, "rmsprop": 1, "adagrad": 1}


class MemoryEstimate(NamedTuple):
    """Bytes: `weights` ($P$), `activities` ($B\\,A$), and `total` ($M$)."""

    weights: int
    activities: int
    total: int


def _tree_bytes(tree) -> int:
    import jax

    return sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def estimate_memory(
    config: RunConfig, input_shape: tuple[int, ...], output_dim: int
) -> MemoryEstimate:
    """The estimate $M$ of the module docstring for `config` on inputs of `input_shape` (one
    example) with `output_dim` classes; nothing is allocated."""
    import jax
    import jax.numpy as jnp

    dtype = jnp.float64 if config.float64 else jnp.float32
    key = jax.random.key(0)
    network = jax.eval_shape(
        lambda: config.build_network(input_shape, output_dim, key=key, dtype=dtype)
    )
    example = jax.ShapeDtypeStruct((1, *input_shape), dtype)
    activities = jax.eval_shape(lambda net, x: net.feedforward(x), network, example)
    weights = _tree_bytes(network)
    batch = _tree_bytes(activities) * config.batch_size
    copies = 3 + _STATE_COPIES.get(config.optimizer, 2)
    return MemoryEstimate(weights, batch, copies * weights + 4 * batch)


def device_memory(devices: int = 1) -> tuple[int | None, str]:
    """The bytes of memory a run on `devices` devices may use, and what they are: the memory
    of the accelerators (the first `devices`), or the machine's physical memory on CPU (its
    simulated devices share it). None if unknown."""
    import jax

    local = jax.local_devices()[:devices]
    if local and local[0].platform != "cpu":
        limits = [(device.memory_stats() or {}).get("bytes_limit") for device in local]
        known = [int(limit) for limit in limits if limit is not None]
        if len(known) == len(local):
            return sum(known), f"{len(local)} {local[0].platform.upper()} device(s)"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine"
    except (ValueError, OSError, AttributeError):
        return None, "this machine"


def _gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"


def check_fits_in_memory(config: RunConfig, input_shape: tuple[int, ...], output_dim: int):
    """**Raises:** `ValueError` with the estimate if the run cannot fit in memory; returns
    the `MemoryEstimate` otherwise."""
    estimate = estimate_memory(config, input_shape, output_dim)
    limit, where = device_memory(1 if config.devices == "auto" else config.devices)
    if limit is not None and estimate.total > limit:
        raise ValueError(
            f"-H {config.depth} -N {config.width} (batch {config.batch_size}) cannot fit in "
            f"memory: training needs at least {_gib(estimate.total)} (weights "
            f"{_gib(estimate.weights)}, with their gradient and {config.optimizer}'s state; "
            f"activities of a batch {_gib(estimate.activities)}), more than the "
            f"{_gib(limit)} of {where}; lower -H, -N or --batch-size."
        )
    return estimate
