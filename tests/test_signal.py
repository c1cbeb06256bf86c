"""The learning-signal diagnostic (docs/method.md, "The learning signal"): PC weight gradients
against backprop's, per layer,
checked against a naive implementation and NumPy."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from naive import (
    ACTIVATIONS,
    feedforward,
    gd_inference,
    local_weight_gradients,
    spec_multipliers,
    weight_list,
)

import mupc
from mupc._cli import main


def _problem(key, depth=5, width=6, activation="tanh"):
    config = mupc.NetworkConfig(4, width, depth, 3, activation, "mupc")
    k1, k2, k3 = jax.random.split(key, 3)
    network = mupc.ResNet(config, key=k1, dtype=jnp.float64)
    x = jax.random.normal(k2, (5, 4), jnp.float64)
    y = jax.nn.one_hot(jax.random.randint(k3, (5,), 0, 3), 3, dtype=jnp.float64)
    return network, x, y


@pytest.mark.parametrize("steps", [5, 4])
def test_signal_equals_numpy_on_naive_gradients(steps, getkey):
    """With T = H = 5 every layer is reached; with T = 4 the input layer is not: its PC
    gradient is exactly 0 here, while the naive oracle (errors computed as z - μ(z)) leaves
    rounding noise there."""
    network, x, y = _problem(getkey())
    lr = 0.3
    trainer = mupc.PCTrainer(inference=mupc.DiscreteInference.gradient_descent(lr, steps))
    signal = mupc.learning_signal(trainer, network, x, y)

    cfg = network.config
    mults = spec_multipliers("mupc", 4, cfg.width, cfg.depth, True)
    phi = ACTIVATIONS["tanh"]
    weights = weight_list(network)
    start, _ = feedforward(weights, x, mults, phi, True)
    final = gd_inference(weights, start, x, y, mults, phi, True, "mse", lr, steps)
    pc = local_weight_gradients(weights, final, x, y, mults, phi, True, "mse")

    def bp_loss(ws):
        _, outputs = feedforward(ws, x, mults, phi, True)
        return jnp.mean(0.5 * jnp.sum((y - outputs) ** 2, axis=1))

    bp = jax.grad(bp_loss)(weights)
    pc_flat = [np.asarray(g).ravel() for g in pc]
    bp_flat = [np.asarray(g).ravel() for g in bp]
    norms_pc = np.array([np.linalg.norm(g) for g in pc_flat])
    norms_bp = np.array([np.linalg.norm(g) for g in bp_flat])
    cosines = np.array([p @ b for p, b in zip(pc_flat, bp_flat, strict=True)]) / (
        norms_pc * norms_bp
    )
    assert signal.cosine.shape == (cfg.depth + 1,)
    if steps < cfg.depth:
        assert float(signal.pc_norm[0]) == 0.0 and float(signal.cosine[0]) == 0.0
        assert norms_pc[0] < 1e-12 * norms_pc[1]  # the oracle's rounding noise
        signal = mupc.LearningSignal(*(field[1:] for field in signal))
        norms_pc, norms_bp, cosines = norms_pc[1:], norms_bp[1:], cosines[1:]
    np.testing.assert_allclose(signal.pc_norm, norms_pc, rtol=1e-9)
    np.testing.assert_allclose(signal.bp_norm, norms_bp, rtol=1e-9)
    np.testing.assert_allclose(signal.ratio, norms_pc / norms_bp, rtol=1e-9)
    np.testing.assert_allclose(signal.cosine, cosines, rtol=1e-9, atol=1e-12)


def test_published_inference_leaves_the_bottom_layers_exactly_without_signal():
    """H = 32, float32, the published step: inference reaches only the top layers; below them
    the PC gradient is exactly zero (ratio 0, cosine 0), not rounding noise."""
    data = mupc.load_dataset("mnist-sample")
    config = mupc.NetworkConfig(784, 32, 32, 10, "relu", "mupc")
    network = mupc.ResNet(config, key=jax.random.key(0))
    trainer = mupc.PCTrainer()  # GD 0.5/64 per example, T = H
    signal = mupc.learning_signal(trainer, network, data.train_images[:16], data.train_labels[:16])
    pc_norm = np.asarray(signal.pc_norm)
    assert (pc_norm[:16] == 0).all() and (np.asarray(signal.cosine[:16]) == 0).all()
    assert float(signal.cosine[-2]) > 0.9 and float(signal.cosine[-1]) > 0.9
    assert (np.asarray(signal.bp_norm) > 0).all()


def test_decile_summary_by_hand():
    cosine = jnp.asarray(np.linspace(0.0, 1.0, 20))
    signal = mupc.LearningSignal(cosine, cosine, cosine, cosine)
    summary = mupc.decile_summary(signal, threshold=0.9)
    values = np.linspace(0.0, 1.0, 20)
    np.testing.assert_allclose(summary.mean, values.reshape(10, 2).mean(axis=1))
    np.testing.assert_allclose(summary.minimum, values[::2])
    assert summary.fraction_aligned == pytest.approx(np.mean(values >= 0.9))


def test_learning_signal_refuses_a_backprop_trainer(getkey):
    network, x, y = _problem(getkey())
    with pytest.raises(ValueError, match="PCTrainer"):
        mupc.learning_signal(mupc.BPTrainer(), network, x, y)


def test_diagnose_signal_writes_what_the_library_computes(tmp_path, capsys):
    out = tmp_path / "signal"
    settings = ["gd:0.5/64:H", "epc:0.1:2"]
    argv = ["diagnose", "signal", "--out", str(out), "-H", "6", "-N", "16", "--batch-size", "8"]
    assert main([*argv, "--settings", *settings]) == 0
    printed = capsys.readouterr().out
    assert "gd 0.5/64 T=6" in printed and "epc 0.1 T=2" in printed
    with open(out / "signal.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 7
    assert (out / "signal.png").stat().st_size > 0

    data = mupc.load_dataset("mnist-sample")
    network = mupc.ResNet(mupc.NetworkConfig(784, 16, 6, 10), key=jax.random.key(0))
    trainer = mupc.PCTrainer(inference=mupc.ErrorInference.gradient_descent(0.1, 2))
    signal = mupc.learning_signal(trainer, network, data.train_images[:8], data.train_labels[:8])
    written = [float(row["cosine"]) for row in rows if row["setting"] == "epc 0.1 T=2"]
    np.testing.assert_allclose(written, signal.cosine, rtol=1e-6)
    assert [row["kind"] for row in rows[:7]] == ["input"] + ["residual"] * 5 + ["readout"]


@pytest.mark.parametrize(
    "spec, match",
    [
        ("sgd:0.1", "KIND:LR"),
        ("gd:abc", "Bad learning rate 'abc'"),
        ("gd:0.1:x", "Bad T 'x'"),
        ("epc:-1", "finite and > 0"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, capsys, spec, match):
    code = main(["diagnose", "signal", "--out", str(tmp_path), "-H", "2", "--settings", spec])
    assert code == 2
    assert match in capsys.readouterr().err


@pytest.mark.slow  # in `make test-slow`: the suite's 10-minute budget
def test_diagnose_signal_of_a_trained_checkpoint_and_of_a_conv_network(tmp_path, capsys):
    run = tmp_path / "run"
    train = ["train", "-H", "4", "-N", "16", "--steps", "3", "--quiet", "--out", str(run)]
    assert main(train) == 0
    out = tmp_path / "signal"
    argv = ["diagnose", "signal", "--out", str(out), "--batch-size", "8"]
    assert (
        main([*argv, "--checkpoint", str(run / "checkpoint.npz"), "--settings", "epc:0.1:1"]) == 0
    )
    with open(out / "signal.csv") as handle:
        written = [float(row["cosine"]) for row in csv.DictReader(handle)]
    data = mupc.load_dataset("mnist-sample")
    trainer = mupc.PCTrainer(inference=mupc.ErrorInference.gradient_descent(0.1, 1))
    network = mupc.load_network(run / "checkpoint.npz")
    signal = mupc.learning_signal(trainer, network, data.train_images[:8], data.train_labels[:8])
    np.testing.assert_allclose(written, signal.cosine, rtol=1e-6)
    conv = ["--network", "conv", "-H", "1", "-N", "2", "--stages", "2"]
    assert main([*argv, *conv, "--settings", "gd:0.1:H"]) == 0
    with open(out / "signal.csv") as handle:
        kinds = [row["kind"] for row in csv.DictReader(handle)]
    assert kinds == ["input", "residual", "hidden", "residual", "readout"]
    assert "T=4" in capsys.readouterr().out  # T = H counts the conv network's four layers


# ------------------------------------------------------ edge cases and every column (issue 20)


def _gradients(network, values):
    """A pytree like `network` whose weight layers hold `values` (one array per layer)."""
    import equinox as eqx

    hidden = jnp.stack(values[1:-1])
    return eqx.tree_at(
        lambda n: (n.input_weights, n.hidden_weights, n.output_weights),
        network,
        (values[0], hidden, values[-1]),
    )


def test_layers_with_an_exactly_zero_gradient(getkey):
    """Per layer, by hand: PC gradient exactly 0 (ratio 0, cosine 0); BP gradient exactly 0
    (ratio 0, cosine 0, never inf or NaN); both 0; and ordinary layers, against NumPy."""
    network, _, _ = _problem(getkey(), depth=4, width=3)
    shapes = [w.shape for w in network.layer_weights(network)]
    rng = np.random.default_rng(0)
    pc = [rng.normal(size=shape) for shape in shapes]
    bp = [rng.normal(size=shape) for shape in shapes]
    pc[0] = np.zeros(shapes[0])  # layer 1: no PC signal
    bp[1] = np.zeros(shapes[1])  # layer 2: no BP signal
    pc[2], bp[2] = np.zeros(shapes[2]), np.zeros(shapes[2])  # layer 3: neither
    bp[3] = -2.5 * pc[3]  # layer 4: exactly opposite
    from mupc._diagnostics.signal import compare_gradients

    signal = compare_gradients(
        network,
        _gradients(network, [jnp.asarray(a) for a in pc]),
        _gradients(network, [jnp.asarray(a) for a in bp]),
    )
    values = {name: np.asarray(getattr(signal, name)) for name in signal._fields}
    assert all(np.isfinite(v).all() for v in values.values())
    expected_pc = np.array([np.linalg.norm(a) for a in pc])
    expected_bp = np.array([np.linalg.norm(a) for a in bp])
    np.testing.assert_allclose(values["pc_norm"], expected_pc, rtol=1e-12)
    np.testing.assert_allclose(values["bp_norm"], expected_bp, rtol=1e-12)
    assert values["ratio"][0] == 0.0 and values["cosine"][0] == 0.0
    assert values["ratio"][1] == 0.0 and values["cosine"][1] == 0.0
    assert values["ratio"][2] == 0.0 and values["cosine"][2] == 0.0
    assert values["ratio"][3] == pytest.approx(1 / 2.5) and values["cosine"][3] == pytest.approx(-1)
    last = len(shapes) - 1
    dot = float(np.vdot(pc[last], bp[last]))
    assert values["cosine"][last] == pytest.approx(dot / (expected_pc[last] * expected_bp[last]))
    assert values["ratio"][last] == pytest.approx(expected_pc[last] / expected_bp[last])


def test_a_cosine_exactly_at_the_threshold_counts_as_aligned():
    """`fraction_aligned` counts cosine ≥ threshold: 0.5 is exact in binary, so the layer at
    exactly 0.5 counts, the one just below does not."""
    cosine = np.array([0.5, np.nextafter(0.5, 0.0), 0.75, 0.0, 1.0, -1.0, 0.5, 0.25, 0.5, 0.0])
    signal = mupc.LearningSignal(*(jnp.asarray(cosine) for _ in range(4)))
    summary = mupc.decile_summary(signal, threshold=0.5)
    assert summary.fraction_aligned == 5 / 10  # 0.5, 0.75, 1.0, 0.5, 0.5; not 0.5 - ulp
    np.testing.assert_array_equal(summary.mean, cosine)  # ten layers: one per decile
    np.testing.assert_array_equal(summary.minimum, cosine)


def test_every_column_of_signal_csv_equals_the_naive_oracle(tmp_path, capsys):
    """`mupc diagnose signal` on a small network: every column of every row (setting, layer,
    kind, pc_norm, bp_norm, ratio, cosine) against the naive loop's gradients and NumPy."""
    out = tmp_path / "signal"
    depth, width, batch, lr = 3, 8, 8, 0.3
    argv = ["diagnose", "signal", "--out", str(out), "-H", str(depth), "-N", str(width),
            "--batch-size", str(batch), "--settings", f"gd:{lr}:H", "--seed", "3"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    with open(out / "signal.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["setting", "layer", "kind", "pc_norm", "bp_norm", "ratio", "cosine"]

    # The same network, data and inference, rebuilt and computed independently (float64).
    data = mupc.load_dataset("mnist-sample")
    config = mupc.NetworkConfig(784, width, depth, 10, "relu", "mupc")
    network = mupc.ResNet(config, key=jax.random.key(3), dtype=jnp.float32)
    weights = [np.asarray(w, np.float64) for w in weight_list(network)]
    x = np.asarray(data.train_images[:batch], np.float64)
    y = np.asarray(data.train_labels[:batch], np.float64)
    mults = spec_multipliers("mupc", 784, width, depth, True)
    phi = ACTIVATIONS["relu"]
    with jax.numpy_dtype_promotion("standard"):
        start, _ = feedforward(weights, x, mults, phi, True)
        final = gd_inference(weights, start, x, y, mults, phi, True, "mse", lr, depth)
        pc = local_weight_gradients(weights, final, x, y, mults, phi, True, "mse")

        def bp_loss(ws):
            _, outputs = feedforward(ws, x, mults, phi, True)
            return jnp.mean(0.5 * jnp.sum((y - outputs) ** 2, axis=1))

        bp = jax.grad(bp_loss)(weights)
    pc_flat = [np.asarray(g, np.float64).ravel() for g in pc]
    bp_flat = [np.asarray(g, np.float64).ravel() for g in bp]
    pc_norm = np.array([np.linalg.norm(g) for g in pc_flat])
    bp_norm = np.array([np.linalg.norm(g) for g in bp_flat])
    cosine = np.array([p @ b for p, b in zip(pc_flat, bp_flat, strict=True)]) / (pc_norm * bp_norm)

    assert [row["setting"] for row in rows] == [f"gd {lr} T={depth}"] * (depth + 1)
    assert [int(row["layer"]) for row in rows] == list(range(1, depth + 2))
    assert [row["kind"] for row in rows] == ["input"] + ["residual"] * (depth - 1) + ["readout"]
    written = {name: np.array([float(row[name]) for row in rows]) for name in rows[0]
               if name not in ("setting", "layer", "kind")}  # fmt: skip
    np.testing.assert_allclose(written["pc_norm"], pc_norm, rtol=2e-3)
    np.testing.assert_allclose(written["bp_norm"], bp_norm, rtol=2e-3)
    np.testing.assert_allclose(written["ratio"], pc_norm / bp_norm, rtol=4e-3)
    np.testing.assert_allclose(written["cosine"], cosine, rtol=2e-3, atol=2e-3)
    assert (pc_norm > 0).all() and (bp_norm > 0).all()  # every layer reached: no exact zeros
