"""The energy of one batch as a function of everything inference moves: what the solvers
descend and what the weights learn from.

`NetworkEnergy` is one network's energy with any clamp pattern (`mupc.Clamp`),

$$F(s) = \\sum_{l=1}^{H} \\tfrac12 \\lVert \\varepsilon_l \\rVert^2
    + w\\, \\ell(\\hat y(z_H), z_L) + P(z_0),$$

where $z_0$ (the input end) and $z_L$ (the output end) are data or free activities, $w$ the
output term's weight and $P$ an optional `mupc.GaussianPrior` on a free $z_0$.
`CoupledEnergy` adds the energies of the two networks of a `mupc.NetworkPair` over shared
activities (bidirectional and hybrid PC).

**Exact errors with a free input end.** Errors are computed from changes relative to the
feedforward pass $\\bar z$ of the input end's starting point $\\bar z_0$ (`mupc._energy`); a free
$z_0$ adds the change of the first prediction,

$$\\varepsilon_1 = \\Delta z_1 - \\Delta\\mu_1, \\qquad
\\Delta\\mu_1 = \\begin{cases} 0 & z_0 = \\bar z_0 \\text{ (this example, bit for bit)} \\\\
\\mu_1(z_0) - \\mu_1(\\bar z_0) & \\text{otherwise,}\\end{cases}$$

so every zero the clamped energy has exactly (a feedforward start, layers inference has not
reached) stays exact while the latent has not moved.
"""

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Int

from ._clamp import Clamp
from ._coupling import Coupling
from ._custom_types import PerExample
from ._energy import (
    errors_from_changes,
    errors_to_layer_energies,
    local_weight_gradients,
    per_example_sum,
)
from ._loss import MSE, Loss
from ._network.base import Activities, PCNetwork
from ._prior import GaussianPrior
from ._slicing import slice_layers
from ._states import States, flip


class _Weighted(Loss):
    """$w\\, \\ell$: an output term with a weight."""

    name: ClassVar[str] = "weighted"
    loss: Loss
    weight: float

    def __call__(self, outputs, targets):
        return self.weight * self.loss(outputs, targets)


def weighted(loss: Loss, weight: float) -> Loss:
    """`loss` itself when `weight` is 1 (the same program as before weights existed), else
    the weighted term."""
    return loss if weight == 1 else _Weighted(loss, float(weight))


def _is_gaussian(loss: Loss) -> bool:
    inner = loss.loss if isinstance(loss, _Weighted) else loss
    return isinstance(inner, MSE)


def _first_row(tree: Activities) -> Array:
    """Row 0 of the first leaf: layer 1's activity, (B, ...)."""
    return jax.tree.leaves(tree)[0][0]


def _add_to_first_row(tree: Activities, row: Array) -> Activities:
    leaves, treedef = jax.tree.flatten(tree)
    leaves[0] = leaves[0].at[0].add(row)
    return jax.tree.unflatten(treedef, leaves)


def _end(end: Array | None) -> Array:
    """The (B, ...) value of a free end stored as (1, B, ...)."""
    assert end is not None, "a free end has a value in the states"
    return end[0]


def _scale(weight: float, tree):
    return jax.tree.map(lambda leaf: weight * leaf, tree)


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def _moved(now: Array, then: Array) -> Array:
    """(B, 1, ...) booleans: whether each example of `now` differs from `then` anywhere."""
    differs = jnp.any(now != then, axis=tuple(range(1, now.ndim)), keepdims=True)
    return differs


class BatchEnergy(eqx.Module):
    """The energy of one batch, bound to its data and reference point, as a function of the
    free activities (a `mupc.States`). Inference solvers (`InferenceSolver.solve`) use only
    this interface."""

    @abc.abstractmethod
    def per_example(self, states: States) -> PerExample:
        """$F_i$ of every example, shape (B,)."""

    @abc.abstractmethod
    def gradient(self, states: States, start: int = 0) -> States:
        """$\\nabla_s \\sum_i F_i$, each example's gradient of its own energy, a `States` like
        `states`. `start` > 0 (only where `supports_layer_slicing`): `states.hidden` holds
        the layers above `start` only, the layers below and the input end have not moved
        (the input end's gradient is then 0)."""

    @abc.abstractmethod
    def weight_gradients(
        self, states: States, errors: Activities | None = None
    ) -> tuple[Array, Any]:
        """`(mean_energy, gradients)` at the final `states` (with the exact hidden `errors`
        when a solver has them): the gradient of each network's weights, local to its
        layers, a pytree like the network (or pair)."""

    @property
    @abc.abstractmethod
    def num_layers(self) -> int:
        """H."""

    @property
    @abc.abstractmethod
    def forward_energy(self) -> "NetworkEnergy":
        """The forward network's own energy (this one for a single network)."""

    @abc.abstractmethod
    def layer_energies(self, states: States, errors: Activities | None = None) -> Array:
        """The forward network's per-layer energies $\\tfrac12\\lVert\\varepsilon_l
        \\rVert^2$, then its output term: shape (H + 1, B)."""

    @property
    def supports_layer_slicing(self) -> bool:
        """Whether `gradient(..., start)` with start > 0 is implemented (layer skipping)."""
        return False

    @property
    def slice_alignment(self) -> int:
        """Layer-slice starts must be multiples of this."""
        return 1

    def for_layers_above(self, start: int) -> "BatchEnergy":
        """This energy prepared for `gradient(..., start)` (see `PCNetwork.for_layers_above`)."""
        return self

    def initial_low(self, states: States) -> Int[Array, ""]:
        """For layer skipping from a feedforward start: the lowest layer (0-based) that can
        have a non-zero gradient besides the top one (H: none; 0: all, e.g. a free latent
        that its prior pulls from the start)."""
        return jnp.asarray(self.num_layers, jnp.int32)


