"""Predictive coding training (docs/method.md, "A training step"): initialise, infer, learn,
for every member of the PC family."""

from typing import Any, Literal, NamedTuple, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _published as published
from .._activity_init import ActivityInit, FeedforwardInit, Start, forward_network
from .._batch_energy import BatchEnergy, NetworkEnergy, bind_energy
from .._clamp import Clamp
from .._coupling import Coupling
from .._custom_types import PRNGKeyArray
from .._inference.base import InferenceSolver
from .._inference.discrete import DiscreteInference
from .._loss import MSE, Loss
from .._optimisers import optax_update
from .._prior import GaussianPrior
from .._states import States
from .base import StepMetrics, Trainer, TrainState, _compiled_step, trainable

WeightUpdate = Literal["after-inference", "every-step"]
"""When the weights move: once per batch at the end of inference (PC), or at every inference
step from the same gradient evaluation as the activities (incremental PC)."""


class Inferred(NamedTuple):
    """The outcome of `PCTrainer.infer`.

    **Fields:**

    - `states`: the final `mupc.States`.
    - `inputs`: the input end after inference (B, ...): its data, or the inferred latent.
    - `outputs`: the output end after inference (B, ...): its data, the free output activity,
      or (a free end under a non-Gaussian term) the prediction $\\hat y$.
    - `energy`: each example's energy after inference, shape (B,).
    - `steps`: the solver steps taken.
    """

    states: States
    inputs: Any
    outputs: Any
    energy: Any
    steps: Any


