"""`mupc.LayerStack`: a PC network from the user's own layers. The oracle is the residual MLP:
the same layers given as modules must give `ResNet`'s numbers."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mupc
from mupc.nn import Linear

D, N, H, C, B = 12, 8, 5, 3, 4


def _as_layers(activation):
    phi = eqx.nn.Lambda(activation)
    hidden = [eqx.nn.Sequential([phi, Linear(N, N)]) for _ in range(H - 1)]
    readout = eqx.nn.Sequential([phi, Linear(N, C, kind="readout")])
    return Linear(D, N, kind="input"), hidden, readout


def _twins(activation_name, activation, param="mupc"):
    """A ResNet and a LayerStack of the same layers with the same weights (float64)."""
    config = mupc.NetworkConfig(D, N, H, C, activation_name, param)
    resnet = mupc.ResNet(config, key=jax.random.key(0), dtype=jnp.float64)
    first, hidden, readout = _as_layers(activation)
    # The MLP's depth factor counts L = H + 1 weight layers.
    stack = mupc.LayerStack(
        first, hidden, readout, input_shape=(D,), key=jax.random.key(9), branches=H + 1,
        parameterisation=param, dtype=jnp.float64,
    )  # fmt: skip
    stack = eqx.tree_at(
        lambda s: (
            s.input_layer.weight,
            s.hidden_stacks[0].layers[1].weight,
            s.readout_layer.layers[1].weight,
        ),
        stack,
        (resnet.input_weights, resnet.hidden_weights, resnet.output_weights),
    )
    return resnet, stack


def _batch():
    x = jax.random.normal(jax.random.key(1), (B, D), jnp.float64)
    y = jax.nn.one_hot(jnp.arange(B) % C, C, dtype=jnp.float64)
    return x, y


@pytest.mark.parametrize(
    "name, activation, param", [("relu", jax.nn.relu, "sp"), ("linear", lambda v: v, "ntp")]
)
def test_the_generic_forward_pass_equals_resnets_under_every_parameterisation(
    name, activation, param
):
    resnet, stack = _twins(name, activation, param)
    x, _ = _batch()
    np.testing.assert_allclose(stack.feedforward(x)[0], resnet.feedforward(x)[0], rtol=1e-13)
    np.testing.assert_allclose(stack(x), resnet(x), rtol=1e-13)


def test_the_generic_path_on_the_residual_mlps_layers_equals_resnet():
    resnet, stack = _twins("tanh", jnp.tanh)
    x, y = _batch()
    np.testing.assert_allclose(stack.feedforward(x)[0], resnet.feedforward(x)[0], rtol=1e-13)
    assert stack.num_layers == resnet.num_layers
    reference, _ = resnet.feedforward(x)
    moved = reference + 0.1 * jax.random.normal(jax.random.key(2), reference.shape)
    loss = mupc.MSE()
    for network in (resnet, stack):
        np.testing.assert_allclose(
            mupc.energy(network, moved, x, y, loss), mupc.energy(resnet, moved, x, y, loss),
            rtol=1e-12,
        )  # fmt: skip
    gradient = resnet.energy_gradient(moved, reference, resnet.features(reference), y, loss)
    generic = stack.energy_gradient(moved, reference, stack.features(reference), y, loss)
    np.testing.assert_allclose(generic, gradient, rtol=1e-10, atol=1e-13)
    for solver in (
        mupc.DiscreteInference.gradient_descent(0.1),
        mupc.ErrorInference.gradient_descent(0.1, steps=3),
    ):
        trainer = mupc.PCTrainer(optax.adam(0.01), solver)
        a, b = trainer.init(resnet), trainer.init(stack)
        for _ in range(3):
            a, metrics_a = trainer.step(a, x, y)
            b, metrics_b = trainer.step(b, x, y)
            np.testing.assert_allclose(metrics_b.energy_after, metrics_a.energy_after, rtol=1e-10)
        for got, want in zip(
            b.network.layer_weights(b.network), a.network.layer_weights(a.network), strict=True
        ):
            np.testing.assert_allclose(got.ravel(), want.ravel(), rtol=1e-9, atol=1e-12)


class _Gated(eqx.Module):
    """A gated MLP branch: $W_d (\\mathrm{silu}(W_g z) \\odot W_u z)$."""

    gate: Linear
    up: Linear
    down: Linear

    def __init__(self, width, hidden):
        self.gate, self.up, self.down = (
            Linear(width, hidden),
            Linear(width, hidden),
            Linear(hidden, width),
        )

    def __call__(self, z, *, key=None):
        return self.down(jax.nn.silu(self.gate(z)) * self.up(z))


class _Tanh(eqx.Module):
    weight: Linear

    def __init__(self, width):
        self.weight = Linear(width, width)

    def __call__(self, z, *, key=None):
        return self.weight(jnp.tanh(z))


def test_repeating_kinds_are_stacked_by_period_and_each_kind_keeps_its_weights():
    hidden = [_Gated(N, 2 * N), _Tanh(N)] * 3
    stack = mupc.LayerStack(
        Linear(D, N, kind="input"), hidden, Linear(N, C, kind="readout"), input_shape=(D,),
        key=jax.random.key(0), dtype=jnp.float64,
    )  # fmt: skip
    assert stack.structure.period == 2 and stack.num_layers == 7
    gated, tanh = stack.hidden_stacks
    assert gated.gate.weight.shape == (3, 2 * N, N) and tanh.weight.weight.shape == (3, N, N)
    assert gated.down.multiplier == pytest.approx(1 / np.sqrt(2 * N))
    assert stack.structure.branch_multiplier == pytest.approx(1 / np.sqrt(6))
    # The scanned forward pass equals the layers applied one by one.
    x, _ = _batch()
    z = jax.vmap(stack.input_layer)(x)
    rows = [z]
    for layer in range(6):
        module = jax.tree.map(lambda w, i=layer // 2: w[i], stack.hidden_stacks[layer % 2])
        z = z + stack.structure.branch_multiplier * jax.vmap(module)(z)
        rows.append(z)
    np.testing.assert_allclose(stack.feedforward(x)[0], jnp.stack(rows), rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="multiple of its period 2"):
        stack.for_layers_above(3)


def test_shape_changing_hidden_layers_and_unbuilt_layers_are_refused():
    with pytest.raises(ValueError, match="keep the activity's shape"):
        mupc.LayerStack(
            Linear(D, N, kind="input"), [Linear(N, N + 1)], Linear(N, C, kind="readout"),
            input_shape=(D,), key=jax.random.key(0),
        )  # fmt: skip
    with pytest.raises(ValueError, match="floating dtype"):
        mupc.LayerStack(
            Linear(D, N, kind="input"), [], Linear(N, C, kind="readout"), input_shape=(D,),
            key=jax.random.key(0), dtype=jnp.int32,
        )  # fmt: skip


def test_checkpoints_load_into_a_network_built_again(tmp_path):
    first, hidden, readout = _as_layers(jnp.tanh)
    network = mupc.LayerStack(
        first, hidden, readout, input_shape=(D,), key=jax.random.key(0), dtype=jnp.float32
    )
    trainer = mupc.PCTrainer(optax.adam(1e-2), mupc.ErrorInference.gradient_descent(0.1))
    x, y = (np.asarray(a, np.float32) for a in _batch())
    state, _ = trainer.step(trainer.init(network), x, y)
    mupc.save_checkpoint(tmp_path / "c.npz", state)
    with pytest.raises(ValueError, match="build the same network in Python"):
        mupc.load_network(tmp_path / "c.npz")
    again = mupc.LayerStack(
        *_as_layers(jnp.tanh), input_shape=(D,), key=jax.random.key(5), dtype=jnp.float32
    )
    loaded = mupc.load_checkpoint(tmp_path / "c.npz", trainer.init(again))
    np.testing.assert_array_equal(loaded.network(x), state.network(x))