class NetworkEnergy(BatchEnergy):
    """One network's energy with any clamp pattern (module docstring); build it with
    `NetworkEnergy.bind`.

    **Fields:** `network`; `inputs` (B, ...), the clamped input end or the starting point
    $\\bar z_0$ of a free one; `targets` (B, ...), the clamped output end (None when free);
    `output_term` $w \\ell$; `prior` (on a free input end, or None); `reference`,
    `reference_features`, `reference_outputs`: the feedforward pass of `inputs` (activities,
    their features, $\\hat y$); `free_input`, `free_output` (static).
    """

    network: PCNetwork
    inputs: Array
    targets: Array | None
    output_term: Loss
    prior: GaussianPrior | None
    reference: Activities
    reference_features: Activities
    reference_outputs: Array
    free_input: bool = eqx.field(static=True)
    free_output: bool = eqx.field(static=True)

    @classmethod
    def bind(
        cls,
        network: PCNetwork,
        inputs: Array,
        targets: Array | None,
        loss: Loss,
        *,
        clamp: Clamp = Clamp(),
        prior: GaussianPrior | None = None,
        output_weight: float = 1.0,
        reference: Activities | None = None,
        reference_outputs: Array | None = None,
    ) -> "NetworkEnergy":
        """The energy of `network` on one batch.

        **Arguments:**

        - `inputs`: the clamped input end, or the starting point of a free one (B, ...).
        - `targets`: the clamped output end (B, ...); None when `clamp.output` is free.
        - `loss`: the output term $\\ell$; `output_weight`: its weight w.
        - `clamp`: which ends are free; `prior`: on a free input end.
        - `reference`, `reference_outputs`: the feedforward pass of `inputs` when already
          computed (errors are exact relative to it: pass the very arrays the activities
          started from).

        **Raises:** `ValueError` for a prior on a clamped input end, or missing targets.
        """
        if prior is not None and not clamp.free_input:
            raise ValueError("A prior needs a free input end: use mupc.Clamp(input='free').")
        if (targets is None) != clamp.free_output:
            raise ValueError(
                "`targets` must be given exactly when the output end is clamped "
                f"(clamp.output={clamp.output!r})."
            )
        if reference is None or reference_outputs is None:
            reference, reference_outputs = network.feedforward(inputs)
        return cls(
            network=network,
            inputs=inputs,
            targets=targets,
            output_term=weighted(loss, output_weight),
            prior=prior,
            reference=reference,
            reference_features=network.features(reference),
            reference_outputs=reference_outputs,
            free_input=clamp.free_input,
            free_output=clamp.free_output,
        )

    @property
    def num_layers(self) -> int:
        return self.network.num_layers

    @property
    def supports_layer_slicing(self) -> bool:
        return self.network.supports_layer_slicing

    @property
    def forward_energy(self) -> "NetworkEnergy":
        return self

    @property
    def slice_alignment(self) -> int:
        return self.network.slice_alignment

    @property
    def output_is_variable(self) -> bool:
        """A free output end is an activity under a Gaussian output term; under another term
        it has no minimiser, so the term is dropped and the prediction is read instead."""
        return self.free_output and _is_gaussian(self.output_term)

    def for_layers_above(self, start: int) -> "NetworkEnergy":
        if start == 0:
            return self
        return eqx.tree_at(
            lambda e: (e.network, e.reference, e.reference_features),
            self,
            (
                self.network.for_layers_above(start),
                slice_layers(self.reference, start),
                slice_layers(self.reference_features, start),
            ),
        )

    def initial_states(self, hidden: Activities, output: Array | None = None) -> States:
        """`States` with the given hidden activities, the free input end at its starting
        point and a free output end at `output` (default: the prediction of the feedforward
        pass)."""
        latent = self.inputs[None] if self.free_input else None
        if not self.output_is_variable:
            return States(hidden, latent, None)
        output = self.reference_outputs if output is None else output
        return States(hidden, latent, output[None])

    def targets_of(self, states: States) -> Array | None:
        """The output end: the clamped data, or the free output activity (None when the term
        is dropped)."""
        if not self.free_output:
            return self.targets
        return _end(states.output) if self.output_is_variable else None

    def inputs_of(self, states: States) -> Array:
        """The input end: the clamped data, or the free input activity."""
        return _end(states.input) if self.free_input else self.inputs

    def input_change(self, latent: Array) -> Array:
        """$\\Delta\\mu_1$ of the module docstring: exactly 0 for an example whose latent has
        not moved from $\\bar z_0$, with the gradient of $\\mu_1(z_0)$ either way."""
        change = self.network.first_prediction(latent) - _first_row(self.reference)
        unmoved_part = jnp.where(_moved(latent, self.inputs), jnp.zeros_like(change), change)
        return change - jax.lax.stop_gradient(unmoved_part)

    def errors(self, states: States) -> Activities:
        """The exact prediction errors $\\varepsilon_1, \\dots, \\varepsilon_H$."""
        errors = errors_from_changes(
            self.network, states.hidden, self.reference, self.reference_features
        )
        if self.free_input:
            errors = _add_to_first_row(errors, -self.input_change(_end(states.input)))
        return errors

    def _output_energy(self, hidden: Activities, targets: Array | None) -> PerExample:
        if targets is None:
            return jnp.zeros(jax.tree.leaves(hidden)[0].shape[1], jax.tree.leaves(hidden)[0].dtype)
        return self.output_term(self.network.readout(hidden), targets)

    def _prior_energy(self, states: States) -> PerExample | None:
        if self.prior is None or not self.free_input:
            return None
        return self.prior(_end(states.input))

    def per_example(self, states):
        errors = self.errors(states)
        value = 0.5 * per_example_sum(jax.tree.map(jnp.square, errors))
        value = value + self._output_energy(states.hidden, self.targets_of(states))
        prior = self._prior_energy(states)
        return value if prior is None else value + prior

    def gradient(self, states, start=0):
        network = self.network
        targets = self.targets_of(states)
        output_term = self.output_term
        if targets is None:  # a dropped output term: no gradient from the output end
            targets, output_term = self.reference_outputs, weighted(MSE(), 0.0)
        hidden = network.energy_gradient(
            states.hidden, self.reference, self.reference_features, targets, output_term, start
        )
        input_gradient = output_gradient = None
        if self.free_input:
            if start > 0:
                input_gradient = jnp.zeros_like(states.input)
            else:
                latent = _end(states.input)
                change = self.input_change(latent)
                hidden = _add_to_first_row(hidden, -change)
                first_error = _first_row(states.hidden) - _first_row(self.reference) - change
                _, pullback = jax.vjp(network.first_prediction, latent)
                gradient = -pullback(first_error)[0]
                if self.prior is not None:
                    gradient = gradient + self.prior.gradient(latent)
                input_gradient = gradient[None]
        if self.output_is_variable:
            outputs = network.readout(states.hidden)

            def output_energy(y):
                return jnp.sum(self.output_term(outputs, y))

            output_gradient = jax.grad(output_energy)(_end(states.output))[None]
        return States(hidden, input_gradient, output_gradient)

    def initial_low(self, states):
        depth = jnp.asarray(self.num_layers, jnp.int32)
        if not self.free_input or self.prior is None:
            return depth
        pulled = jnp.any(self.prior.gradient(_end(states.input)) != 0)
        return jnp.where(pulled, jnp.asarray(0, jnp.int32), depth)

    def weight_gradients(self, states, errors=None):
        if errors is None:
            errors = self.errors(states)
        targets = self.targets_of(states)
        output_term = self.output_term
        if targets is None:
            targets, output_term = self.reference_outputs, weighted(MSE(), 0.0)
        mean, grads = local_weight_gradients(
            self.network, states.hidden, errors, self.inputs_of(states), targets, output_term
        )
        prior = self._prior_energy(states)
        return (mean if prior is None else mean + jnp.mean(prior)), grads

    def layer_energies(self, states: States, errors: Activities | None = None) -> Array:
        """$\\tfrac12\\lVert\\varepsilon_l\\rVert^2$ per layer, then the output term: (H + 1, B)."""
        errors = self.errors(states) if errors is None else errors
        targets = self.targets_of(states)
        if targets is None:
            hidden = [
                0.5 * jnp.sum(e**2, axis=tuple(range(2, e.ndim))) for e in jax.tree.leaves(errors)
            ]
            return jnp.concatenate([*hidden, self._output_energy(states.hidden, None)[None]])
        return errors_to_layer_energies(
            self.network, states.hidden, errors, targets, self.output_term
        )


