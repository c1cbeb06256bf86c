"""The conv ResNet of docs/method.md against a naive per-layer implementation (`naive_conv.py`)."""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from naive_conv import energies, forward, residual_multiplier, spec_multipliers, stack, unstack

import mupc

SHAPE = (8, 6, 2)  # height, width, channels: odd pooled sizes on purpose (6 → 3 → 1)
COMBOS = list(itertools.product(["sp", "mupc", "ntp"], ["relu", "tanh"]))


def _network(param="mupc", activation="relu", blocks=2, channels=(3, 4, 5), dtype=jnp.float64):
    config = mupc.ConvConfig(SHAPE, channels, blocks, 3, 3, activation, param)
    return mupc.ConvResNet(config, key=jax.random.key(0), dtype=dtype)


def _batch(key, dtype=jnp.float64, batch=4):
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (batch, *SHAPE), dtype)
    y = jax.nn.one_hot(jax.random.randint(k2, (batch,), 0, 3), 3, dtype=dtype)
    return x, y


@pytest.mark.parametrize("param, activation", COMBOS)
def test_multipliers_match_spec(param, activation):
    network = _network(param, activation)
    specs = network.layer_specs()
    parameterisation = mupc._parameterisation.resolve_parameterisation(param)
    got = [parameterisation.multiplier(spec) for spec in specs]
    stage, readout = spec_multipliers(param, 2, (3, 4, 5), 3, activation)
    residual = [residual_multiplier(param, c, 6, 3, activation) for c in (3, 4, 5)]
    expected = [
        stage[0], residual[0], residual[0],
        stage[1], residual[1], residual[1],
        stage[2], residual[2], residual[2],
        readout,
    ]  # fmt: skip
    assert got == pytest.approx(expected, rel=1e-12)
    assert [spec.fan_in for spec in specs] == [18, 27, 27, 27, 36, 36, 36, 45, 45, 5]


def test_relu_mupc_multipliers_by_hand():
    """docs/method.md (conv ResNets) for ReLU: √2/√(C_in·9), residual also /√L_res, readout 1/c."""
    network = _network("mupc", "relu", blocks=4, channels=(16, 32))
    got = [mupc.MuPC().multiplier(spec) for spec in network.layer_specs()]
    assert got[0] == pytest.approx(1 / math.sqrt(2 * 9))
    assert got[1] == pytest.approx(math.sqrt(2) / math.sqrt(16 * 9 * 8))
    assert got[5] == pytest.approx(math.sqrt(2) / math.sqrt(16 * 9))
    assert got[6] == pytest.approx(math.sqrt(2) / math.sqrt(32 * 9 * 8))
    assert got[-1] == pytest.approx(1 / 32)


def test_sp_initialisation_bounds_use_the_conv_fan_in():
    network = _network("sp", blocks=1, channels=(40, 3))
    assert float(jnp.abs(network.stage_weights[0]).max()) <= 1 / math.sqrt(2 * 9)
    # The second stage's convolution has fan-in 40 · 9 = 360: its bound is 1/√360.
    second = np.abs(np.asarray(network.stage_weights[1]))
    assert second.max() <= 1 / math.sqrt(360)
    assert second.max() > 0.9 / math.sqrt(360)


