"""Error-optimised inference (ePC; Goemaere, Oliviers, Bogacz & Demeester 2025, arXiv
2505.20137; docs/method.md).

The activities are reparameterised by their prediction errors,

$$z_l = \\mu_l(z_{l-1}) + \\varepsilon_l, \\qquad
F(\\varepsilon; W) = \\sum_{l=1}^{H} \\tfrac12\\lVert\\varepsilon_l\\rVert^2
    + \\ell(\\hat y(\\varepsilon), y),$$

and inference descends F over $\\varepsilon$ from $\\varepsilon = 0$, which is exactly the
feedforward pass. $\\nabla_\\varepsilon F$ goes through the error-perturbed forward pass (one
backward sweep), so the output error reaches every layer in one step instead of H. A
stationary point gives the same states as standard PC's equilibrium (same minimiser, other
coordinates).
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._batch_energy import NetworkEnergy
from .._energy import per_example_sum
from .._states import States
from .base import InferenceResult, InferenceSolver, minimise

WeightGradient = Literal["local", "reparameterised"]
DEFAULT_STEPS = 1
"""T when none is given: ePC reaches every layer in one step, and at H = 128 one small step
beats more (docs/tutorials/epc.md: the perturbation of the states grows with the number of
steps and with depth, and pulls the weight gradient away from backprop's)."""


def _inputs(energy, latent):
    """The input end: the free latent's value, or the clamped inputs."""
    return energy.inputs if latent is None else latent[0]


def _error_energy(energy, latent, errors):
    """$F(z_0, \\varepsilon; W)$ per example, shape (B,): the errors' energy, the output term
    of the error-perturbed forward pass and the prior of a free latent."""
    _, outputs = energy.network.feedforward(_inputs(energy, latent), errors)
    value = 0.5 * per_example_sum(jax.tree.map(jnp.square, errors))
    value = value + energy.output_term(outputs, energy.targets)
    if latent is not None and energy.prior is not None:
        value = value + energy.prior(latent[0])
    return value


class ErrorInference(InferenceSolver):
    """ePC: `steps` iterations of an Optax optimiser on the prediction errors $\\varepsilon$,
    starting from $\\varepsilon = 0$ (the feedforward pass), with per-example gradients
    $\\nabla_{\\varepsilon^{(i)}} F_i$ through the error-perturbed forward pass.

    **Arguments:**

    - `optimiser`: an `optax.GradientTransformation` acting on the errors.
    - `steps`: T, the number of iterations (default 1).
    - `tolerance`: if given, stop early once every example's gradient norm is below it.
    - `weight_gradient`: how the weights learn from the final errors:
      `"local"` (default): the PC gradient $\\partial F / \\partial W$ of the standard PC
      energy at the final states $z(\\varepsilon)$, layer l using only $\\varepsilon_l$ and
      $z_{l-1}$; `"reparameterised"`: the gradient of $F(\\varepsilon; W)$ at fixed
      $\\varepsilon$ through the forward pass (the reference library's variant; at
      $\\varepsilon = 0$ it is exactly backprop's gradient, so it says little about PC
      learning).

    Needs the feedforward activity initialisation (`mupc.FeedforwardInit`).
    """

    optimiser: optax.GradientTransformation
    steps: int = DEFAULT_STEPS
    tolerance: float | None = None
    weight_gradient: WeightGradient = "local"

    def __check_init__(self):
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 0:
            raise ValueError(f"`steps` (T) must be an integer ≥ 0, got {self.steps!r}.")
        if self.tolerance is not None and not (0 < self.tolerance < float("inf")):
            raise ValueError(
                f"`tolerance` must be finite and > 0, or None, got {self.tolerance!r}."
            )
        if self.weight_gradient not in ("local", "reparameterised"):
            raise ValueError(
                f"`weight_gradient` must be 'local' or 'reparameterised', got "
                f"{self.weight_gradient!r}."
            )

    @classmethod
    def gradient_descent(
        cls, error_lr: float, steps: int = DEFAULT_STEPS, **kwargs
    ) -> "ErrorInference":
        """Plain gradient descent on the errors with a per-example step size `error_lr`."""
        if not (0 < error_lr < float("inf")):
            raise ValueError(f"`error_lr` must be finite and > 0, got {error_lr!r}.")
        return cls(optax.sgd(error_lr), steps, **kwargs)

    def default_steps(self, network):
        return self.steps

    def solve(self, energy, states, *, feedforward_start, key=None):
        if not isinstance(energy, NetworkEnergy) or energy.free_output:
            raise ValueError(
                "ErrorInference (ePC) reparameterises one network's forward pass: it needs a "
                "single network with a clamped output end."
            )
        if not feedforward_start:
            raise ValueError(
                "ErrorInference (ePC) starts from ε = 0, the feedforward pass: use the activity "
                "initialisation FeedforwardInit()."
            )
        zeros = jax.tree.map(jnp.zeros_like, states.hidden)

        def gradient(variables):
            return jax.grad(lambda v: jnp.sum(_error_energy(energy, *v)))(variables)

        (latent, errors), taken = minimise(
            self.optimiser, gradient, (states.input, zeros), self.steps, self.tolerance
        )
        hidden, _ = energy.network.feedforward(_inputs(energy, latent), errors)
        return InferenceResult(States(hidden, latent, None), taken, errors)

    def energy_weight_gradients(self, energy, result):
        if self.weight_gradient == "local":
            return super().energy_weight_gradients(energy, result)
        errors = jax.lax.stop_gradient(result.errors)
        latent = jax.lax.stop_gradient(result.activities.input)
        params, static = eqx.partition(energy.network, eqx.is_inexact_array)

        def mean_energy(params):
            bound = eqx.tree_at(lambda e: e.network, energy, eqx.combine(params, static))
            return jnp.mean(_error_energy(bound, latent, errors))

        return jax.value_and_grad(mean_energy)(params)
