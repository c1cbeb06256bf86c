"""The activity Hessian against closed forms (spec §6) and dense against Lanczos."""

import csv

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import PNG_SIGNATURE, normal_batch, tiny_network

from mupc._cli import main
from mupc._diagnostics.hessian import (
    DenseSpectrum,
    LanczosSpectrum,
    activity_hessian,
    hessian_spectrum,
    lanczos_tridiagonal,
    track_hessian,
)
from mupc._inference import DiscreteInference
from mupc._network import NetworkConfig, ResNet
from mupc._training import PCTrainer

_network = tiny_network


def _batch(network, batch=2, seed=1):
    return normal_batch(network, batch, seed)


def _zero(network, hidden=True, output=True):
    if hidden:
        network = eqx.tree_at(
            lambda n: n.hidden_weights, network, jnp.zeros_like(network.hidden_weights)
        )
    if output:
        network = eqx.tree_at(
            lambda n: n.output_weights, network, jnp.zeros_like(network.output_weights)
        )
    return network


def _t_matrix_eigenvalues(depth):
    k = np.arange(1, depth + 1)
    return 2.0 - 2.0 * np.cos((2 * k - 1) * np.pi / (2 * depth + 1))


def numpy_linear_hessian(network):
    """Spec §6 block-tridiagonal H_z built with dense NumPy, block by block."""
    h, n = network.config.depth, network.config.width
    a = network.multipliers
    tau = 1.0 if network.config.skips else 0.0
    hidden = np.asarray(network.hidden_weights)
    j = [tau * np.eye(n) + a.hidden * hidden[i] for i in range(h - 1)]  # J_2..J_H
    readout = a.output * np.asarray(network.output_weights)
    out = np.zeros((h * n, h * n))
    for layer in range(h):
        block = slice(layer * n, (layer + 1) * n)
        if layer < h - 1:
            out[block, block] = np.eye(n) + j[layer].T @ j[layer]
            below = slice((layer + 1) * n, (layer + 2) * n)
            out[below, block] = -j[layer]
            out[block, below] = -j[layer].T
        else:
            out[block, block] = np.eye(n) + readout.T @ readout
    return out


@pytest.mark.parametrize(
    "depth, kappa", [(8, 113.5), (16, 437.7), (32, 1708.7)], ids=["H8", "H16", "H32"]
)
def test_zero_weights_spectrum_is_t_matrix(depth, kappa):
    with jax.enable_x64(True):
        width = 2
        network = _zero(_network(width, depth))
        x, y = _batch(network)
        expected = np.sort(np.repeat(_t_matrix_eigenvalues(depth), width))
        dense = hessian_spectrum(network, x, y)
        np.testing.assert_allclose(dense.eigenvalues, np.stack([expected] * 2), atol=1e-12)
        np.testing.assert_allclose(dense.condition_number, kappa, rtol=1e-4)
        if depth != 16:
            return
        # Lanczos sees one copy of each of the H distinct eigenvalues, then restarts.
        lanczos = hessian_spectrum(network, x, y, method=LanczosSpectrum(3 * depth))
        np.testing.assert_allclose(lanczos.lambda_min, expected[0], rtol=1e-8)
        np.testing.assert_allclose(lanczos.lambda_max, expected[-1], rtol=1e-8)


def test_zero_hidden_weights_adds_readout_term_on_last_block():
    with jax.enable_x64(True):
        depth, width = 5, 3
        network = _zero(_network(width, depth), output=False)
        x, y = _batch(network)
        t = 2 * np.eye(depth) - np.eye(depth, k=1) - np.eye(depth, k=-1)
        t[-1, -1] = 1.0
        readout = network.multipliers.output * np.asarray(network.output_weights)
        last = np.zeros((depth, depth))
        last[-1, -1] = 1.0
        expected = np.kron(t, np.eye(width)) + np.kron(last, readout.T @ readout)
        np.testing.assert_allclose(activity_hessian(network, x, y)[1], expected, atol=1e-12)


@pytest.mark.parametrize(
    "param, skips", [("mupc", True), ("mupc", False), ("sp", True), ("ntp", True)]
)
def test_dense_hessian_equals_block_tridiagonal_formula(param, skips):
    with jax.enable_x64(True):
        network = _network(4, 5, param=param, skips=skips)
        x, y = _batch(network, batch=3)
        # The Hessian of a linear network does not depend on the point: try a random one.
        z = jax.random.normal(jax.random.key(7), (5, 3, 4), jnp.float64)
        hessians = activity_hessian(network, x, y, z)
        expected = numpy_linear_hessian(network)
        for hessian in hessians:
            np.testing.assert_allclose(hessian, expected, atol=1e-12)


def test_dense_hessian_matches_finite_differences_for_tanh():
    with jax.enable_x64(True):
        network = _network(3, 3, activation="tanh", param="sp")
        x, y = _batch(network, batch=1)
        z = network.feedforward(x)[0] + 0.3
        hessian = np.asarray(activity_hessian(network, x, y, z)[0])

        def energy_of(flat):
            from mupc._energy import energy
            from mupc._loss import MSE

            return energy(network, flat.reshape(3, 1, 3), x, y, MSE())[0]

        grad = jax.jit(jax.vmap(jax.grad(energy_of)))
        flat, step, basis = z.reshape(-1), 1e-6, jnp.eye(9, dtype=jnp.float64)
        columns = (grad(flat[None] + step * basis) - grad(flat[None] - step * basis)) / (2 * step)
        np.testing.assert_allclose(hessian, columns.T, atol=1e-7)


