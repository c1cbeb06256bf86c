"""Error-optimised inference (ePC, docs/method.md) against independent oracles: a naive per-layer
implementation of the error-perturbed forward pass, the closed-form equilibrium of linear
networks, and the first-order relation to backprop."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from naive import (
    ACTIVATIONS,
    dense_linear_system,
    epc_inference,
    epc_states,
    local_weight_gradients,
    spec_multipliers,
    weight_list,
)

import mupc

D, C = 5, 3
COMBOS = list(itertools.product(["sp", "mupc", "ntp"], [True, False], ["mse", "cross-entropy"]))


def _problem(key, *, depth=4, width=6, activation="tanh", param="mupc", skips=True, batch=4):
    config = mupc.NetworkConfig(D, width, depth, C, activation, param, skips)
    k1, k2, k3 = jax.random.split(key, 3)
    network = mupc.ResNet(config, key=k1, dtype=jnp.float64)
    x = jax.random.normal(k2, (batch, D), jnp.float64)
    y = jax.nn.one_hot(jax.random.randint(k3, (batch,), 0, C), C, dtype=jnp.float64)
    return network, x, y


def _naive_args(network):
    cfg = network.config
    mults = spec_multipliers(cfg.parameterisation, D, cfg.width, cfg.depth, cfg.skips)
    return weight_list(network), mults, ACTIVATIONS[cfg.activation], cfg.skips


@eqx.filter_jit
def _run(solver, network, x, y, loss):
    reference = network.feedforward(x)[0]
    result = solver.run(network, reference, x, y, loss, feedforward_start=True)
    energy, grads = solver.weight_gradients(network, result, x, y, loss, reference)
    return result, energy, grads


@pytest.mark.parametrize("param, skips, loss_name", COMBOS)
def test_trajectory_and_local_gradient_equal_the_naive_implementation(
    param, skips, loss_name, getkey
):
    """Five GD steps on ε: the errors, the states z(ε) and the local weight gradient equal a
    per-layer Python implementation (gradient by autodiff of the naive energy)."""
    network, x, y = _problem(getkey(), param=param, skips=skips)
    loss = mupc._loss.resolve_loss(loss_name)
    lr, steps = 0.2, 5
    result, energy, grads = _run(
        mupc.ErrorInference.gradient_descent(lr, steps), network, x, y, loss
    )
    weights, mults, phi, skips = _naive_args(network)
    errors = epc_inference(weights, x, y, mults, phi, skips, loss_name, lr, steps)
    states, _ = epc_states(weights, errors, x, mults, phi, skips)
    np.testing.assert_allclose(result.errors, jnp.stack(errors), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.activities, jnp.stack(states), rtol=1e-10, atol=1e-12)
    assert int(result.steps) == steps
    expected = local_weight_gradients(weights, states, x, y, mults, phi, skips, loss_name)
    np.testing.assert_allclose(grads.input_weights, expected[0], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(
        grads.hidden_weights, jnp.stack(expected[1:-1]), rtol=1e-8, atol=1e-12
    )
    np.testing.assert_allclose(grads.output_weights, expected[-1], rtol=1e-8, atol=1e-12)
    assert float(energy) > 0


def test_errors_gradient_equals_finite_differences(getkey):
    """One GD step of size η from ε = 0 moves ε by -η ∇F(0): check ∇F against central
    differences of the naive energy at ε = 0, coordinate by coordinate."""
    network, x, y = _problem(getkey(), activation="relu")
    lr = 1.0
    result, _, _ = _run(mupc.ErrorInference.gradient_descent(lr, 1), network, x, y, mupc.MSE())
    weights, mults, phi, skips = _naive_args(network)
    zeros = [jnp.zeros((x.shape[0], network.config.width), jnp.float64)] * network.config.depth

    def total(errors):
        _, outputs = epc_states(weights, errors, x, mults, phi, skips)
        return float(0.5 * sum(jnp.sum(e * e) for e in errors) + 0.5 * jnp.sum((y - outputs) ** 2))

    eps = 1e-6
    for layer, example, unit in [(0, 0, 0), (1, 2, 3), (3, 3, 5), (2, 1, 1)]:
        bump = [e.at[example, unit].set(eps) if i == layer else e for i, e in enumerate(zeros)]
        drop = [e.at[example, unit].set(-eps) if i == layer else e for i, e in enumerate(zeros)]
        fd = (total(bump) - total(drop)) / (2 * eps)
        assert -float(result.errors[layer, example, unit]) / lr == pytest.approx(
            fd, rel=1e-6, abs=1e-9
        )


def test_stationary_point_is_the_pc_equilibrium_of_a_linear_network(getkey):
    """Converged ePC states equal z* = H_z⁻¹ b, solved densely with NumPy (docs/method.md)."""
    network, x, y = _problem(getkey(), activation="linear", depth=3, width=4)
    solver = mupc.ErrorInference(optax.sgd(0.3), steps=20_000, tolerance=1e-11)
    result, _, _ = _run(solver, network, x, y, mupc.MSE())
    assert int(result.steps) < 20_000, "ePC must converge"
    for i in range(x.shape[0]):
        hess, b = dense_linear_system(network, x[i], y[i])
        z_star = np.linalg.solve(hess, b).reshape(3, 4)
        np.testing.assert_allclose(result.activities[:, i], z_star, rtol=1e-8, atol=1e-9)


def test_one_small_step_gives_the_backprop_direction(getkey):
    """From ε = 0 one GD step gives ε_l = -η ∂ℓ/∂z_l, so the local gradient of every hidden
    and input layer is η g_BP,l + O(η²), and the readout's is g_BP,L + O(η)."""
    network, x, y = _problem(getkey(), activation="tanh", depth=6, width=8)
    eta = 1e-6
    trainer = mupc.PCTrainer(inference=mupc.ErrorInference.gradient_descent(eta, 1))
    signal = mupc.learning_signal(trainer, network, x, y)
    np.testing.assert_allclose(signal.cosine, 1.0, atol=1e-6)
    np.testing.assert_allclose(signal.ratio[:-1], eta, rtol=1e-4)
    np.testing.assert_allclose(signal.ratio[-1], 1.0, rtol=1e-4)


