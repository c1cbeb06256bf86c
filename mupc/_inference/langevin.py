"""Monte-Carlo PC: Langevin dynamics on the activities (Oliviers et al. 2024)."""

import math

import jax
import jax.numpy as jnp

from .base import InferenceResult, InferenceSolver


def _noise(key, tree):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    drawn = [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)]
    return jax.tree.unflatten(treedef, drawn)


class LangevinInference(InferenceSolver):
    """`steps` steps of the unadjusted Langevin algorithm on every free activity,

    $$s \\leftarrow s - \\eta\\, \\nabla_s F(s) + \\sqrt{2 \\eta \\tau}\\, \\xi, \\qquad
    \\xi \\sim \\mathcal N(0, I),$$

    with per-example gradients. For small $\\eta$ the chain samples the posterior
    $p(s \\mid \\text{clamped data}) \\propto \\exp(-F(s)/\\tau)$ of the network's generative
    model (for a linear network with Gaussian terms, the closed-form Gaussian posterior); at
    $\\tau = 0$ it is gradient descent. Used in training (`mupc.PCTrainer`), the weights learn
    from the final sample: a one-sample estimate of the posterior-averaged gradient
    (Monte-Carlo PC).

    **Arguments:**

    - `step_size`: $\\eta$, per example.
    - `steps`: the number of steps (None: H).
    - `temperature`: $\\tau$ (default 1).

    Needs a PRNG key (`solve(..., key=...)`; the trainers pass one).
    """

    step_size: float
    steps: int | None = None
    temperature: float = 1.0

    def __check_init__(self):
        if not (0 < self.step_size < float("inf")):
            raise ValueError(f"`step_size` must be finite and > 0, got {self.step_size!r}.")
        if self.steps is not None and (
            not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 0
        ):
            raise ValueError(f"`steps` must be an integer ≥ 0 or None, got {self.steps!r}.")
        if not (0 <= self.temperature < float("inf")):
            raise ValueError(f"`temperature` must be finite and ≥ 0, got {self.temperature!r}.")

    def solve(self, energy, states, *, feedforward_start, key=None):
        if key is None:
            raise ValueError("LangevinInference draws noise: pass a PRNG key (`key=`).")
        num_steps = self.default_steps(energy) if self.steps is None else self.steps
        scale = math.sqrt(2 * self.step_size * self.temperature)

        def step(t, s):
            gradient = energy.gradient(s)
            noise = _noise(jax.random.fold_in(key, t), s)
            return jax.tree.map(
                lambda x, g, n: x - self.step_size * g + scale * n, s, gradient, noise
            )

        final = jax.lax.fori_loop(0, num_steps, step, states)
        return InferenceResult(final, jnp.asarray(num_steps, jnp.int32))
