"""A Gaussian prior on a free latent: the energy term of a free input end."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._custom_types import PerExample, PRNGKeyArray


def _per_example(values: Array) -> Array:
    return jnp.sum(values, axis=tuple(range(1, values.ndim)))


class GaussianPrior(eqx.Module):
    """The energy of a free input end $z_0$ under $\\mathcal N(m, \\sigma^2 I)$,

    $$P(z_0) = \\frac{1}{2\\sigma^2} \\lVert z_0 - m \\rVert^2$$

    per example (the negative log-density up to a constant), so that a decoder has a model of
    its latents and can be sampled: draw $z_0$ from the prior, decode with the feedforward pass.

    **Arguments:** `mean` m and `std` $\\sigma$ (scalars; $1/\\sigma^2$ is the term's weight).

    **Raises:** `ValueError` for a non-finite mean or a std that is not finite and > 0.
    """

    mean: float = 0.0
    std: float = 1.0

    def __check_init__(self):
        if not math.isfinite(self.mean):
            raise ValueError(f"`mean` must be finite, got {self.mean!r}.")
        if not (0 < self.std < float("inf")):
            raise ValueError(f"`std` must be finite and > 0, got {self.std!r}.")

    def __call__(self, latent: Array) -> PerExample:
        """$P(z_0)$ of each example of a (B, ...) latent, shape (B,)."""
        return 0.5 * _per_example(jnp.square((latent - self.mean) / self.std))

    def gradient(self, latent: Array) -> Array:
        """$\\nabla P = (z_0 - m) / \\sigma^2$, shaped like `latent`."""
        return (latent - self.mean) / self.std**2

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...], dtype=None) -> Array:
        """Draws from $\\mathcal N(m, \\sigma^2 I)$ of the given shape, e.g. (B, latent size)."""
        dtype = jnp.result_type(float) if dtype is None else dtype
        return self.mean + self.std * jax.random.normal(key, shape, dtype)
