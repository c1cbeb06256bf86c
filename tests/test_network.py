"""The network of docs/method.md: multipliers, initialisation, forward pass, depth stability."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close
from naive import ACTIVATIONS, feedforward, spec_multipliers, weight_list

import mupc


@pytest.mark.parametrize("param", ["sp", "mupc", "ntp"])
@pytest.mark.parametrize("skips", [True, False])
def test_multipliers_match_spec_table(param, skips):
    config = mupc.NetworkConfig(784, 64, 6, 10, parameterisation=param, skips=skips)
    expected = spec_multipliers(param, 784, 64, 6, skips)
    assert config.multipliers == pytest.approx(expected, rel=1e-12)


def test_spec_worked_example():
    # docs/method.md: N = 512, H = 128 gives a_1 = 1/28, a_l = 1/sqrt(512·129) ≈ 3.89e-3,
    # a_L = 1/512.
    first, hidden, last = mupc.NetworkConfig(784, 512, 128, 10).multipliers
    assert first == pytest.approx(1 / 28)
    assert hidden == pytest.approx(3.89e-3, abs=5e-6)
    assert last == pytest.approx(1 / 512)


def test_initialisation_distributions(getkey):
    mu = mupc.ResNet(mupc.NetworkConfig(256, 256, 9, 10, parameterisation="mupc"), key=getkey())
    assert mu.hidden_weights.shape == (8, 256, 256)
    assert float(jnp.std(mu.hidden_weights)) == pytest.approx(1.0, abs=0.01)
    assert abs(float(jnp.mean(mu.hidden_weights))) < 0.01


# D, N and C all differ, so a bound computed from the wrong axis of any matrix shows.
_D, _N, _C = 900, 64, 5


@pytest.mark.parametrize(
    "name, fan_in", [("input_weights", _D), ("hidden_weights", _N), ("output_weights", _N)]
)
def test_sp_weights_are_uniform_with_the_fan_in_bound(name, fan_in, getkey):
    """docs/method.md: `sp` draws every matrix from U(±1/√fan_in), fan_in = its input dimension."""
    network = mupc.ResNet(
        mupc.NetworkConfig(_D, _N, 3, _C, parameterisation="sp"), key=getkey(), dtype=jnp.float64
    )
    weights = np.asarray(getattr(network, name))
    bound, count = 1 / math.sqrt(fan_in), weights.size  # count ≥ 320
    assert np.max(np.abs(weights)) <= bound
    # The largest of m draws of U(±b) is below b(1 − t) with probability (1 − t)^m ≤ e^{−tm}:
    # with t = 0.05 and m ≥ 320 that is e^{−16}; a bound from the wrong axis is ≥ 3.5× off.
    assert np.max(np.abs(weights)) >= 0.95 * bound
    # U(±b) has standard deviation b/√3 (the sample sd is within ~4% at m = 320).
    assert np.std(weights) == pytest.approx(bound / math.sqrt(3), rel=0.12)
    assert abs(np.mean(weights)) < 4 * bound / math.sqrt(3 * count)


@pytest.mark.parametrize("param", ["mupc", "ntp"])
def test_mupc_weights_are_standard_normal_whatever_the_fan_in(param, getkey):
    network = mupc.ResNet(
        mupc.NetworkConfig(_D, _N, 3, _C, parameterisation=param), key=getkey(), dtype=jnp.float64
    )
    for weights in (network.input_weights, network.hidden_weights, network.output_weights):
        sample = np.asarray(weights).ravel()
        # Sample sd of m ≥ 320 standard normals: relative error ~ 1/√(2m) ≤ 4%.
        assert np.std(sample) == pytest.approx(1.0, rel=0.16), weights.shape


@pytest.mark.parametrize("param", ["sp", "mupc", "ntp"])
@pytest.mark.parametrize("skips", [True, False])
@pytest.mark.parametrize("activation", ["linear", "tanh", "relu"])
def test_forward_equals_naive(param, skips, activation, getkey):
    config = mupc.NetworkConfig(12, 16, 5, 3, activation, param, skips)
    network = mupc.ResNet(config, key=getkey(), dtype=jnp.float64)
    x = jax.random.normal(getkey(), (7, 12), jnp.float64)
    activities, outputs = network.feedforward(x)
    mults = spec_multipliers(param, 12, 16, 5, skips)
    expected_acts, expected_out = feedforward(
        weight_list(network), x, mults, ACTIVATIONS[activation], skips
    )
    np.testing.assert_allclose(outputs, expected_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(activities, jnp.stack(expected_acts), rtol=1e-10, atol=1e-12)


def test_single_hidden_layer(getkey):
    network = mupc.ResNet(mupc.NetworkConfig(5, 4, 1, 2), key=getkey(), dtype=jnp.float64)
    assert network.hidden_weights.shape == (0, 4, 4)
    x = jax.random.normal(getkey(), (3, 5), jnp.float64)
    a1, _, aL = spec_multipliers("mupc", 5, 4, 1, True)
    expected = aL * jax.nn.relu(a1 * x @ network.input_weights.T) @ network.output_weights.T
    np.testing.assert_allclose(network(x), expected, rtol=1e-12)


def _rms_ratio_band(param, width, depth, key):
    config = mupc.NetworkConfig(784, width, depth, 10, "relu", param)
    network = mupc.ResNet(config, key=key, dtype=jnp.float32)
    x = jax.random.normal(jax.random.key(7), (16, 784), network.dtype)
    activities, _ = network.feedforward(x)
    rms = jnp.sqrt(jnp.mean(activities**2, axis=(1, 2)))
    ratio = rms / rms[0]
    return float(jnp.min(ratio)), float(jnp.max(ratio))


@pytest.mark.parametrize("width", [32, 128, 512])
@pytest.mark.parametrize("depth", [8, 64, 512])
def test_mupc_forward_rms_stays_in_band(width, depth, getkey):
    low, high = _rms_ratio_band("mupc", width, depth, getkey())
    assert 0.3 <= low and high <= 3.0, (low, high)


@pytest.mark.parametrize("width", [32, 512])
def test_sp_forward_rms_leaves_band_with_depth(width, getkey):
    low, high = _rms_ratio_band("sp", width, 512, getkey())
    assert low < 0.3 or high > 3.0, (low, high)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 0}, r"depth.*≥ 1.*got 0"),
        ({"depth": -3}, r"depth.*got -3"),
        ({"width": 0}, r"width.*positive integer.*got 0"),
        ({"activation": "swish"}, r"Unknown activation 'swish'.*relu"),
        ({"parameterisation": "mup"}, r"Unknown parameterisation 'mup'.*mupc"),
    ],
)
def test_bad_config_raises(kwargs, match):
    base = {"input_dim": 4, "width": 8, "depth": 2, "output_dim": 3}
    with pytest.raises(ValueError, match=match):
        mupc.NetworkConfig(**{**base, **kwargs})


def test_callable_activation(getkey):
    config = mupc.NetworkConfig(4, 8, 3, 2, activation=jnp.sin)
    network = mupc.ResNet(config, key=getkey(), dtype=jnp.float64)
    x = jax.random.normal(getkey(), (5, 4), jnp.float64)
    activities, outputs = network.feedforward(x)
    mults = spec_multipliers("mupc", 4, 8, 3, True)
    expected_acts, expected_out = feedforward(weight_list(network), x, mults, jnp.sin, True)
    assert_close(outputs, expected_out, dtype=jnp.float64, k=16)
    assert_close(activities, jnp.stack(expected_acts), dtype=jnp.float64, k=16)
    with pytest.raises(ValueError, match="custom activation"):
        config.to_dict()
