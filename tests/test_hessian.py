"""The activity Hessian against closed forms (docs/method.md) and dense against Lanczos."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
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
from naive import dense_activity_hessian, numpy_feedforward

from mupc import (
    MSE,
    DenseSpectrum,
    DiscreteInference,
    LanczosSpectrum,
    NetworkConfig,
    PCTrainer,
    ResNet,
    activity_hessian,
    energy,
    hessian_spectrum,
    lanczos_tridiagonal,
    track_hessian,
)
from mupc._cli import main

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
        expected = dense_activity_hessian(network, z[:, 0])
        for hessian in hessians:
            assert_close(hessian, expected, dtype=jnp.float64, k=16)


@pytest.mark.parametrize("param, skips", [("mupc", True), ("sp", False)])
def test_dense_spectrum_equals_numpy_eigenvalues_for_relu(param, skips):
    """`hessian_spectrum` (eigenvalues, extremes, κ) at the feedforward pass of a ReLU network
    against `numpy.linalg.eigvalsh` of the NumPy block formula with φ′ = 1[z > 0]."""
    network = _network(4, 4, param=param, skips=skips, activation="relu")
    x, y = _batch(network, batch=3)
    spectrum = hessian_spectrum(network, x, y)
    for i, expected in enumerate(_numpy_spectrum(network, x)):
        high = expected[-1]
        assert_close(spectrum.eigenvalues[i], expected, dtype=jnp.float64, scale=high, k=256)
        kappa = high / expected[0]
        assert_close(spectrum.lambda_min[i], expected[0], dtype=jnp.float64, scale=high, k=256)
        assert_close(spectrum.lambda_max[i], high, dtype=jnp.float64, scale=high, k=256)
        assert_close(spectrum.condition_number[i], kappa, dtype=jnp.float64, scale=kappa**2, k=256)


def test_dense_hessian_matches_finite_differences_for_tanh():
    with jax.enable_x64(True):
        network = _network(3, 3, activation="tanh", param="sp")
        x, y = _batch(network, batch=1)
        z = network.feedforward(x)[0] + 0.3
        hessian = np.asarray(activity_hessian(network, x, y, z)[0])

        def energy_of(flat):
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


def _numpy_spectrum(network, x):
    """Eigenvalues (ascending) of each example's activity Hessian at the feedforward pass, from
    the NumPy block formula and `numpy.linalg.eigvalsh`."""
    activities, _ = numpy_feedforward(network, x)
    return [
        np.linalg.eigvalsh(dense_activity_hessian(network, activities[:, i]))
        for i in range(x.shape[0])
    ]


def _assert_spectrum_row(row, eigenvalues, what):
    low, high = eigenvalues[0], eigenvalues[-1]
    kappa = high / low
    # Eigenvalues are accurate to ~eps·λ_max, so κ to ~eps·κ² (float64 throughout).
    assert_close(float(row["lambda_max"]), high, dtype=np.float64, scale=high, k=256, err_msg=what)
    assert_close(float(row["lambda_min"]), low, dtype=np.float64, scale=high, k=256, err_msg=what)
    assert_close(
        float(row["condition_number"]), kappa, dtype=np.float64, scale=kappa**2, k=256,
        err_msg=what,
    )  # fmt: skip


def test_cli_hessian_rows_and_figure_equal_numpy_eigenvalues(tmp_path, saved_figures):
    """Every row of `hessian.csv` (ReLU, at init over a grid and every step of a short
    training run) against `eigvalsh` of the activity Hessian built with NumPy from the same
    network (recomputed from the documented seeding); the figure plots those values."""
    d, c, width, examples, seed = 5, 2, 4, 2, 0
    code = main(
        [
            "diagnose", "hessian", "--out", str(tmp_path), "--widths", str(width), "--depths",
            "2", "3", "--params", "mupc", "--activation", "relu", "--input-dim", str(d),
            "--output-dim", str(c), "--examples", str(examples), "--train-steps", "2",
            "--track-every", "1", "--track-width", str(width), "--track-depth", "2",
            "--batch-size", "8", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    rows = read_csv(tmp_path / "hessian.csv")
    x, _ = diagnose_batch(seed, 1, d, c, examples)
    variants = [("mupc", True), ("mupc", False)]
    expected = {}  # (param, skips, width, depth, step) -> eigenvalues of each example
    for param, skips in variants:
        for h in (2, 3):
            net = diagnose_network(
                seed, d, width, h, c, activation="relu", param=param, skips=skips
            )
            expected[param, skips, width, h, "init"] = _numpy_spectrum(net, x)
        net = diagnose_network(seed, d, width, 2, c, activation="relu", param=param, skips=skips)
        for step, trained in enumerate(diagnose_training(net, seed, batch_size=8, steps=2)):
            expected[param, skips, width, 2, step] = _numpy_spectrum(trained, x)
    init = [row for row in rows if row["seconds"] != ""]
    tracked = [row for row in rows if row["seconds"] == ""]
    assert len(init) == 2 * 2 * examples and len(tracked) == 2 * 3 * examples
    for row in rows:
        param, skips = row["param"], row["skips"] == "True"
        width_, depth, step = int(row["width"]), int(row["depth"]), int(row["step"])
        key = (param, skips, width_, depth, "init" if row["seconds"] != "" else step)
        _assert_spectrum_row(row, expected[key][int(row["example"])], str(key))
        assert row["method"] == "dense" and row["activation"] == "relu"

    # The figure: κ against depth (N = 4), against width (one width, H = 3), and over
    # training, each the mean over the probe examples of the NumPy values.
    (figure,) = saved_figures
    by_depth, by_width, by_step = figure.axes[:3]

    def mean_kappa(key):
        return np.mean([e[-1] / e[0] for e in expected[key]])

    for param, skips in variants:
        label = f"{param}, {'skips' if skips else 'no skips'}"
        lines = {
            axis: [line for line in axis.lines if line.get_label() == label]
            for axis in (by_depth, by_width, by_step)
        }
        (depth_line,), (width_line,), (step_line,) = lines.values()
        np.testing.assert_allclose(
            depth_line.get_ydata(), [mean_kappa((param, skips, 4, h, "init")) for h in (2, 3)],
            rtol=1e-10,
        )  # fmt: skip
        np.testing.assert_array_equal(depth_line.get_xdata(), [2, 3])
        np.testing.assert_allclose(
            width_line.get_ydata(), [mean_kappa((param, skips, width, 3, "init"))], rtol=1e-10
        )  # fmt: skip
        np.testing.assert_allclose(
            step_line.get_ydata(), [mean_kappa((param, skips, width, 2, t)) for t in range(3)],
            rtol=1e-10,
        )  # fmt: skip
    assert (tmp_path / "hessian.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.slow
@pytest.mark.parametrize(
    "activation, low, high", [("linear", 5.0e2, 6.0e2), ("relu", 3.0e2, 4.5e2)]
)
def test_mupc_condition_number_at_published_size(activation, low, high):
    """docs/method.md ("Linear networks in closed form"): μPC at init, N = 128, H = 8,
    D = 784, C = 10, one example, feedforward point:
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