@pytest.mark.parametrize("param, activation", COMBOS)
def test_feedforward_equals_naive(param, activation, getkey):
    network = _network(param, activation)
    x, _ = _batch(getkey())
    acts, outputs = network.feedforward(x)
    naive_acts, naive_outputs = forward(network, x)
    assert [a.shape for a in acts] == [(3, 4, 8, 6, 3), (3, 4, 4, 3, 4), (3, 4, 2, 1, 5)]
    for got, want in zip(unstack(acts), naive_acts, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outputs, naive_outputs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("param, activation", [("sp", "relu"), ("mupc", "tanh"), ("ntp", "relu")])
def test_energy_and_gradients_equal_naive(param, activation, getkey):
    network = _network(param, activation)
    x, y = _batch(getkey())
    ff, _ = network.feedforward(x)
    acts = jax.tree.map(lambda a: a + 0.3 * jax.random.normal(getkey(), a.shape, a.dtype), ff)
    loss = mupc.MSE()
    np.testing.assert_allclose(
        mupc.energy(network, acts, x, y, loss), energies(network, unstack(acts), x, y), rtol=1e-10
    )
    grad = jax.grad(lambda a: jnp.sum(mupc.energy(network, a, x, y, loss, ff)))(acts)
    naive = jax.grad(lambda a: jnp.sum(energies(network, unstack(a), x, y)))(acts)
    for got, want in zip(grad, naive, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # The PC weight gradient at these activities (local surrogate) against the naive energy's.
    solver = mupc.DiscreteInference.gradient_descent(0.1, steps=0)
    result = mupc.InferenceResult(acts, jnp.asarray(0))
    _, wgrad = solver.weight_gradients(network, result, x, y, loss, ff)
    naive_w = jax.grad(lambda net: jnp.mean(energies(net, unstack(acts), x, y)))(network)
    for got, want in zip(network.layer_weights(wgrad), network.layer_weights(naive_w), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_conv_backward_pass_equals_xla_autodiff(getkey):
    """The hand-written VJP of the convolution against XLA's own transpose rules."""
    from mupc._network.conv import _conv, _raw_conv

    x = jax.random.normal(getkey(), (2, 7, 5, 3), jnp.float64)
    kernel = jax.random.normal(getkey(), (3, 3, 3, 4), jnp.float64)
    cotangent = jax.random.normal(getkey(), (2, 7, 5, 4), jnp.float64)
    ours = jax.vjp(_conv, x, kernel)[1](cotangent)
    xla = jax.vjp(_raw_conv, x, kernel)[1](cotangent)
    for got, want in zip(ours, xla, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_feedforward_errors_exactly_zero_in_float32(getkey):
    network = _network(blocks=3, dtype=jnp.float32)
    x, y = _batch(getkey(), jnp.float32)
    acts, _ = network.feedforward(x)
    errors = mupc.prediction_errors(network, acts, x)
    assert all(int(jnp.count_nonzero(leaf)) == 0 for leaf in errors)
    per_layer = mupc.layer_energies(network, acts, x, y, mupc.MSE())
    assert per_layer.shape == (network.num_layers + 1, 4)
    assert np.count_nonzero(np.asarray(per_layer[:-1])) == 0


@pytest.mark.parametrize("inference", ["gd", "epc"])
def test_training_step_equals_naive_gd_then_adam(inference, getkey):
    """One PC step (3 inference steps then Adam) against the naive network: inference by
    autodiff of the naive energy, one layer list at a time."""
    network = _network(blocks=1)
    x, y = _batch(getkey())
    lr = 0.2
    if inference == "gd":
        solver = mupc.DiscreteInference.gradient_descent(lr, 3)
        acts = unstack(network.feedforward(x)[0])
        grad = jax.grad(lambda a: jnp.sum(energies(network, a, x, y)))
        for _ in range(3):
            acts = [a - lr * g for a, g in zip(acts, grad(acts), strict=True)]
    else:
        solver = mupc.ErrorInference.gradient_descent(lr, 3)
        errors = [jnp.zeros_like(a) for a in unstack(network.feedforward(x)[0])]

        def epc_energy(errs):
            acts, outputs = forward(network, x, errs)
            hidden = sum(0.5 * jnp.sum(e**2, axis=(1, 2, 3)) for e in errs)
            return jnp.sum(hidden + 0.5 * jnp.sum((y - outputs) ** 2, axis=1))

        for _ in range(3):
            errors = [e - lr * g for e, g in zip(errors, jax.grad(epc_energy)(errors), strict=True)]
        acts = forward(network, x, errors)[0]
    naive_grads = jax.grad(lambda net: jnp.mean(energies(net, acts, x, y)))(network)
    optimiser = optax.adam(1e-2)
    params = eqx.filter(network, eqx.is_inexact_array)
    with jax.numpy_dtype_promotion("standard"):
        updates, _ = optimiser.update(naive_grads, optimiser.init(params), params)
    expected = eqx.apply_updates(network, updates)
    trainer = mupc.PCTrainer(optimiser=optax.adam(1e-2), inference=solver)
    state, _ = trainer.step(trainer.init(network), x, y)
    for got, want in zip(
        network.layer_weights(state.network), network.layer_weights(expected), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)  # Adam divides by |g|
    assert stack(network, acts)[0].shape == (2, 4, 8, 6, 3)


def test_mupc_activities_stay_order_one_with_depth(getkey):
    """docs/method.md ("Linear networks in closed form", last fact) for the conv ResNet: under
    μPC the activities' RMS barely moves from
    1 to 32 blocks per stage; under sp it grows with depth."""
    x = jax.random.normal(getkey(), (8, 8, 8, 1))

    def top_rms(param, blocks):
        config = mupc.ConvConfig((8, 8, 1), (8, 8), blocks, 10, 3, "relu", param)
        network = mupc.ConvResNet(config, key=jax.random.key(1))
        acts, _ = network.feedforward(x)
        return float(jnp.sqrt(jnp.mean(acts[-1][-1] ** 2)))

    mupc_ratio = top_rms("mupc", 32) / top_rms("mupc", 1)
    sp_ratio = top_rms("sp", 32) / top_rms("sp", 1)
    assert 0.5 < mupc_ratio < 2.0, mupc_ratio
    assert sp_ratio > 2.0, sp_ratio


def test_checkpoint_round_trip(tmp_path, getkey):
    network = _network(blocks=2, dtype=jnp.float32)
    trainer = mupc.PCTrainer(inference=mupc.ErrorInference.gradient_descent(0.1, 2))
    x, y = _batch(getkey(), jnp.float32)
    state, _ = trainer.step(trainer.init(network), x, y)
    mupc.save_checkpoint(tmp_path / "c.npz", state)
    loaded = mupc.load_network(tmp_path / "c.npz")
    assert isinstance(loaded, mupc.ConvResNet) and loaded.config == network.config
    for got, want in zip(
        loaded.layer_weights(loaded), state.network.layer_weights(state.network), strict=True
    ):
        np.testing.assert_array_equal(got, want)
    restored = mupc.load_checkpoint(tmp_path / "c.npz", like=trainer.init(network))
    np.testing.assert_array_equal(restored.network.output_weights, state.network.output_weights)


def test_hessian_of_a_conv_network_equals_the_naive_dense_hessian(getkey):
    network = _network(blocks=1, channels=(2, 2))
    x, y = _batch(getkey(), batch=1)
    dense = mupc.activity_hessian(network, x, y)[0]
    acts, _ = network.feedforward(x)
    flat, unravel = jax.flatten_util.ravel_pytree(acts)
    expected = jax.hessian(lambda f: energies(network, unstack(unravel(f)), x, y)[0])(flat)
    np.testing.assert_allclose(dense, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_shape": (8, 8)}, "input_shape"),
        ({"input_shape": (8, 8, 1), "channels": ()}, "channels"),
        ({"input_shape": (8, 8, 1), "blocks": -1}, "blocks"),
        ({"input_shape": (8, 8, 1), "kernel_size": 2}, "odd"),
        ({"input_shape": (8, 8, 1), "activation": "swish"}, "swish"),
        ({"input_shape": (2, 2, 1), "channels": (4, 4, 4)}, "below 1×1"),
    ],
)
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mupc.ConvConfig(**kwargs)


def test_wrong_image_shape_is_refused():
    network = _network(dtype=jnp.float32)
    trainer = mupc.PCTrainer()
    with pytest.raises(ValueError, match=r"\(batch, 8, 6, 2\).*NHWC"):
        trainer.step(trainer.init(network), np.zeros((4, 2, 8, 6)), np.eye(3)[[0, 1, 2, 0]])


def _diagnosed_conv(depth, width, side, classes, seed=0):
    """The conv network and probe batch that `mupc diagnose ... --network conv --stages 2`
    measures at one grid point (the documented seeding of `mupc/experiments/_diagnose.py`)."""
    from helpers import diagnose_batch

    from mupc.experiments import RunConfig

    config = RunConfig(
        network="conv", depth=depth, width=width, stages=2, activation="relu",
        parameterisation="mupc",
    )  # fmt: skip
    key = jax.random.fold_in(jax.random.key(seed), 2)
    network = config.build_network((side, side, 1), classes, key=key, dtype=None)
    x, y = diagnose_batch(seed, 1, side * side, classes, 1)
    return network, x.reshape(1, side, side, 1), y


@pytest.mark.slow  # in `make test-slow`: the suite's 10-minute budget
def test_cli_hessian_of_a_conv_network_equals_the_naive_dense_hessian(tmp_path):
    from helpers import read_csv

    from mupc._cli import main

    code = main(
        [
            "diagnose", "hessian", "--network", "conv", "--input-dim", "16", "--output-dim",
            "3", "--widths", "2", "--depths", "1", "2", "--params", "mupc", "--activation",
            "relu", "--train-steps", "0", "--out", str(tmp_path), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    rows = read_csv(tmp_path / "hessian.csv")
    assert [(r["depth"], r["skips"], r["method"]) for r in rows] == [
        ("1", "True", "dense"),
        ("2", "True", "dense"),
    ]
    for row in rows:
        network, x, y = _diagnosed_conv(int(row["depth"]), 2, 4, 3)
        acts, _ = network.feedforward(x)
        flat, unravel = jax.flatten_util.ravel_pytree(acts)

        def energy(f, network=network, unravel=unravel, x=x, y=y):
            return energies(network, unstack(unravel(f)), x, y)[0]

        hessian = jax.hessian(energy)(flat)
        eigenvalues = np.linalg.eigvalsh(np.asarray(hessian))
        np.testing.assert_allclose(float(row["lambda_min"]), eigenvalues[0], rtol=1e-8)
        np.testing.assert_allclose(float(row["lambda_max"]), eigenvalues[-1], rtol=1e-8)
        np.testing.assert_allclose(
            float(row["condition_number"]), eigenvalues[-1] / eigenvalues[0], rtol=1e-6
        )


def test_cli_coords_of_a_conv_network_starts_from_the_naive_forward_pass(tmp_path):
    from helpers import read_csv

    from mupc._cli import main

    code = main(
        [
            "diagnose", "coords", "--network", "conv", "--input-dim", "16", "--output-dim", "3",
            "--widths", "2", "--depths", "2", "--params", "mupc", "--steps", "2",
            "--batch-size", "1", "--out", str(tmp_path), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    rows = read_csv(tmp_path / "coords.csv")
    network, _, _ = _diagnosed_conv(2, 2, 4, 3)
    from helpers import diagnose_batch

    x, _ = diagnose_batch(0, 1, 16, 3, 1)  # `_task(args, key, 1)`: the coords batch
    naive_acts, naive_outputs = forward(network, x.reshape(1, 4, 4, 1))
    expected = [float(np.sqrt(np.mean(np.asarray(a) ** 2))) for a in naive_acts]
    expected.append(float(np.sqrt(np.mean(np.asarray(naive_outputs) ** 2))))
    activity = [r for r in rows if r["quantity"] == "activity" and r["step"] == "0"]
    assert [int(r["layer"]) for r in activity] == list(range(1, network.num_layers + 2))
    np.testing.assert_allclose([float(r["rms"]) for r in activity], expected, rtol=1e-8)
    # Every quantity at both recorded steps.
    from mupc._diagnostics.coords import QUANTITIES

    assert {(r["quantity"], r["step"]) for r in rows} == {(q, s) for q in QUANTITIES for s in "01"}


def test_cli_conv_diagnostics_need_square_images(tmp_path, capsys):
    from mupc._cli import main

    code = main(
        ["diagnose", "coords", "--network", "conv", "--input-dim", "15", "--out", str(tmp_path)]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert "square" in error and "got 15" in error


# ------------------------------------------------------------------- skipping unmoved layers


@eqx.filter_jit
def _feedforward(network, x):
    return network.feedforward(x)[0]


@eqx.filter_jit
def _inference(solver, network, reference, x, y):
    """The solver from the feedforward activities `reference`, compiled (as the trainer runs
    it). Solvers compared with each other get the same `reference`: two programs may round
    the feedforward pass differently."""
    return solver.run(network, reference, x, y, mupc.MSE(), feedforward_start=True)


@pytest.mark.parametrize(
    "blocks, channels, optimiser",
    [
        (2, (3, 4, 5), optax.sgd(0.3)),
        (1, (2, 3), optax.sgd(0.2, momentum=0.9)),
        (0, (3, 4), optax.sgd(0.3)),
    ],
    ids=["2x3-sgd", "1x2-momentum", "0x2-sgd"],
)
def test_skipping_unmoved_layers_is_bit_exact(blocks, channels, optimiser, getkey):
    """In float32, inference that updates only the top block of layers that has moved gives
    the very numbers of inference that updates every layer (T = 2L + 1: every bucket of top
    layers is entered once the front of moved layers reaches the bottom)."""
    network = _network(blocks=blocks, channels=channels, dtype=jnp.float32)
    x, y = _batch(getkey(), jnp.float32)
    steps = 2 * network.num_layers + 1
    reference = _feedforward(network, x)
    full = mupc.DiscreteInference(optimiser, steps, skip_inactive=False)
    fast = mupc.DiscreteInference(optimiser, steps, skip_inactive=True)
    full_result = _inference(full, network, reference, x, y)
    fast_result = _inference(fast, network, reference, x, y)
    for got, want in zip(fast_result.activities, full_result.activities, strict=True):
        np.testing.assert_array_equal(got, want)
    moved = [bool(jnp.any(a != b)) for a, b in zip(full_result.activities, reference, strict=True)]
    assert all(moved)  # inference reached every stage


def test_skipping_unmoved_layers_with_adam_equals_the_full_computation(getkey):
    """Adam on the activities (float64; in float32 the sliced and the full update are fused
    differently and differ in the last bits, as for the MLP)."""
    network = _network(blocks=1, channels=(2, 3))
    x, y = _batch(getkey())
    solver = mupc.DiscreteInference(optax.adam(0.05), 9, skip_inactive=False)
    reference = _feedforward(network, x)
    full = _inference(solver, network, reference, x, y)
    fast = _inference(
        eqx.tree_at(lambda s: s.skip_inactive, solver, True), network, reference, x, y
    )
    for got, want in zip(fast.activities, full.activities, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("start", [3, 5, 7])
def test_top_layer_gradient_equals_naive(start, getkey):
    """`energy_gradient(..., start)` on a network cut by `for_layers_above(start)`, with the
    layers below `start` at their feedforward activities, against automatic differentiation
    of the naive per-layer energy (`start` at a stage's first row, at its top row, and inside
    the top stage)."""
    from mupc._slicing import slice_layers

    network = _network(blocks=2)  # 9 layers: 3 per stage
    x, y = _batch(getkey())
    reference, _ = network.feedforward(x)
    moved = jax.tree.map(
        lambda a: a + 0.3 * jax.random.normal(getkey(), a.shape, a.dtype), reference
    )
    flat_moved, flat_reference = unstack(moved), unstack(reference)
    top = slice_layers(moved, start)
    gradient = eqx.filter_jit(network.for_layers_above(start).energy_gradient)(
        top,
        slice_layers(reference, start),
        slice_layers(network.features(reference), start),
        y,
        mupc.MSE(),
        start,
    )

    def naive_total(upper):
        return jnp.sum(energies(network, flat_reference[:start] + list(upper), x, y))

    expected = jax.jit(jax.grad(naive_total))(flat_moved[start:])
    assert [leaf.shape[0] for leaf in gradient] == [leaf.shape[0] for leaf in top]
    for got, want in zip(unstack(gradient), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_unmoved_conv_layers_have_exactly_zero_errors_and_weight_gradients(getkey):
    """Published inference (GD, 0.5 batch-mean, T = L) with skipping, float32, from the
    feedforward pass: the layers inference has not reached keep their feedforward activities
    bit for bit, their errors and weight gradients are exactly 0, and one Adam step leaves
    their kernels unchanged."""
    network = _network(blocks=5, channels=(4, 4), dtype=jnp.float32)  # 12 layers
    x, y = _batch(getkey(), jnp.float32, batch=8)
    loss = mupc.MSE()
    solver = mupc.DiscreteInference.gradient_descent(0.5 / 8)
    reference = _feedforward(network, x)
    result = _inference(solver, network, reference, x, y)
    pairs = zip(unstack(result.activities), unstack(reference), strict=True)
    moved = np.array([bool(jnp.any(a != b)) for a, b in pairs])
    assert moved[-1] and not moved[0], moved  # the top moved, the bottom did not
    still = ~moved & np.concatenate([[True], ~moved[:-1]])  # neither z_l nor z_{l-1} moved
    errors = unstack(mupc.prediction_errors(network, result.activities, x, reference))
    assert not any(bool(jnp.any(e != 0)) for e, s in zip(errors, still, strict=True) if s)
    _, grads = solver.weight_gradients(network, result, x, y, loss, reference)
    kernels = network.layer_weights(grads)[:-1]  # one per PC layer, bottom to top
    assert all(bool(jnp.all(k == 0)) for k, s in zip(kernels, still, strict=True) if s)
    assert not bool(jnp.all(kernels[-1] == 0))
    adam = optax.adam(0.1)
    params = eqx.filter(network, eqx.is_inexact_array)
    with jax.numpy_dtype_promotion("standard"):
        updates, _ = adam.update(grads, adam.init(params), params)
    new = eqx.apply_updates(network, updates)
    for old_kernel, new_kernel, s in zip(
        network.layer_weights(network)[:-1], new.layer_weights(new)[:-1], still, strict=True
    ):
        assert bool(jnp.array_equal(old_kernel, new_kernel)) == bool(s)


def test_conv_runs_default_to_a_conv_sized_network():
    """`mupc train --network conv` without -H / -N builds 2 blocks per stage with 8 → 16 → 32
    channels (the MLP's width would make 128 → 256 → 512); the MLP keeps H = 8, N = 128."""
    from mupc._cli import build_parser
    from mupc._commands.train import config_from_args

    def parsed(*flags):
        return config_from_args(build_parser().parse_args(["train", *flags]))

    conv = parsed("--network", "conv")
    network = conv.build_network((28, 28, 1), 10, key=jax.random.key(0), dtype=jnp.float32)
    assert network.config.channels == (8, 16, 32) and network.config.blocks == 2
    assert network.num_layers == 3 * (2 + 1)
    given = parsed("--network", "conv", "-H", "5", "-N", "4")
    assert (given.depth, given.width) == (5, 4)
    mlp = parsed()
    assert (mlp.depth, mlp.width) == (8, 128)
    assert mupc.experiments.RunConfig(network="conv").to_dict()["width"] == 8
