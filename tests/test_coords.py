"""The PC coordinate check: its numbers against direct computations, then the μP claim."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import PNG_SIGNATURE

from mupc._cli import main
from mupc._diagnostics.coords import QUANTITIES, coordinate_check
from mupc._inference import DiscreteInference
from mupc._network import NetworkConfig, ResNet
from mupc._training import PCTrainer


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def _batch(d, c, batch=8, seed=1, dtype=jnp.float32):
    x = jax.random.normal(jax.random.key(seed), (batch, d), dtype)
    y = jax.nn.one_hot(jnp.arange(batch) % c, c, dtype=dtype)
    return x, y


def test_without_inference_the_step_is_the_backprop_readout_step():
    """With T = 0 the activities stay at the feedforward pass, hidden errors are zero and
    only the readout learns, with exactly backprop's gradient of the MSE loss."""
    network = ResNet(NetworkConfig(6, 5, 3, 2, "tanh"), key=jax.random.key(0), dtype=jnp.float32)
    x, y = _batch(6, 2)
    lr = 0.3
    trainer = PCTrainer(optax.sgd(lr), DiscreteInference.gradient_descent(0.1, steps=0))
    _, record = coordinate_check(trainer, trainer.init(network), x, y, steps=1)

    activities, outputs = network.feedforward(x)
    expected_activity = [_rms(a) for a in activities] + [_rms(outputs)]
    np.testing.assert_allclose(record.activity[0], expected_activity, rtol=1e-5)
    np.testing.assert_allclose(record.error[0, :-1], 0.0, atol=1e-7)
    np.testing.assert_allclose(record.error[0, -1], _rms(y - outputs), rtol=1e-5)
    np.testing.assert_allclose(record.activity_update[0], 0.0)

    def mean_loss(w):
        top = activities[-1]
        prediction = network.multipliers.output * (network.activation(top) @ w.T)
        return jnp.mean(0.5 * jnp.sum((y - prediction) ** 2, -1))

    readout_update = lr * jax.grad(mean_loss)(network.output_weights)
    np.testing.assert_allclose(record.weight_update[0, :-1], 0.0, atol=1e-6)  # rounding
    np.testing.assert_allclose(record.weight_update[0, -1], _rms(readout_update), rtol=1e-5)
    new_outputs = network.multipliers.output * (
        network.activation(activities[-1]) @ (network.output_weights - readout_update).T
    )
    np.testing.assert_allclose(record.feedforward_update[0, :-1], 0.0, atol=1e-6)
    np.testing.assert_allclose(
        record.feedforward_update[0, -1], _rms(new_outputs - outputs), rtol=1e-4
    )


def test_first_adam_step_moves_every_weight_by_the_learning_rate():
    """Adam's first update is lr·g/(|g| + ε) ≈ ±lr entrywise, so every layer's RMS is lr
    once inference has reached every layer (T = H, float64 so no error underflows)."""
    with jax.enable_x64(True):
        config = NetworkConfig(6, 5, 3, 2, "linear")
        network = ResNet(config, key=jax.random.key(0), dtype=jnp.float64)
        x, y = _batch(6, 2, dtype=jnp.float64)
        trainer = PCTrainer(optax.adam(0.01), DiscreteInference.gradient_descent(0.2))
        _, record = coordinate_check(trainer, trainer.init(network), x, y, steps=2)
        np.testing.assert_allclose(record.weight_update[0], 0.01, rtol=1e-3)
        assert np.all(record.activity_update[0] > 0)
        np.testing.assert_array_equal(record.step, [0, 1])


def test_mupc_activities_stay_order_one_and_sp_ones_explode_with_depth():
    """Spec §6: the μPC forward pass keeps RMS activities O(1) whatever N and H; under sp
    they grow with depth."""
    x, y = _batch(20, 10)

    def activity(param, width, depth):
        network = ResNet(
            NetworkConfig(20, width, depth, 10, "relu", param),
            key=jax.random.key(0),
            dtype=jnp.float32,
        )
        trainer = PCTrainer(inference=DiscreteInference.gradient_descent(0.1, steps=0))
        _, record = coordinate_check(trainer, trainer.init(network), x, y, steps=1)
        return float(jnp.mean(record.activity[0, :-1]))

    mupc = [activity("mupc", 16, 4), activity("mupc", 128, 48)]
    assert max(mupc) / min(mupc) < 1.6
    assert all(0.5 < value < 2.0 for value in mupc)
    assert activity("sp", 128, 48) > 5 * activity("sp", 128, 4)


def test_rejects_bad_arguments():
    network = ResNet(NetworkConfig(3, 2, 2, 1), key=jax.random.key(0), dtype=jnp.float32)
    trainer = PCTrainer()
    with pytest.raises(ValueError, match="steps"):
        coordinate_check(trainer, trainer.init(network), jnp.ones((1, 3)), jnp.ones((1, 1)), 0)


def test_cli_coords_smoke(tmp_path):
    code = main(
        [
            "diagnose", "coords", "--out", str(tmp_path), "--widths", "4", "--depths", "2",
            "--params", "mupc", "sp", "--input-dim", "5", "--output-dim", "2", "--steps", "2",
            "--batch-size", "4", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    with open(tmp_path / "coords.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"param", "width", "depth", "step", "quantity", "layer", "rms"} <= set(rows[0])
    assert {row["quantity"] for row in rows} == set(QUANTITIES)
    # per param and step: activity, error, weight, feedforward updates have L = 3 layers and
    # activity updates H = 2.
    assert len(rows) == 2 * 2 * (4 * 3 + 2)
    assert all(float(row["rms"]) >= 0 for row in rows)
    assert (tmp_path / "coords.png").read_bytes()[:8] == PNG_SIGNATURE