class PCTrainer(Trainer):
    """Predictive coding training (docs/method.md, "A training step"): initialise the activities,
    run inference, then one optimiser step on the weights using $\\partial \\bar F / \\partial W$,
    the gradient of the batch-mean energy at the final activities (or what the solver's
    `energy_weight_gradients` says).

    The same trainer runs every member of the PC family (`docs/method.md`, "The PC family"):
    which ends hold data (`clamp`), the energy's terms (`loss`, `output_weight`, `prior`),
    how the activities start (`activity_init`), a second network over the same activities
    (`coupling`, with a `mupc.NetworkPair`) and when the weights move (`update`).

    **Arguments:**

    - `optimiser`: Optax optimiser for the weights (default Adam, lr 0.1: the published μPC
      setting on MNIST).
    - `inference`: an `InferenceSolver` (default: gradient descent with the published activity
      step 0.5 at batch 64, i.e. 0.0078125 per example, for T = H steps), e.g.
      `mupc.ErrorInference` for ePC or `mupc.LangevinInference` for Monte-Carlo PC.
    - `activity_init`: `FeedforwardInit()` (default), `ZerosInit()`, `NormalInit(std)` or
      `AmortisedInit()`.
    - `loss`: the output term, `MSE()` (default, Gaussian), `CrossEntropy()` or `Bernoulli()`.
    - `record_layer_energies`: also return per-layer energies after inference.
    - `clamp`: which ends are clamped to data (`mupc.Clamp`; default both). With a free input
      end pass `inputs=None` to `step` (or the latent's starting point).
    - `prior`: a `mupc.GaussianPrior` on a free input end (a decoder's latent), or None.
    - `output_weight`: the weight w of the output term.
    - `coupling`: with a `mupc.NetworkPair`, `mupc.Bidirectional(...)` (bPC) or
      `mupc.Amortised()` (hybrid PC); None for a single network.
    - `update`: `"after-inference"` (default) or `"every-step"` (incremental PC: at each of
      the T steps of a `DiscreteInference`, the activities and the weights both step on the
      gradients of the same evaluation; the errors stay exact relative to the feedforward pass
      of the current weights).

    **Raises:** `ValueError` for a prior on a clamped input end, `update="every-step"` with a
    solver other than a fixed-step `DiscreteInference`, or an unknown `update`.
    """

    optimiser: optax.GradientTransformation = optax.adam(published.MUPC_WEIGHT_LR)
    inference: InferenceSolver = DiscreteInference.gradient_descent(published.ACTIVITY_LR)
    activity_init: ActivityInit = FeedforwardInit()
    loss: Loss = MSE()
    record_layer_energies: bool = False
    clamp: Clamp = Clamp()
    prior: GaussianPrior | None = None
    output_weight: float = 1.0
    coupling: Coupling | None = None
    update: WeightUpdate = "after-inference"

    def __check_init__(self):
        if not isinstance(self.clamp, Clamp):
            raise ValueError(f"`clamp` must be a mupc.Clamp, got {self.clamp!r}.")
        if self.prior is not None and not self.clamp.free_input:
            raise ValueError(
                "A prior is an energy term on a free input end: use "
                "clamp=mupc.Clamp(input='free') with it."
            )
        if not (
            isinstance(self.output_weight, int | float) and 0 <= self.output_weight < float("inf")
        ):
            raise ValueError(f"`output_weight` must be finite and ≥ 0, got {self.output_weight!r}.")
        if self.update not in get_args(WeightUpdate):
            raise ValueError(
                f"`update` must be one of {list(get_args(WeightUpdate))}, got {self.update!r}."
            )
        if self.update == "every-step" and not (
            isinstance(self.inference, DiscreteInference) and self.inference.tolerance is None
        ):
            raise ValueError(
                "update='every-step' (incremental PC) steps the weights at each of T fixed "
                "inference steps: use a DiscreteInference without a tolerance, got "
                f"{type(self.inference).__name__}."
            )

    # ------------------------------------------------------------------ the building blocks

    def begin(self, model, inputs, targets, key: PRNGKeyArray) -> tuple[BatchEnergy, Start, States]:
        """The batch's energy, where inference starts, and the initial `States` (traceable)."""
        start = self.activity_init.start(model, inputs, targets, self.clamp, key)
        energy, states = bind_energy(
            model,
            start,
            loss=self.loss,
            clamp=self.clamp,
            prior=self.prior,
            output_weight=self.output_weight,
            coupling=self.coupling,
        )
        return energy, start, states

    def _rebind(self, model, start: Start) -> BatchEnergy:
        """The energy of the same batch and start under other weights (the feedforward
        reference recomputed)."""
        return bind_energy(
            model,
            start._replace(reference=None, outputs=None),
            loss=self.loss,
            clamp=self.clamp,
            prior=self.prior,
            output_weight=self.output_weight,
            coupling=self.coupling,
        )[0]

    def _feedforward_loss(self, energy: BatchEnergy, start: Start, states: States):
        """The logged loss: the forward network's feedforward output term (its clamped
        output end), else the energy at the start."""
        forward = energy.forward_energy
        if forward.targets is None:
            return jnp.mean(energy.per_example(states))
        return jnp.mean(forward.output_term(forward.reference_outputs, forward.targets))

    def _energy_before(self, energy, start, states, loss):
        plain = (
            start.feedforward
            and isinstance(energy, NetworkEnergy)
            and not self.clamp.free_input
            and not self.clamp.free_output
        )
        # Every hidden error is exactly zero at the feedforward pass: the energy is the loss.
        return loss if plain else jnp.mean(energy.per_example(states))

    def _layer_energies(self, energy, result):
        if not self.record_layer_energies:
            return None
        return jnp.mean(energy.layer_energies(result.activities, result.errors), axis=1)

    # ---------------------------------------------------------------------------- training

    def gradients(self, network, inputs, targets, key):
        energy, start, states = self.begin(network, inputs, targets, key)
        loss = self._feedforward_loss(energy, start, states)
        energy_before = self._energy_before(energy, start, states, loss)
        result = self.inference.solve(
            energy, states, feedforward_start=start.feedforward, key=jax.random.fold_in(key, 7)
        )
        result = result._replace(activities=jax.lax.stop_gradient(result.activities))
        energy_after, grads = self.inference.energy_weight_gradients(energy, result)
        metrics = StepMetrics(
            loss=loss,
            energy_before=energy_before,
            energy_after=energy_after,
            inference_steps=result.steps,
            layer_energies=self._layer_energies(energy, result),
        )
        return grads, metrics

    def _step(self, state, inputs, targets):
        if self.update == "after-inference":
            return super()._step(state, inputs, targets)
        return self._incremental_step(state, inputs, targets)

    def _incremental_step(self, state: TrainState, inputs, targets):
        """Incremental PC: T steps, each moving the activities and the weights from one
        evaluation of their gradients."""
        key, gradient_key = jax.random.split(state.key)
        energy, start, states = self.begin(state.network, inputs, targets, gradient_key)
        loss = self._feedforward_loss(energy, start, states)
        energy_before = self._energy_before(energy, start, states, loss)
        solver = self.inference
        assert isinstance(solver, DiscreteInference)
        steps = solver.default_steps(energy) if solver.steps is None else solver.steps
        static = eqx.filter(state.network, eqx.is_inexact_array, inverse=True)

        def iteration(_, carry):
            params, opt_state, states, activity_state = carry
            model = eqx.combine(params, static)
            bound = self._rebind(model, start)
            activity_grads = bound.gradient(states)
            _, weight_grads = bound.weight_gradients(jax.lax.stop_gradient(states))
            updates, activity_state = optax_update(
                solver.optimiser, activity_grads, activity_state, states
            )
            states = optax.apply_updates(states, updates)
            weight_updates, opt_state = optax_update(
                self.optimiser, weight_grads, opt_state, params
            )
            return eqx.apply_updates(params, weight_updates), opt_state, states, activity_state

        carry = (trainable(state.network), state.opt_state, states, solver.optimiser.init(states))
        params, opt_state, states, _ = jax.lax.fori_loop(0, steps, iteration, carry)
        network = eqx.combine(params, static)
        final = self._rebind(network, start)
        per_layer = None
        if self.record_layer_energies:
            per_layer = jnp.mean(final.layer_energies(states), axis=1)
        metrics = StepMetrics(
            loss=loss,
            energy_before=energy_before,
            energy_after=jnp.mean(final.per_example(states)),
            inference_steps=jnp.asarray(steps, jnp.int32),
            layer_energies=per_layer,
        )
        return TrainState(network, opt_state, state.step + 1, key), metrics

    def step(self, state: TrainState, inputs, targets):
        """One training step on a batch: returns `(new_state, StepMetrics)`. `inputs` may be
        None when the input end is free (then it starts where `activity_init` says), and
        `targets` None when the output end is free.

        **Raises:** `ValueError` if the batch does not fit the network (shapes, a clamped end
        without data) or holds NaN or inf.
        """
        inputs, targets = self.prepare_batch(state.network, inputs, targets)
        return _compiled_step(self, state, inputs, targets)

    def prepare_batch(self, model, inputs, targets):
        """Check a batch against the model and the clamp pattern and convert it to the
        model's dtype.

        **Raises:** `ValueError` naming the problem."""
        for name, data, free in (
            ("inputs", inputs, self.clamp.free_input),
            ("targets", targets, self.clamp.free_output),
        ):
            if data is None and not free:
                raise ValueError(
                    f"`{name}` is None but that end is clamped (clamp={self.clamp!r}): pass the "
                    "data, or free the end with mupc.Clamp."
                )
        network = forward_network(model)
        if inputs is not None and targets is not None:
            model.check_batch(inputs, targets)
        elif inputs is None:
            rows = np.shape(targets)[0]
            probe = np.zeros((rows, *network.input_shape), np.dtype(network.dtype))
            network.check_batch(probe, targets, check_finite=False)
            _check_finite(targets=targets)
        else:
            shape = jax.eval_shape(network, jnp.asarray(inputs, network.dtype)).shape
            network.check_batch(inputs, np.zeros(shape, np.dtype(network.dtype)))
        dtype = network.dtype
        convert = lambda x: None if x is None else jnp.asarray(x, dtype)  # noqa: E731
        return convert(inputs), convert(targets)

    # --------------------------------------------------------------------------- inference

    def infer(self, model, inputs=None, targets=None, key: PRNGKeyArray | None = None) -> Inferred:
        """Inference only, with this trainer's clamp pattern, energy, start and solver (the
        weights do not move): e.g. reconstruct an image with a decoder (input end free),
        classify by inference, generate with bPC (output end free).

        **Arguments:** `model` (a network or `mupc.NetworkPair`), the batch (`inputs` None for
        a free input end, `targets` None for a free output end), `key` (random starts,
        Langevin noise; default `jax.random.key(0)`).

        **Returns:** an `Inferred`.
        """
        inputs, targets = self.prepare_batch(model, inputs, targets)
        key = jax.random.key(0) if key is None else key
        return _compiled_infer(self, model, inputs, targets, key)


def _check_finite(**arrays):
    from .._validation import check_finite_arrays

    check_finite_arrays(**{k: v for k, v in arrays.items() if v is not None})


def infer_traced(trainer: PCTrainer, model, inputs, targets, key) -> Inferred:
    """`PCTrainer.infer` without the checks and the compilation (traceable)."""
    energy, start, states = trainer.begin(model, inputs, targets, key)
    result = trainer.inference.solve(
        energy, states, feedforward_start=start.feedforward, key=jax.random.fold_in(key, 7)
    )
    final = result.activities
    forward = energy.forward_energy
    inputs_after = forward.inputs_of(final)
    outputs = forward.targets_of(final)
    if outputs is None:
        outputs = forward.network.readout(final.hidden)
    return Inferred(final, inputs_after, outputs, energy.per_example(final), result.steps)


_compiled_infer = eqx.filter_jit(infer_traced)


__all__ = ["Inferred", "PCTrainer", "WeightUpdate"]