class CoupledEnergy(BatchEnergy):
    """The energies of the two networks of a `mupc.NetworkPair` over shared activities,
    $\\alpha_f F_f(s) + \\alpha_b F_b(\\operatorname{flip}(s))$ (see `mupc.Coupling`): the
    backward network sees the layers in reverse order and the ends swapped.

    **Fields:** `forward`, `backward` (each a `NetworkEnergy`), `coupling`.
    """

    forward: NetworkEnergy
    backward: NetworkEnergy
    coupling: Coupling

    def __check_init__(self):
        shapes = [x.shape for x in jax.tree.leaves(self.forward.reference)]
        other = [x.shape for x in jax.tree.leaves(self.backward.reference)]
        if shapes != other:
            raise ValueError(
                f"The two networks of a NetworkPair must have activities of the same shape: got "
                f"{shapes} (forward) and {other} (backward)."
            )
        for energy, end in ((self.forward, "output"), (self.backward, "input")):
            if energy.free_output and not energy.output_is_variable:
                raise ValueError(
                    f"A free {end} end shared by two networks needs a Gaussian (MSE) term on "
                    "it: under cross-entropy or Bernoulli it has no minimiser."
                )

    @property
    def num_layers(self) -> int:
        return self.forward.num_layers

    @property
    def forward_energy(self) -> NetworkEnergy:
        return self.forward

    def per_example(self, states):
        forward, backward = self.coupling.inference_weights
        value = None
        if forward:
            value = forward * self.forward.per_example(states)
        if backward:
            term = backward * self.backward.per_example(flip(states))
            value = term if value is None else value + term
        return value

    def gradient(self, states, start=0):
        forward, backward = self.coupling.inference_weights
        total = None
        if forward:
            total = _scale(forward, self.forward.gradient(states))
        if backward:
            term = _scale(backward, flip(self.backward.gradient(flip(states))))
            total = term if total is None else _add(total, term)
        return total

    def weight_gradients(self, states, errors=None):
        from ._pair import NetworkPair

        forward, backward = self.coupling.learning_weights
        mean_f, grads_f = self.forward.weight_gradients(states)
        mean_b, grads_b = self.backward.weight_gradients(flip(states))
        pair = NetworkPair(self.forward.network, self.backward.network)
        grads = eqx.tree_at(
            lambda p: (p.forward, p.backward),
            pair,
            (_scale(forward, grads_f), _scale(backward, grads_b)),
        )
        alpha_f, alpha_b = self.coupling.inference_weights
        return alpha_f * mean_f + alpha_b * mean_b, grads

    def layer_energies(self, states: States, errors: Activities | None = None) -> Array:
        """The forward network's per-layer energies (see `NetworkEnergy.layer_energies`)."""
        return self.forward.layer_energies(states)


