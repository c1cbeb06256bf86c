"""Small builders and checks shared by several test files (the oracles live in `naive.py`)."""

import jax
import jax.numpy as jnp
import numpy as np

import mupc

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_network(width, depth, *, param="mupc", skips=True, activation="linear", d=5, c=3, seed=0):
    """A float64 network with D = `d` inputs and C = `c` outputs."""
    config = mupc.NetworkConfig(d, width, depth, c, activation, param, skips)
    return mupc.ResNet(config, key=jax.random.key(seed), dtype=jnp.float64)


def normal_batch(network, batch, seed=1):
    """Gaussian inputs (batch, D) and Gaussian targets (batch, C) in float64."""
    config = network.config
    x = jax.random.normal(jax.random.key(seed), (batch, config.input_dim), jnp.float64)
    y = jax.random.normal(jax.random.key(seed + 1), (batch, config.output_dim), jnp.float64)
    return x, y


def eps(dtype) -> float:
    """The machine epsilon of a floating `dtype` (2.2e-16 for float64, 1.2e-7 for float32)."""
    return float(np.finfo(np.dtype(dtype)).eps)


def tolerance(*, dtype, scale, k) -> float:
    """The rounding allowance $k \\cdot \\epsilon(\\text{dtype}) \\cdot \\text{scale}$."""
    return k * eps(dtype) * float(scale)


def assert_close(actual, expected, *, dtype, scale=None, k=64.0, err_msg=""):
    """Check $|a - e| \\le k \\cdot \\epsilon(\\text{dtype}) \\cdot \\text{scale}$ elementwise.

    The tolerance is derived from the precision the computation ran in (`dtype`) and the size
    of the quantity (`scale`, by default the largest $|e|$; pass the size of the terms that
    were added up when the result is a small difference of large numbers). `k` is the number
    of roundings allowed for: a few for one formula, more for long chains (inference steps,
    eigensolvers). Tests pick the tightest `k` the computation supports, so a wrong formula
    cannot hide under it.
    """
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    allowed = tolerance(dtype=dtype, scale=max(scale, np.finfo(np.float64).tiny), k=k)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=allowed, err_msg=err_msg)


# ------------------------------------------------ `mupc diagnose`, recomputed independently
# The seeding documented in `mupc.experiments._diagnose`: key = jax.random.key(seed); networks
# from fold_in(key, 2), the trainer state from fold_in(key, 3), the probe batch from
# fold_in(key, 1), training batch t from fold_in(key, 100 + t).


def diagnose_network(seed, d, width, depth, c, *, activation, param, skips):
    """The network `mupc diagnose` measures at one grid point."""
    config = mupc.NetworkConfig(d, width, depth, c, activation, param, skips)
    return mupc.ResNet(config, key=jax.random.fold_in(jax.random.key(seed), 2))


def diagnose_batch(seed, index, d, c, size):
    """Batch `index` (1: the probe, 100 + t: training batch t) of a `mupc diagnose` run."""
    from mupc.experiments import synthetic_task

    return synthetic_task(jax.random.fold_in(jax.random.key(seed), index), d, c, size)


def diagnose_training(network, seed, *, batch_size, steps, weight_lr=0.1, activity_lr=0.5 / 64):
    """The networks after 0, 1, ..., `steps` training steps of a `mupc diagnose` run."""
    import optax

    config = network.config
    trainer = mupc.PCTrainer(
        optax.adam(weight_lr), mupc.DiscreteInference.gradient_descent(activity_lr)
    )
    state = trainer.init(network, jax.random.fold_in(jax.random.key(seed), 3))
    networks = [state.network]
    for t in range(steps):
        x, y = diagnose_batch(seed, 100 + t, config.input_dim, config.output_dim, batch_size)
        state, _ = trainer.step(state, x, y)
        networks.append(state.network)
    return networks


def read_csv(path):
    """The rows of a CSV file as dicts of strings."""
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
