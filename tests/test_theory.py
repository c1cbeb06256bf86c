"""Linear-network closed forms (docs/method.md) against long inference and autodiff."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    PNG_SIGNATURE,
    assert_close,
    diagnose_batch,
    diagnose_network,
    diagnose_training,
    normal_batch,
    read_csv,
    tiny_network,
)
from naive import numpy_equilibrium

from mupc import (
    MSE,
    DiscreteInference,
    NetworkConfig,
    ResNet,
    energy,
    equilibrium_activities,
    equilibrium_energy,
    linear_activity_hessian,
    output_jacobians,
)
from mupc._cli import main

_network = tiny_network


def _batch(network, batch=3, seed=1):
    return normal_batch(network, batch, seed)


@eqx.filter_jit
def _long_inference(network, x, y, steps=4000):
    """Gradient descent on the activities until (numerically) converged."""
    solver = DiscreteInference.gradient_descent(0.3, steps=steps)
    start = network.feedforward(x)[0]
    return solver.run(network, start, x, y, MSE(), feedforward_start=True).activities


def test_linear_hessian_matches_numpy_blocks():
    with jax.enable_x64(True):
        network = _network(3, 4, param="sp")
        n, a = 3, network.multipliers
        j = [np.eye(n) + a.hidden * np.asarray(w) for w in network.hidden_weights]
        readout = a.output * np.asarray(network.output_weights)
        hessian = np.asarray(linear_activity_hessian(network))
        for layer in range(4):
            block = hessian[layer * n : (layer + 1) * n, layer * n : (layer + 1) * n]
            top = readout.T @ readout if layer == 3 else j[layer].T @ j[layer]
            np.testing.assert_allclose(block, np.eye(n) + top, atol=1e-12)
        for layer in range(3):
            below = hessian[(layer + 1) * n : (layer + 2) * n, layer * n : (layer + 1) * n]
            np.testing.assert_allclose(below, -j[layer], atol=1e-12)
        assert np.allclose(hessian[6:, :3], 0.0)


@pytest.mark.parametrize("skips", [True, False], ids=["skips", "no-skips"])
def test_equilibrium_activities_are_where_inference_converges(skips):
    with jax.enable_x64(True):
        network = _network(4, 3, skips=skips)
        x, y = _batch(network)
        closed_form = equilibrium_activities(network, x, y)
        # The vector field vanishes there ...
        gradient = jax.grad(lambda z: jnp.sum(energy(network, z, x, y, MSE())))(closed_form)
        np.testing.assert_allclose(gradient, 0.0, atol=1e-12)
        # ... and long gradient descent from the feedforward pass reaches it.
        np.testing.assert_allclose(_long_inference(network, x, y), closed_form, atol=1e-9)


@pytest.mark.parametrize("param, skips", [("mupc", True), ("sp", True), ("ntp", False)])
def test_equilibrium_energy_equals_energy_after_long_inference(param, skips):
    with jax.enable_x64(True):
        network = _network(4, 3, param=param, skips=skips)
        x, y = _batch(network)
        final = _long_inference(network, x, y)
        result = equilibrium_energy(network, x, y)
        np.testing.assert_allclose(result.energy, energy(network, final, x, y, MSE()), rtol=1e-9)
        np.testing.assert_allclose(
            result.loss, 0.5 * np.sum((np.asarray(y) - network(x)) ** 2, -1), rtol=1e-12
        )
        assert np.all(result.energy < result.loss)  # S ⪰ I


def test_output_jacobians_match_autodiff_for_relu():
    with jax.enable_x64(True):
        network = _network(4, 3, activation="relu", param="sp")
        x, _ = _batch(network, batch=2)
        jacobians = output_jacobians(network, x)
        activities = network.feedforward(x)[0]

        def output_from(layer, z, example):
            # Run the network from z_layer upwards (the layers above recomputed).
            for w in network.hidden_weights[layer:]:
                z = network.skip * z + network.multipliers.hidden * (w @ network.activation(z))
            return network.multipliers.output * (network.output_weights @ network.activation(z))

        for layer in range(3):
            for example in range(2):
                expected = jax.jacobian(output_from, argnums=1)(
                    layer, activities[layer, example], example
                )
                np.testing.assert_allclose(jacobians[layer, example], expected, atol=1e-12)


def test_mupc_ratio_tends_to_one_as_depth_over_width_shrinks_and_sp_does_not():
    x = jax.random.normal(jax.random.key(1), (32, 20))
    y = jax.nn.one_hot(jnp.arange(32) % 10, 10)

    def ratio(param, width, depth):
        config = NetworkConfig(20, width, depth, 10, "linear", param)
        result = equilibrium_energy(ResNet(config, key=jax.random.key(0)), x, y)
        return float(jnp.mean(result.loss) / jnp.mean(result.energy))

    shallow_wide, deep_narrow = ratio("mupc", 256, 2), ratio("mupc", 16, 32)
    assert shallow_wide - 1 < 0.05  # H/N = 1/128: S ≈ I, F* ≈ loss
    assert deep_narrow > 2.0  # H/N = 2: S ≈ (1 + c·2) I
    assert shallow_wide - 1 < 0.1 * (deep_narrow - 1)
    assert ratio("sp", 256, 2) > 1.5  # under sp, S is far from I even when H/N is small


def test_closed_forms_refuse_nonlinear_networks():
    network = ResNet(NetworkConfig(3, 2, 2, 1, "relu"), key=jax.random.key(0))
    with pytest.raises(ValueError, match="linear networks only.*relu"):
        equilibrium_activities(network, jnp.ones((1, 3)), jnp.ones((1, 1)))
    with pytest.raises(ValueError, match="activation='linear'"):
        linear_activity_hessian(network)


def test_equilibrium_energy_equals_numpy_solve():
    """F* = ½ rᵀ S⁻¹ r (the library, through the output Jacobians) against the energy at
    z* = H_z⁻¹ b solved densely with NumPy, and the eigenvalues of S against products of
    the layer maps."""
    with jax.enable_x64(True):
        for param, skips in (("mupc", True), ("sp", True), ("ntp", False)):
            network = _network(4, 3, param=param, skips=skips)
            x, y = _batch(network)
            loss, energy_, eigenvalues = numpy_equilibrium(network, x, y)
            result = equilibrium_energy(network, x, y)
            assert_close(result.loss, loss, dtype=jnp.float64, k=16)
            assert_close(result.energy, energy_, dtype=jnp.float64, scale=np.max(loss), k=256)
            assert_close(
                result.covariance_eigenvalues, np.stack([eigenvalues] * 3), dtype=jnp.float64,
                k=64,
            )  # fmt: skip


def test_cli_theory_rows_and_figure_equal_numpy_solve(tmp_path, saved_figures):
    """Every row of `theory.csv` (two parameterisations, two depths, at init and after each
    of two training steps) against the dense NumPy equilibrium of the same network and probe
    batch (recomputed from the documented seeding); the heatmaps show log10 of those ratios."""
    d, c, width, batch, seed = 5, 10, 4, 8, 0
    code = main(
        [
            "diagnose", "theory", "--out", str(tmp_path), "--widths", str(width), "--depths",
            "2", "3", "--params", "mupc", "sp", "--input-dim", str(d), "--train-steps", "2",
            "--record-every", "1", "--batch-size", str(batch), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    rows = read_csv(tmp_path / "theory.csv")
    assert len(rows) == 2 * 2 * 3  # params x depths x (steps 0, 1, 2)
    x, y = diagnose_batch(seed, 1, d, c, batch)
    expected = {}
    for param in ("mupc", "sp"):
        for depth in (2, 3):
            net = diagnose_network(
                seed, d, width, depth, c, activation="linear", param=param, skips=True
            )
            for step, trained in enumerate(diagnose_training(net, seed, batch_size=batch, steps=2)):
                loss, energy_, eigenvalues = numpy_equilibrium(trained, x, y)
                expected[param, depth, step] = (
                    np.mean(loss), np.mean(energy_), np.mean(loss) / np.mean(energy_),
                    np.mean(eigenvalues),
                )  # fmt: skip
    for row in rows:
        key = (row["param"], int(row["depth"]), int(row["step"]))
        loss, energy_, ratio, s_mean = expected[key]
        assert int(row["width"]) == width and float(row["h_over_n"]) == key[1] / width
        # F* = ½ rᵀ S⁻¹ r is solved in a C × C system whose S has κ ≤ its largest eigenvalue.
        assert_close(float(row["loss"]), loss, dtype=np.float64, k=64, err_msg=str(key))
        allowance = dict(dtype=np.float64, k=1024, err_msg=str(key))
        assert_close(float(row["equilibrium_energy"]), energy_, scale=loss * s_mean, **allowance)
        assert_close(float(row["ratio"]), ratio, scale=ratio * s_mean, **allowance)
        assert_close(float(row["s_mean_eigenvalue"]), s_mean, **allowance)
    # S ≠ I here (C = 10 > N = 4), so the ratio differs from 1 and the check has teeth.
    assert min(value[2] for value in expected.values()) > 1.05

    (figure,) = saved_figures
    heatmaps = [axis for axis in figure.axes if axis.images]
    assert [axis.get_title() for axis in heatmaps] == [
        "mupc, step 0", "mupc, step 2", "sp, step 0", "sp, step 2"
    ]  # fmt: skip
    for axis in heatmaps:
        param, step = axis.get_title().replace(" step ", "").split(",")
        grid = np.asarray(axis.images[0].get_array())  # (depths, widths)
        want = [[np.log10(expected[param, depth, int(step)][2])] for depth in (2, 3)]
        np.testing.assert_allclose(grid, want, rtol=1e-9)
    assert (tmp_path / "theory.png").read_bytes()[:8] == PNG_SIGNATURE