def test_lanczos_extremes_agree_with_dense():
    network = ResNet(NetworkConfig(20, 16, 6, 4, "relu"), key=jax.random.key(3))
    x = jax.random.normal(jax.random.key(4), (2, 20))
    y = jax.nn.one_hot(jnp.array([1, 3]), 4)
    dense = hessian_spectrum(network, x, y, method=DenseSpectrum())
    lanczos = hessian_spectrum(network, x, y, method=LanczosSpectrum(80))  # dim = 96
    np.testing.assert_allclose(lanczos.lambda_max, dense.lambda_max, rtol=1e-2)
    np.testing.assert_allclose(lanczos.lambda_min, dense.lambda_min, rtol=1e-2)
    np.testing.assert_allclose(lanczos.condition_number, dense.condition_number, rtol=1e-2)
    # Ritz values interlace: never outside the true spectrum.
    assert np.all(lanczos.lambda_min >= dense.lambda_min * (1 - 1e-5))
    assert np.all(lanczos.lambda_max <= dense.lambda_max * (1 + 1e-5))


def test_lanczos_tridiagonal_on_a_diagonal_matrix():
    with jax.enable_x64(True):
        values = jnp.linspace(1.0, 100.0, 200, dtype=jnp.float64) ** 1.5
        start = jnp.ones(200, jnp.float64)
        alphas, betas = lanczos_tridiagonal(lambda v: values * v, start, 200, jax.random.key(0))
        t = np.diag(alphas) + np.diag(betas[:-1], 1) + np.diag(betas[:-1], -1)
        np.testing.assert_allclose(np.linalg.eigvalsh(t), values, rtol=1e-9)


def test_track_hessian_measures_every_k_steps():
    network = ResNet(NetworkConfig(6, 4, 3, 2, "linear"), key=jax.random.key(0))
    trainer = PCTrainer(optax.adam(0.05), DiscreteInference.gradient_descent(0.1))
    state = trainer.init(network)
    x = jax.random.normal(jax.random.key(1), (4, 6))
    y = jax.nn.one_hot(jnp.array([0, 1, 1, 0]), 2)
    batches = [(x, y)] * 5
    final, steps, spectra = track_hessian(trainer, state, batches, x[:1], y[:1], every=2)
    assert steps == [0, 2, 4, 5]
    assert int(final.step) == 5
    first = hessian_spectrum(network, x[:1], y[:1])
    np.testing.assert_allclose(spectra[0].condition_number, first.condition_number, rtol=1e-6)
    last = hessian_spectrum(final.network, x[:1], y[:1])
    np.testing.assert_allclose(spectra[-1].condition_number, last.condition_number, rtol=1e-6)
    assert not np.allclose(spectra[0].eigenvalues, spectra[-1].eigenvalues)


def test_errors_name_the_bad_value():
    network = ResNet(NetworkConfig(6, 4, 3, 2, "linear"), key=jax.random.key(0))
    x, y = jnp.ones((2, 6)), jnp.ones((2, 2))
    with pytest.raises(ValueError, match="activities.*shape"):
        hessian_spectrum(network, x, y, jnp.ones((3, 1, 4)))
    with pytest.raises(ValueError, match="method"):
        hessian_spectrum(network, x, y, method="dense")
    with pytest.raises(ValueError, match="inputs"):
        hessian_spectrum(network, jnp.ones(6), y)
    with pytest.raises(ValueError, match="iterations"):
        LanczosSpectrum(1)
    with pytest.raises(ValueError, match="every"):
        track_hessian(PCTrainer(), None, [], x, y, every=0)


def test_cli_hessian_smoke(tmp_path):
    code = main(
        [
            "diagnose", "hessian", "--out", str(tmp_path), "--widths", "4", "--depths", "2",
            "--params", "mupc", "--input-dim", "5", "--output-dim", "2", "--train-steps",
            "2", "--track-every", "1", "--track-width", "4", "--track-depth", "2", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    with open(tmp_path / "hessian.csv") as handle:
        rows = list(csv.DictReader(handle))
    required = {"param", "skips", "width", "depth", "step", "lambda_min", "lambda_max"}
    assert required | {"condition_number"} <= set(rows[0])
    # (skips, no skips) at init, then 3 measurements x 2 variants while training.
    assert len(rows) == 2 + 6
    assert {row["step"] for row in rows} == {"0", "1", "2"}
    for row in rows:
        kappa = float(row["lambda_max"]) / float(row["lambda_min"])
        assert float(row["condition_number"]) == pytest.approx(kappa, rel=1e-5)
        assert float(row["condition_number"]) > 1
    assert (tmp_path / "hessian.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.slow
@pytest.mark.parametrize(
    "activation, low, high", [("linear", 5.0e2, 6.0e2), ("relu", 3.0e2, 4.5e2)]
)
def test_mupc_condition_number_at_published_size(activation, low, high):
    """Spec §6: μPC at init, N = 128, H = 8, D = 784, C = 10, one example, feedforward point:
    κ ≈ 5.2e2–5.9e2 (linear), about 0.7 of that for ReLU; λ_max ≈ 4.5–5."""
    config = NetworkConfig(784, 128, 8, 10, activation)
    x = jax.random.normal(jax.random.key(1), (2, 784))
    y = jax.nn.one_hot(jnp.array([3, 7]), 10)
    kappas = []
    for seed in range(2):
        spectrum = hessian_spectrum(ResNet(config, key=jax.random.key(seed)), x, y)
        assert np.all((spectrum.lambda_max > 4.0) & (spectrum.lambda_max < 5.5))
        kappas.append(np.asarray(spectrum.condition_number))
    assert low < np.mean(kappas) < high
