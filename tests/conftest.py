"""Strict JAX settings for the whole suite (as equinox's tests do): 64-bit types are
available, dtype promotion is strict and implicit rank promotion raises, so silent
broadcasting or mixed precision fails loudly."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """`getkey()` returns a fresh PRNG key on each call."""
    keys = iter(jax.random.split(jax.random.key(1234), 10_000))
    return lambda: next(keys)
