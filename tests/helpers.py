"""Small builders shared by several test files (the oracles live in `naive.py`)."""

import jax
import jax.numpy as jnp

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
