"""Continuous-time inference: the gradient flow of the energy, integrated with diffrax."""

import diffrax
import jax
import jax.numpy as jnp

from .base import InferenceResult, InferenceSolver


class ContinuousInference(InferenceSolver):
    """Continuous-time inference: integrate $\\dot z = -\\nabla_z F$ (per example) from
    $t = 0$ to `duration` with a diffrax solver.

    Euler with `dt0` = β and `duration` = Tβ is exactly T steps of gradient descent with
    step β.

    **Arguments:**

    - `duration`: the final time $t_1$.
    - `solver`: a diffrax solver (`diffrax.Euler()`, `diffrax.Heun()` (default),
      `diffrax.Tsit5()`, ...).
    - `dt0`: the (initial) step size; required for constant step sizes.
    - `stepsize_controller`: e.g. `diffrax.ConstantStepSize()` (default) or
      `diffrax.PIDController(rtol=1e-3, atol=1e-6)` for adaptive steps.
    - `max_steps`: the most solver steps allowed.
    """

    duration: float
    solver: diffrax.AbstractSolver = diffrax.Heun()
    dt0: float | None = None
    stepsize_controller: diffrax.AbstractStepSizeController = diffrax.ConstantStepSize()
    max_steps: int = 4096

    def __check_init__(self):
        if not (0 < self.duration < float("inf")):
            raise ValueError(f"`duration` must be finite and > 0, got {self.duration!r}.")
        if self.dt0 is None and isinstance(self.stepsize_controller, diffrax.ConstantStepSize):
            raise ValueError("`dt0` is required with a constant step size.")

    def solve(self, energy, states, *, feedforward_start, key=None):
        def vector_field(t, s, args):
            return jax.tree.map(jnp.negative, energy.gradient(s))

        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            self.solver,
            t0=0.0,
            t1=self.duration,
            dt0=self.dt0,
            y0=states,
            stepsize_controller=self.stepsize_controller,
            max_steps=self.max_steps,
            saveat=diffrax.SaveAt(t1=True),
        )
        final = jax.tree.map(lambda y: y[-1], solution.ys)
        return InferenceResult(final, jnp.asarray(solution.stats["num_steps"], jnp.int32))
