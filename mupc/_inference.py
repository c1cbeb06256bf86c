"""Inference: minimise the energy over the hidden activities (spec §4, step 2).

The activity step is defined **per example**: solvers follow $-\\nabla_{z^{(i)}} F_i$ for every
example i, the gradient of that example's own energy, so the dynamics do not depend on the
batch size. The reference implementation steps on the gradient of the batch-*mean* energy;
convert its activity learning rates with `activity_lr_from_batch_mean`.
"""

import abc
from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int

from ._custom_types import Activities, Inputs, Targets
from ._energy import energy_from
from ._loss import Loss
from ._network import ResNet
from ._optimisers import optax_update

# Number of static phases used to skip layers whose activity gradient is still zero.
_NUM_PHASES = 8


def activity_lr_from_batch_mean(activity_lr: float, batch_size: int) -> float:
    """Convert a published activity learning rate to this library's per-example convention.

    The reference steps each example by $\\beta/B$ times its own gradient (it differentiates the
    batch-mean energy), so $\\beta_{\\text{ours}} = \\beta_{\\text{published}} / B$: the
    published 0.5 at batch 64 is 0.0078125.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be ≥ 1, got {batch_size!r}.")
    return activity_lr / batch_size


class InferenceResult(NamedTuple):
    """The outcome of inference: the final `activities` (H, B, N) and the number of
    solver `steps` taken (a scalar integer array)."""

    activities: Activities
    steps: Int[Array, ""]


def _activity_gradient(network, activities, below, targets, loss, start=0):
    """$\\nabla_z \\sum_i F_i$: each example's gradient of its own energy."""

    def total(top):
        return jnp.sum(energy_from(network, top, below, targets, loss, start))

    return jax.grad(total)(activities)


class InferenceSolver(eqx.Module):
    """Minimises the energy over the activities, starting from `activities`."""

    @abc.abstractmethod
    def run(
        self,
        network: ResNet,
        activities: Activities,
        inputs: Inputs,
        targets: Targets,
        loss: Loss,
        *,
        feedforward_start: bool,
    ) -> InferenceResult:
        """Run inference. `feedforward_start` says the activities come from the feedforward
        pass (all hidden errors zero), which lets solvers skip work that is known to be zero."""


