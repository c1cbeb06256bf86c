"""Versions of mupc and its numerical stack, for provenance in run and sweep records."""

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """Versions of mupc, JAX, Equinox, Optax, diffrax and NumPy."""
    import diffrax
    import equinox
    import jax
    import numpy
    import optax

    return {
        "mupc": __version__,
        "jax": jax.__version__,
        "equinox": equinox.__version__,
        "optax": optax.__version__,
        "diffrax": diffrax.__version__,
        "numpy": numpy.__version__,
    }