def bind_energy(
    model: Any,
    start: Any,
    *,
    loss: Loss,
    clamp: Clamp,
    prior: GaussianPrior | None = None,
    output_weight: float = 1.0,
    coupling: Coupling | None = None,
) -> tuple[BatchEnergy, States]:
    """The energy of `model` (a network, or a `mupc.NetworkPair` with a `coupling`) on one
    batch, from where inference starts (a `mupc._activity_init.Start`), and the initial
    `States`.

    **Raises:** `ValueError` for a pair without a coupling or a coupling without a pair.
    """
    from ._pair import NetworkPair

    pair = isinstance(model, NetworkPair)
    if pair != (coupling is not None):
        raise ValueError(
            "A mupc.NetworkPair needs a coupling (mupc.Bidirectional() or mupc.Amortised()), "
            "and a coupling needs a NetworkPair"
            + (f"; got a coupling with a {type(model).__name__}." if not pair else ".")
        )
    network = model.forward if pair else model
    forward = NetworkEnergy.bind(
        network,
        start.inputs,
        start.targets,
        loss,
        clamp=clamp,
        prior=prior,
        output_weight=output_weight,
        reference=start.reference,
        reference_outputs=start.outputs,
    )
    states = forward.initial_states(start.states.hidden, start.output_start)
    if not pair:
        return forward, states
    assert coupling is not None
    backward = NetworkEnergy.bind(
        model.backward,
        (forward.reference_outputs if states.output is None else _end(states.output))
        if clamp.free_output
        else start.targets,
        None if clamp.free_input else start.inputs,
        coupling.loss,
        clamp=Clamp(input=clamp.output, output=clamp.input),
    )
    return CoupledEnergy(forward, backward, coupling), states