def _phases(steps: int, depth: int, num_phases: int) -> list[tuple[int, int, int]]:
    """Static schedule `(first_step, end_step, first_active_layer)` for skipping layers.

    From a feedforward start at step t only the top t + 1 layers have a non-zero gradient,
    so the steps are cut into at most `num_phases` chunks; in each chunk only the layers
    that can be active by its last step are updated.
    """
    chunk = max(1, -(-depth // num_phases))
    phases, t = [], 0
    while t < steps:
        active = min(t + chunk, depth)
        end = steps if active == depth else min(t + chunk, steps)
        phases.append((t, end, depth - active))
        t = end
    return phases


def _slice_state(state, full_shape, start):
    """The rows `start:` of every optimiser-state leaf shaped like the activities."""
    return jax.tree.map(lambda leaf: leaf[start:] if jnp.shape(leaf) == full_shape else leaf, state)


def _merge_state(full_state, top_state, full_shape, start):
    return jax.tree.map(
        lambda full, top: full.at[start:].set(top) if jnp.shape(full) == full_shape else top,
        full_state,
        top_state,
    )


class DiscreteInference(InferenceSolver):
    """`steps` iterations of an Optax optimiser on the activities, compiled as one loop.

    Each iteration is $z \\leftarrow z + \\text{optimiser}(\\nabla_z F)$ with per-example
    gradients. Plain gradient descent (`optax.sgd(activity_lr)`) is the published setting;
    momentum or Adam work the same way.

    **Arguments:**

    - `optimiser`: an `optax.GradientTransformation` acting on the activities.
    - `steps`: T, the number of iterations; None means T = H (the published choice).
    - `tolerance`: if given, stop early once every example's activity-gradient norm
      $\\lVert\\nabla_{z^{(i)}} F_i\\rVert$ is below it.
    - `skip_inactive`: from a feedforward start, skip layers whose gradient is still exactly
      zero (at step t only the top t + 1 layers can move). Equal to the full computation up to
      rounding for any optimiser whose update is zero while every gradient so far has been zero
      (sgd, momentum, Adam, ...). Ignored with a `tolerance` or a non-feedforward start.
    """

    optimiser: optax.GradientTransformation
    steps: int | None = None
    tolerance: float | None = None
    skip_inactive: bool = True

    def __check_init__(self):
        if self.steps is not None and (
            not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 0
        ):
            raise ValueError(f"`steps` (T) must be an integer ≥ 0 or None, got {self.steps!r}.")
        if self.tolerance is not None and not self.tolerance > 0:
            raise ValueError(f"`tolerance` must be > 0 or None, got {self.tolerance!r}.")

    @classmethod
    def gradient_descent(
        cls, activity_lr: float, steps: int | None = None, **kwargs
    ) -> "DiscreteInference":
        """Plain gradient descent with a per-example step size `activity_lr`."""
        if not 0 < activity_lr < float("inf"):
            raise ValueError(f"`activity_lr` must be finite and > 0, got {activity_lr!r}.")
        return cls(optax.sgd(activity_lr), steps, **kwargs)

    def run(self, network, activities, inputs, targets, loss, *, feedforward_start):
        num_steps = network.config.depth if self.steps is None else self.steps
        if self.tolerance is not None:
            return self._run_until_converged(network, activities, inputs, targets, loss, num_steps)
        state = self.optimiser.init(activities)
        if self.skip_inactive and feedforward_start:
            phases = _phases(num_steps, network.config.depth, _NUM_PHASES)
        else:
            phases = [(0, num_steps, 0)] if num_steps > 0 else []
        # A Python loop over at most _NUM_PHASES static phases, not over steps or layers.
        for first_step, end_step, start in phases:
            below = inputs if start == 0 else activities[start - 1]
            top = activities[start:]
            top_state = _slice_state(state, activities.shape, start)

            def iteration(_, carry, below=below, start=start):
                top, top_state = carry
                grad = _activity_gradient(network, top, below, targets, loss, start)
                updates, top_state = optax_update(self.optimiser, grad, top_state, top)
                return optax.apply_updates(top, updates), top_state

            top, top_state = jax.lax.fori_loop(first_step, end_step, iteration, (top, top_state))
            activities = activities.at[start:].set(top) if start > 0 else top
            state = _merge_state(state, top_state, activities.shape, start)
        return InferenceResult(activities, jnp.asarray(num_steps, jnp.int32))

    def _run_until_converged(self, network, activities, inputs, targets, loss, num_steps):
        def gradient(z):
            return _activity_gradient(network, z, inputs, targets, loss)

        def not_converged(carry):
            _, _, grad, step = carry
            norms = jnp.sqrt(jnp.sum(grad**2, axis=(0, 2)))
            return (step < num_steps) & (jnp.max(norms) >= self.tolerance)

        def iteration(carry):
            z, state, grad, step = carry
            updates, state = optax_update(self.optimiser, grad, state, z)
            z = optax.apply_updates(z, updates)
            return z, state, gradient(z), step + 1

        init = (activities, self.optimiser.init(activities), gradient(activities), 0)
        activities, _, _, steps = jax.lax.while_loop(not_converged, iteration, init)
        return InferenceResult(activities, jnp.asarray(steps, jnp.int32))


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
        if not self.duration > 0:
            raise ValueError(f"`duration` must be > 0, got {self.duration!r}.")
        if self.dt0 is None and isinstance(self.stepsize_controller, diffrax.ConstantStepSize):
            raise ValueError("`dt0` is required with a constant step size.")

    def run(self, network, activities, inputs, targets, loss, *, feedforward_start):
        def vector_field(t, z, args):
            return -_activity_gradient(network, z, inputs, targets, loss)

        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            self.solver,
            t0=0.0,
            t1=self.duration,
            dt0=self.dt0,
            y0=activities,
            stepsize_controller=self.stepsize_controller,
            max_steps=self.max_steps,
            saveat=diffrax.SaveAt(t1=True),
        )
        return InferenceResult(solution.ys[-1], jnp.asarray(solution.stats["num_steps"], jnp.int32))
