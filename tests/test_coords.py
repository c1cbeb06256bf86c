"""The PC coordinate check: its numbers against direct computations, then the μP claim."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import PNG_SIGNATURE, assert_close, diagnose_batch, diagnose_network, read_csv
from naive import (
    ACTIVATIONS,
    batch_energies,
    feedforward,
    gd_inference,
    layer_errors,
    spec_multipliers,
    weight_list,
)

from mupc import Coordinates, DiscreteInference, NetworkConfig, PCTrainer, ResNet, coordinate_check
from mupc._cli import main

QUANTITIES = Coordinates._fields[1:]  # activity, error, activity_update, ... (after `step`)


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
    """docs/method.md: the μPC forward pass keeps RMS activities O(1) whatever N and H; under sp
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


def _rms_layers(arrays):
    return [_rms(a) for a in arrays]


def _naive_coordinates(network, x, y, steps, weight_lr=0.1, activity_lr=0.5 / 64):
    """The coordinate check recomputed with the naive per-layer oracle: feedforward pass,
    T = H steps of per-example gradient descent, errors, Adam (Optax, on the list of weight
    matrices) on the gradient of the batch-mean energy, and the change of the feedforward
    pass. Returns {quantity: array (steps, layers)}."""
    cfg = network.config
    mults = spec_multipliers(cfg.parameterisation, cfg.input_dim, cfg.width, cfg.depth, True)
    phi = ACTIVATIONS[cfg.activation]
    weights = weight_list(network)
    adam = optax.adam(weight_lr)
    opt_state = adam.init(weights)
    record = {name: [] for name in QUANTITIES}
    for _ in range(steps):
        start, outputs = feedforward(weights, x, mults, phi, True)
        final = gd_inference(weights, start, x, y, mults, phi, True, "mse", activity_lr, cfg.depth)
        errors, residual = layer_errors(weights, final, x, y, mults, phi, True)

        def mean_energy(w, final=final):
            return jnp.mean(batch_energies(w, final, x, y, mults, phi, True, "mse"))

        with jax.numpy_dtype_promotion("standard"):  # Optax's bias correction mixes dtypes
            updates, opt_state = adam.update(jax.grad(mean_energy)(weights), opt_state, weights)
        new = optax.apply_updates(weights, updates)
        new_start, new_outputs = feedforward(new, x, mults, phi, True)
        record["activity"].append(_rms_layers([*start, outputs]))
        record["error"].append(_rms_layers([*errors, residual]))
        record["activity_update"].append(
            _rms_layers([f - s for f, s in zip(final, start, strict=True)])
        )
        record["weight_update"].append(
            _rms_layers([a - b for a, b in zip(new, weights, strict=True)])
        )
        record["feedforward_update"].append(
            _rms_layers(
                [a - b for a, b in zip([*new_start, new_outputs], [*start, outputs], strict=True)]
            )
        )
        weights = new
    return {name: np.array(values) for name, values in record.items()}


def test_cli_coords_rows_and_figure_equal_the_naive_oracle(tmp_path, saved_figures):
    """Every value of `coords.csv` (two parameterisations, two steps, ReLU) against the naive
    oracle run on the same network and batch (recomputed from the documented seeding), and
    the figure plots their means over layers."""
    d, c, width, depth, batch, seed = 5, 2, 4, 2, 4, 0
    code = main(
        [
            "diagnose", "coords", "--out", str(tmp_path), "--widths", str(width), "--depths",
            str(depth), "--params", "mupc", "sp", "--input-dim", str(d), "--output-dim", str(c),
            "--steps", "2", "--batch-size", str(batch), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    rows = read_csv(tmp_path / "coords.csv")
    x, y = diagnose_batch(seed, 1, d, c, batch)
    expected = {}
    for param in ("mupc", "sp"):
        network = diagnose_network(
            seed, d, width, depth, c, activation="relu", param=param, skips=True
        )
        expected[param] = _naive_coordinates(network, x, y, steps=2)
    # per param and step: activity, error, weight and feedforward updates have L = 3 layers,
    # activity updates H = 2.
    assert len(rows) == 2 * 2 * (4 * 3 + 2)
    for row in rows:
        step, quantity = int(row["step"]), row["quantity"]
        value = expected[row["param"]][quantity][step, int(row["layer"]) - 1]
        # Updates and errors are small differences of O(1) numbers, so their rounding is
        # relative to the activities and weights they come from (entries ≤ 4 here). Once Adam
        # has stepped, rounding in a gradient entry g is amplified by up to lr/ε_Adam = 1e7
        # (its update is lr·g/(|g| + ε_Adam)).
        adam = 1.0 if step == 0 and quantity in ("activity", "error", "activity_update") else 1e7
        assert_close(float(row["rms"]), value, dtype=np.float64, scale=4.0 * adam, k=4,
                     err_msg=str(row))  # fmt: skip
    # The errors are not all zero: inference reached the bottom layer, so this compares values.
    assert min(expected["mupc"]["error"][0]) > 1e-6

    (figure,) = saved_figures
    axes = np.array(figure.axes[: len(QUANTITIES) * 2]).reshape(len(QUANTITIES), 2)
    for col, param in enumerate(("mupc", "sp")):
        for row, name in enumerate(QUANTITIES):
            lines = axes[row, col].lines
            assert [line.get_linestyle() for line in lines] == ["--", "-"]  # step 0, step 1
            for step, line in enumerate(lines):
                np.testing.assert_array_equal(line.get_xdata(), [width])
                mean = np.mean(expected[param][name][step])
                np.testing.assert_allclose(line.get_ydata(), [mean], rtol=1e-9, atol=1e-15)
    assert (tmp_path / "coords.png").read_bytes()[:8] == PNG_SIGNATURE
