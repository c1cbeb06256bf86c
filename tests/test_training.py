"""The PC and BP training steps (docs/method.md), against the naive oracle; compile-once; input
validation; evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_close
from naive import (
    ACTIVATIONS,
    batch_energies,
    feedforward,
    gd_inference,
    layer_errors,
    spec_multipliers,
    weight_list,
)

import mupc
from mupc._training.base import _compiled_step

D, N, H, C, B = 6, 8, 5, 3, 4


def _setup(key, activation="tanh", param="mupc", loss="mse", dtype=jnp.float64):
    config = mupc.NetworkConfig(D, N, H, C, activation, param)
    k1, k2, k3 = jax.random.split(key, 3)
    network = mupc.ResNet(config, key=k1, dtype=dtype)
    x = np.array(jax.random.normal(k2, (B, D), dtype))
    y = np.array(jax.nn.one_hot(jax.random.randint(k3, (B,), 0, C), C, dtype=dtype))
    return network, x, y


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_pc_step_equals_naive_step(loss, getkey):
    network, x, y = _setup(getkey())
    lr, steps, weight_lr = 0.1, 4, 0.01
    trainer = mupc.PCTrainer(
        optimiser=optax.sgd(weight_lr),
        inference=mupc.DiscreteInference.gradient_descent(lr, steps),
        loss=mupc._loss.resolve_loss(loss),
    )
    state, metrics = trainer.step(trainer.init(network), x, y)

    mults = spec_multipliers("mupc", D, N, H, True)
    phi = ACTIVATIONS["tanh"]
    weights = weight_list(network)
    start, outputs = feedforward(weights, x, mults, phi, True)
    final = gd_inference(weights, start, x, y, mults, phi, True, loss, lr, steps)

    def mean_energy(w, acts):
        return jnp.mean(batch_energies(w, acts, x, y, mults, phi, True, loss))

    grads = jax.grad(mean_energy)(weights, final)
    new = [w - weight_lr * g for w, g in zip(weights, grads, strict=True)]
    np.testing.assert_allclose(state.network.input_weights, new[0], rtol=1e-10)
    np.testing.assert_allclose(state.network.hidden_weights, jnp.stack(new[1:-1]), rtol=1e-10)
    np.testing.assert_allclose(state.network.output_weights, new[-1], rtol=1e-10)
    assert float(metrics.energy_before) == pytest.approx(float(mean_energy(weights, start)))
    assert float(metrics.energy_after) == pytest.approx(float(mean_energy(weights, final)))
    if loss == "mse":
        expected_loss = 0.5 * np.mean(np.sum((y - np.asarray(outputs)) ** 2, axis=1))
        assert float(metrics.loss) == pytest.approx(expected_loss)
    assert int(metrics.inference_steps) == steps
    assert int(state.step) == 1


class _FixedInit(mupc.ActivityInit):
    """Given activities, whatever the key: a start away from the feedforward pass whose values
    the test knows."""

    values: jax.Array

    def __call__(self, network, inputs, key):
        return self.values


class _SeededNormal(mupc.NormalInit):
    """`NormalInit` drawn from a fixed key, so the test can redraw the same start."""

    def __call__(self, network, inputs, key):
        return super().__call__(network, inputs, jax.random.key(99))


def _start(kind, network, x, weights, mults, phi):
    """(activity_init, the start as a list of (B, N) arrays) for the three kinds of start."""
    if kind == "feedforward":
        return mupc.FeedforwardInit(), feedforward(weights, x, mults, phi, True)[0]
    if kind == "fixed":
        values = 0.7 * jax.random.normal(jax.random.key(5), (H, B, N), jnp.float64)
        return _FixedInit(values), list(values)
    # The start is NormalInit's own draw; its distribution is tested in
    # test_normal_init_has_the_requested_spread.
    init = _SeededNormal(0.5)
    return init, list(init(network, x, None))


@pytest.mark.parametrize("kind", ["feedforward", "fixed", "normal"])
def test_default_step_count_and_start_equal_naive_step(kind, getkey):
    """With the defaults (T = H, `skip_inactive=True`), from the feedforward pass and from
    other starts: the inference result, `energy_before` (at the START, not at the feedforward
    pass), `energy_after` and the weights after one SGD step equal the naive per-layer loop
    with exactly H steps of gradient descent, on one device."""
    network, x, y = _setup(getkey())
    lr, weight_lr = 0.1, 0.01
    mults = spec_multipliers("mupc", D, N, H, True)
    phi = ACTIVATIONS["tanh"]
    weights = weight_list(network)
    activity_init, start = _start(kind, network, x, weights, mults, phi)
    trainer = mupc.PCTrainer(
        optimiser=optax.sgd(weight_lr),
        inference=mupc.DiscreteInference.gradient_descent(lr),  # steps=None: T = H
        activity_init=activity_init,
        record_layer_energies=True,
    )
    assert trainer.inference.skip_inactive  # the default, ignored from other starts
    state, metrics = trainer.step(trainer.init(network), x, y)

    final = gd_inference(weights, start, x, y, mults, phi, True, "mse", lr, H)

    def mean_energy(w, acts):
        return jnp.mean(batch_energies(w, acts, x, y, mults, phi, True, "mse"))

    energy_before, energy_after = mean_energy(weights, start), mean_energy(weights, final)
    assert int(metrics.inference_steps) == H
    assert_close(metrics.energy_before, energy_before, dtype=jnp.float64, k=64)
    assert_close(metrics.energy_after, energy_after, dtype=jnp.float64, k=64)
    errors, residual = layer_errors(weights, final, x, y, mults, phi, True)
    per_layer = [0.5 * jnp.mean(jnp.sum(e**2, axis=1)) for e in (*errors, residual)]
    assert_close(metrics.layer_energies, jnp.stack(per_layer), dtype=jnp.float64,
                 scale=energy_after, k=64)  # fmt: skip
    grads = jax.grad(mean_energy)(weights, final)
    new = [w - weight_lr * g for w, g in zip(weights, grads, strict=True)]
    for got, want in zip(weight_list(state.network), new, strict=True):
        assert_close(got, want, dtype=jnp.float64, k=64)
    if kind != "feedforward":  # the start really is away from the feedforward pass
        assert float(energy_before) > 2 * float(metrics.loss)


@pytest.mark.parametrize("std", [0.3, 2.0])
def test_normal_init_has_the_requested_spread(std, getkey):
    """N(0, σ²) with σ = `std`: the sample sd of 8,192 draws is within 5% of σ (its relative
    sd is 1/√(2m) ≈ 0.8%), so neither σ² nor 1 passes."""
    network = mupc.ResNet(mupc.NetworkConfig(3, 32, 4, 2), key=getkey(), dtype=jnp.float64)
    x = np.zeros((64, 3))
    activities = np.asarray(mupc.NormalInit(std)(network, x, getkey()))
    assert activities.shape == (4, 64, 32) and activities.dtype == np.float64
    assert np.std(activities) == pytest.approx(std, rel=0.05)
    assert abs(np.mean(activities)) < 5 * std / np.sqrt(activities.size)
    # Independent draws: different layers are not copies of each other.
    assert abs(np.corrcoef(activities[0].ravel(), activities[1].ravel())[0, 1]) < 0.1


def test_default_trainer_step_equals_naive(getkey):
    """The defaults of `PCTrainer` (Adam 0.1, gradient descent 0.5/64 per example, T = H,
    feedforward start): the energies and per-layer energies against the naive loop. The
    energy after inference is below the energy before by the amount the naive loop says."""
    network, x, y = _setup(getkey(), activation="relu")
    trainer = mupc.PCTrainer(record_layer_energies=True)
    _, metrics = trainer.step(trainer.init(network), x, y)
    mults = spec_multipliers("mupc", D, N, H, True)
    phi = ACTIVATIONS["relu"]
    weights = weight_list(network)
    start, outputs = feedforward(weights, x, mults, phi, True)
    final = gd_inference(weights, start, x, y, mults, phi, True, "mse", 0.5 / 64, H)
    before = jnp.mean(batch_energies(weights, start, x, y, mults, phi, True, "mse"))
    after = jnp.mean(batch_energies(weights, final, x, y, mults, phi, True, "mse"))
    loss = 0.5 * np.mean(np.sum((y - np.asarray(outputs)) ** 2, axis=1))
    assert_close(metrics.loss, loss, dtype=jnp.float64, k=16)
    assert_close(metrics.energy_before, before, dtype=jnp.float64, k=16)
    # The decrease itself, compared on its own scale (not hidden under the energy's size).
    assert_close(
        metrics.energy_before - metrics.energy_after, before - after, dtype=jnp.float64,
        scale=before, k=256,
    )  # fmt: skip
    assert float(before - after) > 1e-6 * float(before)
    errors, residual = layer_errors(weights, final, x, y, mults, phi, True)
    per_layer = [0.5 * jnp.mean(jnp.sum(e**2, axis=1)) for e in (*errors, residual)]
    assert_close(metrics.layer_energies, jnp.stack(per_layer), dtype=jnp.float64,
                 scale=before, k=64)  # fmt: skip


def test_bp_step_equals_naive_gradient(getkey):
    network, x, y = _setup(getkey(), activation="relu")
    trainer = mupc.BPTrainer(optimiser=optax.sgd(0.05))
    state, metrics = trainer.step(trainer.init(network), x, y)
    mults = spec_multipliers("mupc", D, N, H, True)

    def mean_loss(w):
        _, out = feedforward(w, x, mults, ACTIVATIONS["relu"], True)
        return jnp.mean(0.5 * jnp.sum((y - out) ** 2, axis=1))

    weights = weight_list(network)
    grads = jax.grad(mean_loss)(weights)
    np.testing.assert_allclose(
        state.network.output_weights, weights[-1] - 0.05 * grads[-1], rtol=1e-10
    )
    np.testing.assert_allclose(
        state.network.hidden_weights,
        jnp.stack([w - 0.05 * g for w, g in zip(weights[1:-1], grads[1:-1], strict=True)]),
        rtol=1e-10,
    )
    assert float(metrics.loss) == pytest.approx(float(mean_loss(weights)))
    assert metrics.energy_before is None


@pytest.mark.parametrize("make_trainer", [mupc.PCTrainer, mupc.BPTrainer])
def test_step_compiles_once(make_trainer, getkey):
    network, x, y = _setup(getkey(), dtype=jnp.float32)
    trainer = make_trainer()
    state = trainer.init(network, getkey())
    traces = []
    original = type(trainer)._step

    class Counting(type(trainer)):
        def _step(self, state, inputs, targets):
            traces.append(1)
            return original(self, state, inputs, targets)

    counting = Counting()
    before = _compiled_step._cached._cache_size()
    for i in range(5):
        state, _ = counting.step(state, x + i, y)
    assert len(traces) == 1
    assert _compiled_step._cached._cache_size() == before + 1


def test_pc_training_learns(getkey):
    network, x, y = _setup(getkey(), activation="relu", dtype=jnp.float32)
    trainer = mupc.PCTrainer(optimiser=optax.adam(0.05))
    state = trainer.init(network)
    losses = []
    for _ in range(80):
        state, metrics = trainer.step(state, x, y)
        losses.append(float(metrics.loss))
    assert losses[-1] < 0.3 * losses[0]
    assert mupc.evaluate(state.network, x, y).accuracy == 1.0


@pytest.mark.parametrize(
    "inputs_shape, targets_shape, match",
    [
        ((4, 7), (4, 3), r"inputs.*\(batch, 6\).*got \(4, 7\)"),
        ((4, 6, 1), (4, 3), r"inputs.*got \(4, 6, 1\)"),
        ((4, 6), (4,), r"targets.*\(batch, 3\).*got \(4,\).*one-hot"),
        ((4, 6), (5, 3), r"same batch size.*4 and 5"),
    ],
)
def test_bad_shapes_raise(inputs_shape, targets_shape, match, getkey):
    network, _, _ = _setup(getkey())
    trainer = mupc.PCTrainer()
    with pytest.raises(ValueError, match=match):
        trainer.step(trainer.init(network), np.zeros(inputs_shape), np.zeros(targets_shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("where", ["inputs", "targets"])
def test_non_finite_data_raises(bad, where, getkey):
    network, x, y = _setup(getkey())
    (x if where == "inputs" else y)[2, 1] = bad
    with pytest.raises(ValueError, match=rf"`{where}` contains NaN or inf.*row 2"):
        mupc.BPTrainer().step(mupc.BPTrainer().init(network), x, y)
    with pytest.raises(ValueError, match=rf"`{where}` contains NaN or inf"):
        mupc.evaluate(network, x, y)


def test_unknown_names_raise():
    with pytest.raises(ValueError, match=r"Unknown optimiser 'adamm'.*adam"):
        mupc.make_optimiser("adamm", 0.1)
    with pytest.raises(ValueError, match=r"Unknown loss 'l2'.*mse"):
        mupc._loss.resolve_loss("l2")
    with pytest.raises(ValueError, match=r"learning rate must be > 0"):
        mupc.make_optimiser("adam", 0.0)


def test_evaluate_matches_numpy_with_ragged_batches(getkey):
    network, _, _ = _setup(getkey(), activation="relu")
    x = np.asarray(jax.random.normal(getkey(), (23, D), jnp.float64))
    y = np.eye(C)[np.arange(23) % C]
    result = mupc.evaluate(network, x, y, batch_size=5)
    mults = spec_multipliers("mupc", D, N, H, True)
    _, out = feedforward(weight_list(network), x, mults, ACTIVATIONS["relu"], True)
    out = np.asarray(out)
    assert result.num_examples == 23
    assert result.accuracy == pytest.approx(np.mean(out.argmax(1) == y.argmax(1)))
    assert result.loss == pytest.approx(np.mean(0.5 * np.sum((y - out) ** 2, axis=1)))


@pytest.mark.parametrize("method", ["pc", "bp"])
def test_freeze_layers_keeps_the_bottom_layers_exactly(method, getkey):
    network = mupc.ResNet(mupc.NetworkConfig(6, 8, 6, 3), key=getkey())
    optimiser = optax.chain(mupc.freeze_layers(network, 2), optax.adam(0.05))
    if method == "pc":
        trainer = mupc.PCTrainer(
            optimiser=optimiser, inference=mupc.ErrorInference.gradient_descent(0.1, 3)
        )
    else:
        trainer = mupc.BPTrainer(optimiser=optimiser)
    x = jax.random.normal(getkey(), (5, 6))
    y = jax.nn.one_hot(jnp.arange(5) % 3, 3)
    state = trainer.init(network)
    for _ in range(3):
        state, _ = trainer.step(state, x, y)
    unchanged = np.asarray(
        jnp.all(state.network.hidden_weights == network.hidden_weights, axis=(1, 2))
    )
    # H = 6: layers 5 and 6 train, i.e. W_5, W_6 = hidden rows 3, 4, and the readout.
    np.testing.assert_array_equal(unchanged, [True, True, True, False, False])
    np.testing.assert_array_equal(state.network.input_weights, network.input_weights)
    assert not np.array_equal(state.network.output_weights, network.output_weights)


def test_freeze_layers_refuses_bad_counts():
    network = mupc.ResNet(mupc.NetworkConfig(6, 8, 6, 3), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"trainable_top.*\[0, H = 6\].*got 7"):
        mupc.freeze_layers(network, 7)
