"""Learning at PC's equilibrium (`--inference epc-then-pc`, `SequentialInference.equilibrium`):
the weight gradient at the refined activities against the least-squares equilibrium built with
NumPy, the refine phase's descent, and the command line's round trip into `RunConfig`."""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from naive import dense_linear_system, local_weight_gradients, spec_multipliers, weight_list

import mupc
from mupc._commands import train
from mupc._diagnostics.signal import parse_setting
from mupc.experiments import RunConfig
from mupc.experiments._config import EQUILIBRIUM_WARM_LR, EQUILIBRIUM_WEIGHT_LR
from mupc.experiments._loop import build_trainer

D, C, B = 5, 3, 4


def _problem(key, activation, depth=3, width=4):
    config = mupc.NetworkConfig(D, width, depth, C, activation, "mupc", True)
    k1, k2, k3 = jax.random.split(key, 3)
    network = mupc.ResNet(config, key=k1, dtype=jnp.float64)
    x = jax.random.normal(k2, (B, D), jnp.float64)
    y = jax.nn.one_hot(jax.random.randint(k3, (B,), 0, C), C, dtype=jnp.float64)
    return network, x, y


def test_weight_gradient_is_the_gradient_at_the_least_squares_equilibrium(getkey):
    """Linear network: ePC's warm start, then the activities refined to tolerance; the weights'
    gradient equals ∂F̄/∂W of the naive energy at z* = H_z⁻¹ b (NumPy solve per example)."""
    network, x, y = _problem(getkey(), "linear")
    solver = mupc.SequentialInference.equilibrium(
        mupc.ErrorInference.gradient_descent(0.1, 3), 0.25, 20_000, tolerance=1e-11
    )
    trainer = mupc.PCTrainer(inference=solver)
    grads, metrics = eqx.filter_jit(trainer.gradients)(network, x, y, jax.random.key(0))
    assert 3 < int(metrics.inference_steps) < 3 + 20_000, "the refinement must converge"
    cfg = network.config
    z_star = [
        np.linalg.solve(*dense_linear_system(network, x[i], y[i])).reshape(cfg.depth, cfg.width)
        for i in range(B)
    ]
    activities = [jnp.stack([z[layer] for z in z_star]) for layer in range(cfg.depth)]
    mults = spec_multipliers("mupc", D, cfg.width, cfg.depth, True)
    expected = local_weight_gradients(
        weight_list(network), activities, x, y, mults, lambda v: v, True, "mse"
    )
    for got, want in zip(weight_list(grads), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10)


def test_the_refine_phase_lowers_every_examples_energy(getkey):
    """From where ePC's warm start stops, gradient descent on the activities lowers each
    example's energy, and stops at the tolerance before R steps."""
    network, x, y = _problem(getkey(), "tanh", depth=6, width=8)
    warm = mupc.ErrorInference.gradient_descent(0.05, 2)
    after_warm = mupc.PCTrainer(inference=warm).infer(network, x, y)
    schedule = mupc.SequentialInference.equilibrium(warm, 0.3, 5_000, tolerance=1e-6)
    refined = mupc.PCTrainer(inference=schedule).infer(network, x, y)
    assert np.all(np.asarray(refined.energy) < np.asarray(after_warm.energy))
    assert 2 < int(refined.steps) < 2 + 5_000


def _config(*flags):
    parser = argparse.ArgumentParser()
    train.add_network_arguments(parser)
    return train.config_from_args(parser.parse_args(["--dataset", "synthetic", *flags]))


def test_the_flags_round_trip_into_the_config_and_the_trainer():
    flags = ["--inference", "epc-then-pc", "--refine-steps", "7", "--refine-lr", "0.3"]
    config = _config(*flags, "--refine-tolerance", "none", "-T", "4")
    assert (config.refine_steps, config.refine_lr, config.refine_tolerance) == (7, 0.3, None)
    assert (config.lr, config.activity_lr) == (EQUILIBRIUM_WEIGHT_LR, EQUILIBRIUM_WARM_LR)
    assert RunConfig.from_dict(config.to_dict()) == config
    inference = build_trainer(config).inference
    assert isinstance(inference, mupc.SequentialInference)
    assert inference.first.steps == 4 and isinstance(inference.first, mupc.ErrorInference)
    assert (inference.then.steps, inference.then.tolerance) == (7, None)
    assert _config(*flags, "--refine-tolerance", "1e-4").refine_tolerance == 1e-4


@pytest.mark.parametrize(
    "flags, match",
    [
        (["--refine-steps", "3"], "--refine-steps refines PC's equilibrium"),
        (["--inference", "epc", "--refine-lr", "0.1"], "--refine-lr refines"),
    ],
)
def test_refine_flags_need_the_schedule(flags, match):
    with pytest.raises(ValueError, match=match):
        _config(*flags)


def test_bad_refine_settings_are_one_line_errors():
    with pytest.raises(ValueError, match=r"`refine_steps` = 3 applies to inference 'epc-then-pc'"):
        RunConfig(refine_steps=3)
    with pytest.raises(ValueError, match=r"`refine_lr` must be a positive finite number, got -1"):
        RunConfig(inference="epc-then-pc", refine_lr=-1.0)
    with pytest.raises(ValueError, match=r"`refine_steps` must be an integer ≥ 0, got 1.5"):
        RunConfig(inference="epc-then-pc", refine_steps=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`warm` must be a mupc.ErrorInference"):
        mupc.SequentialInference.equilibrium(mupc.DiscreteInference(optax.sgd(0.1)), 0.1, 3)


def test_signal_setting_of_the_schedule():
    setting = parse_setting("epc-then-gd:0.1:2:0.2:7:1e-4", depth=4)
    inference = setting.trainer.inference
    assert isinstance(inference, mupc.SequentialInference)
    assert (inference.first.steps, inference.then.steps, inference.then.tolerance) == (2, 7, 1e-4)
    assert setting.label == "epc 0.1 T=2 + gd 0.2 R=7 tol=1e-4"
    with pytest.raises(ValueError, match="epc-then-gd:LR:T:REFINE_LR:R"):
        parse_setting("epc-then-gd:0.1:2", depth=4)
    with pytest.raises(ValueError, match="Bad tolerance 'x'"):
        parse_setting("epc-then-gd:0.1:2:0.2:7:x", depth=4)
