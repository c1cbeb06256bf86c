"""Inference (docs/method.md: a training step, linear networks): linear-network equilibria
from dense linear algebra,
the naive per-step loop, solver equivalences and the layer-skipping shortcut."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_close
from naive import (
    ACTIVATIONS,
    dense_linear_system,
    gd_inference,
    optax_inference,
    spec_multipliers,
    weight_list,
)

import mupc


def _problem(key, *, depth=3, width=4, activation="linear", param="mupc", skips=True, batch=3):
    config = mupc.NetworkConfig(5, width, depth, 2, activation, param, skips)
    k1, k2, k3 = jax.random.split(key, 3)
    network = mupc.ResNet(config, key=k1, dtype=jnp.float64)
    x = jax.random.normal(k2, (batch, 5), jnp.float64)
    y = jax.nn.one_hot(jax.random.randint(k3, (batch,), 0, 2), 2, dtype=jnp.float64)
    return network, x, y


@eqx.filter_jit
def _run(solver, network, x, y, loss=mupc.MSE()):
    acts = network.feedforward(x)[0]
    return solver.run(network, acts, x, y, loss, feedforward_start=True)


def _linear_equilibrium(network, x, y):
    """z* = H_z⁻¹ b and F* = ½ rᵀ S⁻¹ r per example, with dense NumPy."""
    cfg = network.config
    _, hidden, last = spec_multipliers(cfg.parameterisation, 5, cfg.width, cfg.depth, cfg.skips)
    n = cfg.width
    jac = [np.eye(n) + hidden * np.asarray(w) for w in network.hidden_weights]
    readout = last * np.asarray(network.output_weights)
    # J_l = ∂ŷ/∂z_l = a_L W_L J_H ⋯ J_{l+1}
    sensitivities = [readout]
    for j in reversed(jac):
        sensitivities.insert(0, sensitivities[0] @ j)
    s = np.eye(2) + sum(jl @ jl.T for jl in sensitivities)
    outputs = np.asarray(network(x))
    z_star, f_star = [], []
    for i in range(x.shape[0]):
        hess, b = dense_linear_system(network, x[i], y[i])
        z_star.append(np.linalg.solve(hess, b).reshape(cfg.depth, n))
        r = np.asarray(y[i]) - outputs[i]
        f_star.append(0.5 * r @ np.linalg.solve(s, r))
    return np.stack(z_star, axis=1), np.array(f_star)


@pytest.mark.parametrize(
    "solver",
    [
        mupc.DiscreteInference.gradient_descent(0.2, steps=3000),
        mupc.ContinuousInference(
            duration=800.0,
            solver=diffrax.Tsit5(),
            dt0=0.1,
            stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-12),
        ),
    ],
    ids=["gradient-descent", "adaptive-tsit5"],
)
def test_linear_network_reaches_closed_form_equilibrium(solver, getkey):
    network, x, y = _problem(getkey())
    z_star, f_star = _linear_equilibrium(network, x, y)
    result = _run(solver, network, x, y)
    np.testing.assert_allclose(result.activities, z_star, rtol=1e-7, atol=1e-9)
    final_energy = mupc.energy(network, result.activities, x, y, mupc.MSE())
    np.testing.assert_allclose(final_energy, f_star, rtol=1e-8)


def test_gradient_descent_equals_naive_loop(getkey):
    network, x, y = _problem(getkey(), depth=5, width=6, activation="tanh")
    lr, steps = 0.1, 7
    result = _run(
        mupc.DiscreteInference.gradient_descent(lr, steps, skip_inactive=False), network, x, y
    )
    mults = spec_multipliers("mupc", 5, 6, 5, True)
    start = [a for a in network.feedforward(x)[0]]
    expected = gd_inference(
        weight_list(network), start, x, y, mults, ACTIVATIONS["tanh"], True, "mse", lr, steps
    )
    np.testing.assert_allclose(result.activities, jnp.stack(expected), rtol=1e-12, atol=1e-14)
    assert int(result.steps) == steps


@pytest.mark.parametrize(
    "optimiser",
    [optax.sgd(0.05), optax.sgd(0.05, momentum=0.9), optax.adam(0.01)],
    ids=["sgd", "momentum", "adam"],
)
@pytest.mark.parametrize("steps", [16, 5, 40])
def test_skipping_inactive_layers_changes_nothing(optimiser, steps, getkey):
    network, x, y = _problem(getkey(), depth=16, width=8, activation="relu")
    full = _run(mupc.DiscreteInference(optimiser, steps, skip_inactive=False), network, x, y)
    fast = _run(mupc.DiscreteInference(optimiser, steps, skip_inactive=True), network, x, y)
    np.testing.assert_allclose(fast.activities, full.activities, rtol=1e-12, atol=1e-14)


def test_only_top_layers_move_early(getkey):
    # The fact the skipping relies on: after t steps from the feedforward point only the
    # top t layers have moved.
    network, x, y = _problem(getkey(), depth=10, width=6, activation="relu")
    start = network.feedforward(x)[0]
    for t in (1, 3, 6):
        solver = mupc.DiscreteInference.gradient_descent(0.1, t, skip_inactive=False)
        moved = jnp.any(_run(solver, network, x, y).activities != start, axis=(1, 2))
        assert moved.tolist() == [False] * (10 - t) + [True] * t


def test_euler_equals_gradient_descent(getkey):
    network, x, y = _problem(getkey(), depth=6, width=5, activation="tanh")
    lr, steps = 0.05, 12
    gd = _run(mupc.DiscreteInference.gradient_descent(lr, steps), network, x, y)
    euler = _run(
        mupc.ContinuousInference(duration=lr * steps, solver=diffrax.Euler(), dt0=lr),
        network,
        x,
        y,
    )
    np.testing.assert_allclose(euler.activities, gd.activities, rtol=1e-10, atol=1e-12)
    assert int(euler.steps) == steps


def test_heun_converges_to_gradient_flow(getkey):
    network, x, y = _problem(getkey(), depth=4, width=5, activation="tanh")
    fine = _run(mupc.ContinuousInference(2.0, diffrax.Heun(), dt0=0.001), network, x, y)
    coarse = _run(mupc.ContinuousInference(2.0, diffrax.Heun(), dt0=0.1), network, x, y)
    euler = _run(mupc.ContinuousInference(2.0, diffrax.Euler(), dt0=0.1), network, x, y)
    heun_error = float(jnp.max(jnp.abs(coarse.activities - fine.activities)))
    euler_error = float(jnp.max(jnp.abs(euler.activities - fine.activities)))
    assert heun_error < euler_error / 5


def test_tolerance_stops_early(getkey):
    network, x, y = _problem(getkey())
    tolerance = 1e-6
    solver = mupc.DiscreteInference.gradient_descent(0.2, steps=5000, tolerance=tolerance)
    result = _run(solver, network, x, y)
    assert 0 < int(result.steps) < 5000
    grad = jax.grad(lambda a: jnp.sum(mupc.energy(network, a, x, y, mupc.MSE())))(result.activities)
    assert float(jnp.max(jnp.sqrt(jnp.sum(grad**2, axis=(0, 2))))) < tolerance
    # One step fewer would not have met the tolerance.
    before = _run(
        mupc.DiscreteInference.gradient_descent(0.2, int(result.steps) - 1), network, x, y
    )
    grad = jax.grad(lambda a: jnp.sum(mupc.energy(network, a, x, y, mupc.MSE())))(before.activities)
    assert float(jnp.max(jnp.sqrt(jnp.sum(grad**2, axis=(0, 2))))) >= tolerance


def test_activity_step_does_not_depend_on_batch(getkey):
    network, x, y = _problem(getkey(), depth=6, width=5, activation="relu", batch=8)
    solver = mupc.DiscreteInference.gradient_descent(0.1, 6)
    alone = _run(solver, network, x[:1], y[:1]).activities[:, 0]
    in_batch = _run(solver, network, x, y).activities[:, 0]
    np.testing.assert_allclose(alone, in_batch, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("optimiser", [optax.sgd(0.1, momentum=0.5), optax.adam(0.01)])
def test_other_optimisers_equal_the_naive_loop(optimiser, getkey):
    """Momentum and Adam on the activities (T = 20 > H) equal the naive per-layer loop that
    applies the same Optax optimiser to each example's gradient, and lower every example's
    energy. The start is off the feedforward pass: there the bottom layers' gradients are
    rounding noise in the naive loop (exactly zero in the library), which Adam amplifies by
    up to lr/ε_Adam = 1e6 (docs/method.md), so equality would only hold to ~1e-4."""
    network, x, y = _problem(getkey(), depth=6, width=8, activation="tanh")
    start = network.feedforward(x)[0] + 0.3 * jax.random.normal(getkey(), (6, 3, 8), jnp.float64)
    solver = mupc.DiscreteInference(optimiser, 20)
    result = eqx.filter_jit(solver.run)(network, start, x, y, mupc.MSE(), feedforward_start=False)
    mults = spec_multipliers("mupc", 5, 8, 6, True)
    expected = optax_inference(
        weight_list(network), list(start), x, y, mults, ACTIVATIONS["tanh"], True, "mse",
        optimiser, 20,
    )  # fmt: skip
    assert_close(result.activities, jnp.stack(expected), dtype=jnp.float64, k=256)
    before = mupc.energy(network, start, x, y, mupc.MSE())
    after = mupc.energy(network, result.activities, x, y, mupc.MSE())
    assert bool(jnp.all(after < before))


def test_zero_steps_returns_the_start(getkey):
    network, x, y = _problem(getkey())
    result = _run(mupc.DiscreteInference.gradient_descent(0.1, 0), network, x, y)
    np.testing.assert_array_equal(result.activities, network.feedforward(x)[0])


def test_published_activity_lr_conversion():
    assert mupc.activity_lr_from_batch_mean(0.5, 64) == 0.0078125
    with pytest.raises(ValueError, match="batch_size"):
        mupc.activity_lr_from_batch_mean(0.5, 0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: mupc.DiscreteInference(optax.sgd(0.1), steps=-1), r"steps.*≥ 0.*-1"),
        (lambda: mupc.DiscreteInference.gradient_descent(-0.1), r"activity_lr.*> 0.*-0.1"),
        (lambda: mupc.DiscreteInference(optax.sgd(0.1), tolerance=0.0), r"tolerance"),
        (lambda: mupc.ContinuousInference(duration=1.0), r"dt0.*required"),
        (lambda: mupc.ContinuousInference(duration=-1.0, dt0=0.1), r"duration.*> 0"),
    ],
)
def test_bad_solver_settings_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
