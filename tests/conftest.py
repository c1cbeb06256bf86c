"""Strict JAX settings for the whole suite (as equinox's tests do): 64-bit types are
available, dtype promotion is strict and implicit rank promotion raises, so silent
broadcasting or mixed precision fails loudly."""

import os

import jax
import pytest

# Ray (tests/test_sweep_ray.py) must not send usage statistics from test runs.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# `mupc train` processes started by tests train on one device, as they always did, instead of
# timing one device against one per core (and writing the user's placement cache).
os.environ.setdefault("MUPC_DEVICES", "1")
# The suite compiles hundreds of tiny programs: with LLVM at -O0 it runs about a quarter faster
# (XLA's own graph optimisations still run; only rounding can differ, within every test's
# tolerance). Benchmarks and users keep XLA's default. Read when the CPU backend starts.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def getkey():
    """`getkey()` returns a fresh PRNG key on each call."""
    keys = iter(jax.random.split(jax.random.key(1234), 10_000))
    return lambda: next(keys)


@pytest.fixture
def saved_figures(monkeypatch):
    """The matplotlib figures saved during the test, in order, so that a figure can be checked
    through the data it plots (lines, images, patches) rather than by its file's size."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figures = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figures
