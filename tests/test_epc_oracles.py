"""Error-optimised inference (ePC, spec §8) against the naive per-layer oracle and the
closed-form equilibrium of linear networks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_close, normal_batch, tiny_network
from naive import (
    ACTIVATIONS,
    batch_energies,
    dense_linear_system,
    error_energy,
    error_feedforward,
    feedforward,
    spec_multipliers,
    weight_list,
)

import mupc


def _mults(network):
    cfg = network.config
    return spec_multipliers(cfg.parameterisation, cfg.input_dim, cfg.width, cfg.depth, cfg.skips)


def _run(solver, network, x, y):
    start = network.feedforward(x)[0]
    return jax.jit(
        lambda net, x, y: solver.run(net, start, x, y, mupc.MSE(), feedforward_start=True)
    )(network, x, y)


def test_gradient_descent_on_errors_equals_the_naive_loop():
    """T steps of gradient descent on ε from ε = 0, per example, through the error-perturbed
    forward pass: errors and states against the naive loop."""
    network = tiny_network(5, 4, activation="tanh")
    x, y = normal_batch(network, 3)
    lr, steps = 0.1, 6
    result = _run(mupc.ErrorInference.gradient_descent(lr, steps), network, x, y)
    weights, mults, phi = weight_list(network), _mults(network), ACTIVATIONS["tanh"]
    grad = jax.jit(jax.grad(lambda e: error_energy(weights, e, x, y, mults, phi, True)))
    errors = [jnp.zeros((3, 5), jnp.float64) for _ in range(4)]
    for _ in range(steps):
        errors = [e - lr * g for e, g in zip(errors, grad(errors), strict=True)]
    states, _ = error_feedforward(weights, x, errors, mults, phi, True)
    assert int(result.steps) == steps
    assert_close(result.errors, jnp.stack(errors), dtype=jnp.float64, k=64)
    assert_close(result.activities, jnp.stack(states), dtype=jnp.float64, k=64)
    assert float(jnp.min(jnp.abs(result.errors[0]))) > 0  # the bottom layer moved in 6 steps


@pytest.mark.parametrize("skips", [True, False])
def test_stationary_point_is_the_pc_equilibrium_of_a_linear_network(skips):
    """At convergence ePC's states are standard PC's equilibrium z* = H_z⁻¹ b (NumPy)."""
    network = tiny_network(3, 3, skips=skips)
    x, y = normal_batch(network, 2)
    solver = mupc.ErrorInference.gradient_descent(0.2, steps=3000)
    result = _run(solver, network, x, y)
    for i in range(2):
        hess, b = dense_linear_system(network, x[i], y[i])
        z_star = np.linalg.solve(hess, b).reshape(3, 3)
        assert_close(result.activities[:, i], z_star, dtype=jnp.float64, k=1e4)


@pytest.mark.parametrize("weight_gradient", ["local", "reparameterised"])
def test_weight_updates_equal_naive_gradients(weight_gradient):
    """`local`: the gradient of the standard PC energy at the final states; `reparameterised`:
    the gradient of F(ε; W) at fixed ε through the forward pass. One SGD step each, against
    jax.grad of the naive energies."""
    network = tiny_network(4, 3, activation="tanh", d=5, c=2)
    x, y = normal_batch(network, 4)
    lr, weight_lr, steps = 0.1, 0.05, 4
    solver = mupc.ErrorInference.gradient_descent(lr, steps, weight_gradient=weight_gradient)
    trainer = mupc.PCTrainer(optimiser=optax.sgd(weight_lr), inference=solver)
    state, metrics = trainer.step(trainer.init(network), x, y)

    weights, mults, phi = weight_list(network), _mults(network), ACTIVATIONS["tanh"]
    errors = [jnp.asarray(e) for e in _run(solver, network, x, y).errors]
    states, _ = error_feedforward(weights, x, errors, mults, phi, True)
    if weight_gradient == "local":

        def mean_energy(w):
            return jnp.mean(batch_energies(w, states, x, y, mults, phi, True, "mse"))

    else:

        def mean_energy(w):
            return error_energy(w, errors, x, y, mults, phi, True) / x.shape[0]

    grads = jax.grad(mean_energy)(weights)
    for got, w, g in zip(weight_list(state.network), weights, grads, strict=True):
        assert_close(got, w - weight_lr * g, dtype=jnp.float64, k=64)
    assert_close(metrics.energy_after, mean_energy(weights), dtype=jnp.float64, k=64)


def test_reparameterised_gradient_at_zero_errors_is_backprop():
    """With T = 0 the errors stay 0 and the reparameterised gradient is exactly backprop's."""
    network = tiny_network(4, 3, activation="relu", d=5, c=2)
    x, y = normal_batch(network, 4)
    solver = mupc.ErrorInference.gradient_descent(0.1, 0, weight_gradient="reparameterised")
    pc = mupc.PCTrainer(optimiser=optax.sgd(0.05), inference=solver)
    pc_state, _ = pc.step(pc.init(network), x, y)
    weights, mults, phi = weight_list(network), _mults(network), ACTIVATIONS["relu"]

    def mean_loss(w):
        _, out = feedforward(w, x, mults, phi, True)
        return jnp.mean(0.5 * jnp.sum((y - out) ** 2, axis=1))

    grads = jax.grad(mean_loss)(weights)
    for got, w, g in zip(weight_list(pc_state.network), weights, grads, strict=True):
        assert_close(got, w - 0.05 * g, dtype=jnp.float64, k=64)
