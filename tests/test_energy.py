"""The energy of docs/method.md and its gradients, against the naive per-layer oracle and finite
differences."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close
from naive import ACTIVATIONS, batch_energies, numpy_feedforward, spec_multipliers, weight_list

import mupc
from mupc._energy import errors_from_changes

D, N, H, C, B = 6, 8, 4, 3, 5
COMBOS = list(itertools.product(["sp", "mupc", "ntp"], [True, False], ["linear", "tanh", "relu"]))


def _problem(param, skips, activation, key, dtype=jnp.float32):
    config = mupc.NetworkConfig(D, N, H, C, activation, param, skips)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    network = mupc.ResNet(config, key=k1, dtype=dtype)
    x = jax.random.normal(k2, (B, D), dtype)
    y = jax.nn.one_hot(jax.random.randint(k3, (B,), 0, C), C, dtype=dtype)
    # Activities away from the feedforward point so every error term is exercised.
    acts = jax.random.normal(k4, (H, B, N), dtype)
    return network, x, y, acts


def _naive(network, acts, x, y, loss):
    cfg = network.config
    mults = spec_multipliers(cfg.parameterisation, D, N, H, cfg.skips)
    phi = ACTIVATIONS[cfg.activation]
    return lambda w, a: batch_energies(w, a, x, y, mults, phi, cfg.skips, loss)


@pytest.mark.parametrize("loss_name", ["mse", "cross-entropy"])
@pytest.mark.parametrize("param, skips, activation", COMBOS)
def test_energy_and_gradients_equal_naive(param, skips, activation, loss_name, getkey):
    network, x, y, acts = _problem(param, skips, activation, getkey())
    loss = mupc._loss.resolve_loss(loss_name)
    naive = _naive(network, acts, x, y, loss_name)
    weights, act_list = weight_list(network), [acts[i] for i in range(H)]

    # float32 throughout; each value is compared on the scale of the largest of its kind
    # (gradients are sums of products of O(1) activities, weights and errors).
    def check(actual, expected, what):
        assert_close(actual, expected, dtype=jnp.float32, k=64, err_msg=what)

    check(mupc.energy(network, acts, x, y, loss), naive(weights, act_list), "energy")
    # Activity gradient of the summed energy = each example's own gradient.
    fast_grad = jax.grad(lambda a: jnp.sum(mupc.energy(network, a, x, y, loss)))(acts)
    naive_grad = jax.grad(lambda a: jnp.sum(naive(weights, a)))(act_list)
    check(fast_grad, jnp.stack(naive_grad), "activity gradient")
    # Weight gradient of the batch-mean energy.
    fast_w = jax.grad(lambda net: jnp.mean(mupc.energy(net, acts, x, y, loss)), allow_int=True)(
        network
    )
    naive_w = jax.grad(lambda w: jnp.mean(naive(w, act_list)))(weights)
    check(fast_w.input_weights, naive_w[0], "W_1 gradient")
    check(fast_w.hidden_weights, jnp.stack(naive_w[1:-1]), "W_2..W_H gradient")
    check(fast_w.output_weights, naive_w[-1], "W_L gradient")


@pytest.mark.parametrize(
    "param, skips, activation", [("mupc", True, "tanh"), ("sp", False, "relu")]
)
def test_layer_energies_sum_to_energy(param, skips, activation, getkey):
    network, x, y, acts = _problem(param, skips, activation, getkey())
    per_layer = mupc.layer_energies(network, acts, x, y, mupc.MSE())
    assert per_layer.shape == (H + 1, B)
    np.testing.assert_allclose(
        per_layer.sum(0), mupc.energy(network, acts, x, y, mupc.MSE()), rtol=1e-5
    )
    # The first term is ½‖z_1 − a_1 W_1 x‖², written out here.
    a1 = spec_multipliers(param, D, N, H, skips)[0]
    first = 0.5 * jnp.sum((acts[0] - a1 * x @ network.input_weights.T) ** 2, axis=1)
    np.testing.assert_allclose(per_layer[0], first, rtol=1e-5)


@pytest.mark.parametrize("loss", [mupc.MSE(), mupc.CrossEntropy()])
def test_finite_differences_float64(loss, getkey):
    network, x, y, acts = _problem("mupc", True, "tanh", getkey(), jnp.float64)

    def total(a):
        return float(jnp.sum(mupc.energy(network, a, x, y, loss)))

    grad = jax.grad(lambda a: jnp.sum(mupc.energy(network, a, x, y, loss)))(acts)
    eps = 1e-6
    for index in [(0, 0, 0), (1, 2, 3), (H - 1, B - 1, N - 1), (H - 1, 0, 5)]:
        bumped = acts.at[index].add(eps)
        lowered = acts.at[index].add(-eps)
        fd = (total(bumped) - total(lowered)) / (2 * eps)
        assert fd == pytest.approx(float(grad[index]), rel=1e-6, abs=1e-8)

    def mean_energy(hidden):
        net = eqx.tree_at(lambda n: n.hidden_weights, network, hidden)
        return jnp.mean(mupc.energy(net, acts, x, y, loss))

    wgrad = jax.grad(mean_energy)(network.hidden_weights)
    for index in [(0, 0, 0), (H - 2, 3, 7)]:
        w = network.hidden_weights
        fd = (
            float(mean_energy(w.at[index].add(eps))) - float(mean_energy(w.at[index].add(-eps)))
        ) / (2 * eps)
        assert fd == pytest.approx(float(wgrad[index]), rel=1e-6, abs=1e-8)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = jnp.array([[1e4, 0.0, -1e4]], jnp.float32)
    targets = jnp.array([[0.0, 1.0, 0.0]], jnp.float32)
    value = mupc.CrossEntropy()(logits, targets)
    assert float(value[0]) == pytest.approx(1e4, rel=1e-6)


@pytest.mark.parametrize("param, skips, activation", COMBOS)
def test_feedforward_initialisation_zeroes_hidden_errors_exactly(param, skips, activation, getkey):
    network, x, y, _ = _problem(param, skips, activation, getkey())  # float32
    acts = mupc.FeedforwardInit()(network, x, getkey())
    per_layer = mupc.layer_energies(network, acts, x, y, mupc.MSE())
    assert np.all(np.asarray(per_layer[:-1]) == 0.0)  # bit for bit, not "small"
    # The output term is the feedforward MSE loss ½‖y − ŷ‖², ŷ from the naive float64 pass.
    _, outputs = numpy_feedforward(network, x)
    loss = 0.5 * np.sum((np.asarray(y, np.float64) - outputs) ** 2, axis=1)
    assert_close(per_layer[-1], loss, dtype=jnp.float32, k=64)


def test_errors_of_the_top_layers_equal_the_full_errors_below_an_unmoved_layer(getkey):
    """`errors_from_changes(..., start=s)` (used to skip inactive layers) gives the errors of
    layers s + 1..H when z_1..z_s are at the feedforward point."""
    network, x, y, _ = _problem("mupc", True, "relu", getkey(), jnp.float64)
    reference = network.feedforward(x)[0]
    features = network.features(reference)
    moved = reference.at[3:].add(jax.random.normal(getkey(), reference[3:].shape, jnp.float64))
    full = errors_from_changes(network, moved, reference, features)
    assert np.all(np.asarray(full[:3]) == 0.0)
    for start in range(1, 4):
        top = errors_from_changes(
            network, moved[start:], reference[start:], features[start:], start
        )
        np.testing.assert_allclose(top, full[start:], rtol=1e-12, atol=1e-14)


# Every skips × activation pair with both losses and both starts, the parameterisations taken
# in turn (they change only the multipliers): 24 cases rather than 72.
CLOSED_FORM_CASES = [
    (["sp", "mupc", "ntp"][i % 3], skips, activation, loss_name, start)
    for i, (skips, activation, loss_name, start) in enumerate(
        itertools.product(
            [True, False], ["linear", "tanh", "relu"], ["mse", "cross-entropy"], [0, 2]
        )
    )
]


@pytest.mark.parametrize("param, skips, activation, loss_name, start", CLOSED_FORM_CASES)
def test_closed_form_activity_gradient_equals_naive(
    param, skips, activation, loss_name, start, getkey
):
    """`ResNet.energy_gradient` (written out by hand for speed) against automatic
    differentiation of the naive energy, for the layers above `start` with the layers below at
    their feedforward activities (how inference calls it when it skips unmoved layers)."""
    network, x, y, acts = _problem(param, skips, activation, getkey())
    loss = mupc._loss.resolve_loss(loss_name)
    naive = _naive(network, acts, x, y, loss_name)
    reference, _ = network.feedforward(x)
    top = acts[start:]
    gradient = network.for_layers_above(start).energy_gradient(
        top, reference[start:], network.features(reference)[start:], y, loss, start
    )

    def naive_total(upper):
        layers = [reference[i] for i in range(start)] + list(upper)
        return jnp.sum(naive(weight_list(network), layers))

    expected = jnp.stack(jax.grad(naive_total)([top[i] for i in range(H - start)]))
    assert gradient.shape == top.shape
    assert_close(gradient, expected, dtype=jnp.float32, k=64)


def test_closed_form_activity_gradient_is_exactly_zero_below_the_moved_layers(getkey):
    """At H = 128, with only the top 5 activities moved off the feedforward pass, the closed
    form gives bit-exact zeros to every layer more than one below them (no error reaches them)."""
    config = mupc.NetworkConfig(D, N, 128, C, "relu", "mupc")
    network = mupc.ResNet(config, key=getkey())
    x = jax.random.normal(getkey(), (B, D))
    y = jax.nn.one_hot(jnp.arange(B) % C, C)
    reference, _ = network.feedforward(x)
    moved = reference.at[-5:].add(jax.random.normal(getkey(), (5, B, N)))
    gradient = network.energy_gradient(
        moved, reference, network.features(reference), y, mupc.MSE(), 0
    )
    norms = np.abs(np.asarray(gradient)).reshape(128, -1).max(axis=1)
    assert np.all(norms[: 128 - 6] == 0.0)
    assert np.all(norms[-5:] > 0)