def test_reparameterised_gradient_at_zero_errors_is_backprop(getkey):
    network, x, y = _problem(getkey(), activation="relu")
    solver = mupc.ErrorInference.gradient_descent(0.1, 0, weight_gradient="reparameterised")
    _, energy, grads = _run(solver, network, x, y, mupc.MSE())
    weights, mults, phi, skips = _naive_args(network)

    def bp_loss(ws):
        _, outputs = epc_states(ws, [0.0] * network.config.depth, x, mults, phi, skips)
        return jnp.mean(0.5 * jnp.sum((y - outputs) ** 2, axis=1))

    expected = jax.grad(bp_loss)(weights)
    np.testing.assert_allclose(grads.input_weights, expected[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        grads.hidden_weights, jnp.stack(expected[1:-1]), rtol=1e-10, atol=1e-14
    )
    np.testing.assert_allclose(energy, bp_loss(weights), rtol=1e-12)


def test_pc_trainer_step_with_epc_equals_adam_on_the_naive_gradient(getkey):
    network, x, y = _problem(getkey(), activation="relu", param="mupc")
    trainer = mupc.PCTrainer(
        optimiser=optax.adam(0.01), inference=mupc.ErrorInference.gradient_descent(0.1, 3)
    )
    state, metrics = trainer.step(trainer.init(network), x, y)
    weights, mults, phi, skips = _naive_args(network)
    errors = epc_inference(weights, x, y, mults, phi, skips, "mse", 0.1, 3)
    states, _ = epc_states(weights, errors, x, mults, phi, skips)
    grads = local_weight_gradients(weights, states, x, y, mults, phi, skips, "mse")
    optimiser = optax.adam(0.01)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        updates, _ = optimiser.update(grads, optimiser.init(weights), weights)
    expected = optax.apply_updates(weights, updates)
    np.testing.assert_allclose(state.network.hidden_weights, jnp.stack(expected[1:-1]), rtol=1e-9)
    np.testing.assert_allclose(state.network.output_weights, expected[-1], rtol=1e-9)
    assert int(metrics.inference_steps) == 3


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"`steps`.*got -1"):
        mupc.ErrorInference(optax.sgd(0.1), steps=-1)
    with pytest.raises(ValueError, match=r"weight_gradient.*'local' or 'reparameterised'.*'bp'"):
        mupc.ErrorInference(optax.sgd(0.1), weight_gradient="bp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"error_lr.*inf"):
        mupc.ErrorInference.gradient_descent(float("inf"))
    with pytest.raises(ValueError, match=r"FeedforwardInit"):
        trainer = mupc.PCTrainer(
            inference=mupc.ErrorInference.gradient_descent(0.1), activity_init=mupc.NormalInit()
        )
        network = mupc.ResNet(mupc.NetworkConfig(3, 4, 2, 2), key=jax.random.key(0))
        trainer.step(trainer.init(network), np.ones((2, 3)), np.eye(2))
