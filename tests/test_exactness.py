"""Exact where the math is exact (docs/method.md, "Exact errors").

In float32, bit for bit:

- after the feedforward pass every hidden error is 0;
- a layer whose activity and input have not moved during inference has an error of 0 and a
  weight gradient of 0, so Adam leaves its weights untouched (rounding noise never becomes a
  learning signal);
- ePC with T = 0 is the feedforward pass.

And the float32 run tracks its float64 twin, and a data-parallel step the single-device step,
within tolerances measured here (docs: "Exactness").
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mupc

B = 8


def _network(depth, width=32, dtype=jnp.float32, seed=0, activation="relu"):
    config = mupc.NetworkConfig(784, width, depth, 10, activation, "mupc")
    return mupc.ResNet(config, key=jax.random.key(seed), dtype=dtype)


@pytest.fixture(scope="module")
def digits():
    data = mupc.load_dataset("mnist-sample")
    return data.train_images, data.train_labels


def _batch(digits, start=0, size=B, dtype=jnp.float32):
    x, y = digits
    return jnp.asarray(x[start : start + size], dtype), jnp.asarray(y[start : start + size], dtype)


@pytest.mark.parametrize("depth", [8, 128])
def test_feedforward_errors_are_exactly_zero_in_float32(depth, digits):
    network = _network(depth)
    x, y = _batch(digits)
    activities, outputs = network.feedforward(x)
    errors = mupc.prediction_errors(network, activities, x)
    assert errors.dtype == jnp.float32
    assert np.count_nonzero(np.asarray(errors)) == 0
    per_layer = mupc.layer_energies(network, activities, x, y, mupc.MSE())
    assert np.count_nonzero(np.asarray(per_layer[:-1])) == 0
    assert float(per_layer[-1].min()) > 0.0  # the output error is real


def _moved(activities, reference):
    """Per layer: did any coordinate of z_l change (bitwise)?"""
    return np.asarray(jnp.any(activities != reference, axis=(1, 2)))


@pytest.mark.parametrize("depth", [8, 128])
@pytest.mark.parametrize("skip_inactive", [True, False])
def test_unmoved_layers_have_exactly_zero_errors_and_weight_gradients(depth, skip_inactive, digits):
    """Published inference (GD, 0.5 batch-mean at B = 64, T = H) from the feedforward pass:
    in float32 the bottom layers do not move at all; their errors and weight gradients must
    be exactly 0, and one Adam step must leave their weights bit for bit unchanged."""
    network = _network(depth)
    x, y = _batch(digits)
    loss = mupc.MSE()
    inference = mupc.DiscreteInference.gradient_descent(0.5 / 64, skip_inactive=skip_inactive)
    reference, _ = network.feedforward(x)
    result = jax.jit(
        lambda: inference.run(network, reference, x, y, loss, feedforward_start=True)
    )()
    moved = _moved(result.activities, reference)
    assert moved[-1], "inference must move the top layer"
    # Layer l (index l - 1) has an exactly-zero error when z_l and z_{l-1} did not move.
    still = ~moved & np.concatenate([[True], ~moved[:-1]])
    errors = mupc.prediction_errors(network, result.activities, x, reference)
    per_layer_nonzero = np.asarray(jnp.any(errors != 0, axis=(1, 2)))
    assert not per_layer_nonzero[still].any()
    assert per_layer_nonzero[moved].all()  # moved layers have real (non-zero) errors

    _, grads = inference.weight_gradients(network, result, x, y, loss, reference)
    # hidden_weights[i] is W_{i+2}: its layer index is i + 1 (0-based activities).
    hidden_still = still[1:]
    zero_rows = np.asarray(jnp.all(grads.hidden_weights == 0, axis=(1, 2)))
    assert zero_rows[hidden_still].all()
    assert not zero_rows[~hidden_still].any()
    if depth == 128:
        assert hidden_still.mean() > 0.5, "the published setting leaves most layers unmoved"

    trainer = mupc.PCTrainer(optimiser=optax.adam(0.1), inference=inference)
    state = trainer.init(network)
    new_state, _ = trainer.step(state, x, y)
    unchanged = np.asarray(
        jnp.all(new_state.network.hidden_weights == network.hidden_weights, axis=(1, 2))
    )
    assert unchanged[hidden_still].all()
    assert not unchanged[-1]  # the top layers learn


def test_epc_with_no_steps_is_the_feedforward_pass(digits):
    network = _network(16)
    x, y = _batch(digits)
    loss = mupc.MSE()
    solver = mupc.ErrorInference.gradient_descent(0.1, steps=0)
    reference, _ = network.feedforward(x)
    result = solver.run(network, reference, x, y, loss, feedforward_start=True)
    np.testing.assert_array_equal(result.activities, reference)
    energy, grads = solver.weight_gradients(network, result, x, y, loss, reference)
    assert np.count_nonzero(np.asarray(grads.hidden_weights)) == 0
    assert np.count_nonzero(np.asarray(grads.input_weights)) == 0

    def bp_loss(output_weights):
        net = eqx.tree_at(lambda n: n.output_weights, network, output_weights)
        return jnp.mean(loss(net(x), y))

    expected = jax.grad(bp_loss)(network.output_weights)
    np.testing.assert_allclose(grads.output_weights, expected, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(energy, jnp.mean(loss(network(x), y)), rtol=1e-6)


def test_float32_run_tracks_its_float64_twin(digits):
    """20 published-setting steps (H = 8, N = 32, batch 64, mnist-sample): the float32 and
    float64 runs start from the same weights (drawn in float32) and their training losses stay
    within 2e-3 of each other, relative (measured: at most 7.6e-4 for seed 3)."""
    losses = {}
    for dtype in (jnp.float32, jnp.float64):
        network = _network(8, dtype=dtype, seed=3)
        trainer = mupc.PCTrainer(optimiser=optax.adam(0.1))
        state = trainer.init(network)
        values = []
        for step in range(20):
            x, y = _batch(digits, start=64 * step, size=64, dtype=dtype)
            state, metrics = trainer.step(state, x, y)
            values.append(float(metrics.loss))
        losses[dtype] = np.array(values)
    relative = np.abs(losses[jnp.float32] - losses[jnp.float64]) / losses[jnp.float64]
    assert relative[0] < 1e-6  # same weights, same data: only rounding of the forward pass
    assert relative.max() < 2e-3, relative
