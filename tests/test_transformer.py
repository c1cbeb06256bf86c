"""The PC transformer against independent oracles: a naive per-layer, per-token energy, the
multiplier table typed in again, backprop (ePC at ε = 0, float64), causality, and exact zeros
in float32."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from naive_transformer import (
    energy as naive_energy,
    gelu_is_tanh_approximation,
    params_of,
    typed_multipliers,
)

import mupc

V, T, B = 7, 5, 3


def _lm(blocks=2, heads=2, head_dim=4, param="mupc", activity="sublayer", dtype=jnp.float64):
    config = mupc.TransformerConfig(
        (T,), V, vocab_size=V, heads=heads, head_dim=head_dim, blocks=blocks,
        parameterisation=param, activity=activity,
    )  # fmt: skip
    return mupc.Transformer(config, key=jax.random.key(0), dtype=dtype)


def _tokens(seed=1, dtype=jnp.float64):
    ids = jax.random.randint(jax.random.key(seed), (B, T + 1), 0, V)
    x = ids[:, :-1].astype(dtype)
    y = jax.nn.one_hot(ids[:, 1:], V, dtype=dtype)
    return x, y


def test_energy_equals_a_naive_per_layer_per_token_loop():
    assert gelu_is_tanh_approximation()
    network = _lm()
    x, y = _tokens()
    reference, _ = network.feedforward(x)
    noise = jax.random.normal(jax.random.key(5), reference.shape, reference.dtype)
    activities = reference + 0.3 * noise
    got = mupc.energy(network, activities, x, y, mupc.CrossEntropy())
    mults = typed_multipliers(8, 2, 4, 2)
    params = params_of(network)
    for b in range(B):
        want = naive_energy(
            params, [np.asarray(a[b]) for a in activities], np.asarray(x[b]), np.asarray(y[b]),
            mults, heads=2,
        )  # fmt: skip
        np.testing.assert_allclose(float(got[b]), want, rtol=1e-10)


@pytest.mark.parametrize("param", ["mupc", "sp", "ntp"])
def test_multipliers_equal_the_typed_in_table(param):
    network = _lm(blocks=3, heads=2, head_dim=4, param=param)
    want = typed_multipliers(8, 2, 4, 3, param)
    attention_stack, mlp_stack = network.hidden_stacks
    attention = attention_stack.attention
    for name in ("query", "key", "value", "output"):
        assert getattr(attention, name).multiplier == pytest.approx(want["dense"], rel=1e-12)
    assert attention.scale == pytest.approx(want["logits"], rel=1e-12)
    assert mlp_stack.mlp.up.multiplier == pytest.approx(want["dense"], rel=1e-12)
    assert mlp_stack.mlp.down.multiplier == pytest.approx(want["down"], rel=1e-12)
    assert network.readout_layer.projection.multiplier == pytest.approx(want["readout"])
    assert network.structure.branch_multiplier == pytest.approx(want["branch"], rel=1e-12)
    assert network.input_layer.tokens.multiplier == 1.0
    assert network.input_layer.positions.multiplier == 1.0


def test_patch_embedding_multiplier_and_layout():
    config = mupc.TransformerConfig((8, 8, 2), 3, patch_size=4, heads=2, head_dim=4, blocks=1)
    network = mupc.Transformer(config, key=jax.random.key(0))
    assert network.input_layer.projection.multiplier == pytest.approx(1 / np.sqrt(4 * 4 * 2))
    image = np.arange(8 * 8 * 2, dtype=np.float32).reshape(8, 8, 2)
    patches = np.asarray(mupc.nn.patchify(jnp.asarray(image), 4))
    assert patches.shape == (4, 32)
    # Patch 1 is the top-right 4 × 4 block, flattened (row, column, channel).
    np.testing.assert_array_equal(patches[1], image[:4, 4:].reshape(-1))


def test_reparameterised_epc_gradient_at_zero_equals_backprop_in_float64():
    network = _lm()
    x, y = _tokens()
    loss = mupc.CrossEntropy()
    solver = mupc.ErrorInference.gradient_descent(0.1, steps=0, weight_gradient="reparameterised")
    trainer = mupc.PCTrainer(optax.sgd(1.0), solver, loss=loss)
    pc_grads, _ = trainer.gradients(network, x, y, jax.random.key(0))
    bp_grads, _ = mupc.BPTrainer(optax.sgd(1.0), loss=loss).gradients(network, x, y, None)
    pc_leaves = jax.tree.leaves(pc_grads)
    bp_leaves = jax.tree.leaves(bp_grads)
    assert len(pc_leaves) == len(bp_leaves) == 9  # 2 tables, 4 + 2 dense, readout
    for got, want in zip(pc_leaves, bp_leaves, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_changing_a_later_token_leaves_earlier_outputs_bit_identical():
    network = _lm(dtype=jnp.float32)
    x, _ = _tokens(dtype=jnp.float32)
    t = 2
    changed = x.at[:, t + 1].set((x[:, t + 1] + 1) % V)
    before, after = network(x), network(changed)
    np.testing.assert_array_equal(before[:, : t + 1], after[:, : t + 1])
    assert np.any(np.asarray(before[:, t + 1 :] != after[:, t + 1 :]))


def test_feedforward_errors_are_exactly_zero_and_the_energy_is_the_loss_in_float32():
    network = _lm(dtype=jnp.float32)
    x, y = _tokens(dtype=jnp.float32)
    activities, outputs = network.feedforward(x)
    errors = mupc.prediction_errors(network, activities, x)
    assert errors.dtype == jnp.float32 and np.count_nonzero(np.asarray(errors)) == 0
    loss = mupc.CrossEntropy()
    np.testing.assert_array_equal(
        mupc.energy(network, activities, x, y, loss, activities), loss(outputs, y)
    )


@pytest.mark.parametrize("skip_inactive", [True, False])
def test_unmoved_layers_have_exactly_zero_errors_and_weight_gradients(skip_inactive):
    """Two inference steps from the feedforward pass reach only the top layers; every layer
    below has an error and a weight gradient of exactly 0 in float32, and Adam leaves its
    weights bit for bit unchanged."""
    network = _lm(blocks=3, dtype=jnp.float32)  # H = 7
    x, y = _tokens(dtype=jnp.float32)
    loss = mupc.CrossEntropy()
    inference = mupc.DiscreteInference.gradient_descent(0.1, 2, skip_inactive=skip_inactive)
    reference, _ = network.feedforward(x)
    result = jax.jit(
        lambda: inference.run(network, reference, x, y, loss, feedforward_start=True)
    )()
    moved = np.asarray(jnp.any(result.activities != reference, axis=(1, 2, 3)))
    np.testing.assert_array_equal(moved, [False] * 5 + [True] * 2)
    errors = mupc.prediction_errors(network, result.activities, x, reference)
    nonzero = np.asarray(jnp.any(errors != 0, axis=(1, 2, 3)))
    np.testing.assert_array_equal(nonzero, [False] * 5 + [True] * 2)

    _, grads = inference.weight_gradients(network, result, x, y, loss, reference)
    layers = network.layer_weights(grads)  # input, 6 hidden, readout
    zero = [not np.any(np.asarray(g)) for g in layers]
    # Hidden layer l (predicting z_{l+1}) learns only when ε_{l+1} ≠ 0: z_6 and z_7.
    assert zero == [True] * 5 + [False] * 3

    trainer = mupc.PCTrainer(optimiser=optax.adam(0.1), inference=inference, loss=loss)
    new = trainer.step(trainer.init(network), x, y)[0].network
    same = [
        bool(np.all(np.asarray(a == b)))
        for a, b in zip(new.layer_weights(new), network.layer_weights(network), strict=True)
    ]
    assert same == [True] * 5 + [False] * 3


def test_activity_gradient_equals_autodiff_of_the_direct_energy():
    """The energy gradient (errors from changes, guarded feature changes) equals the gradient
    of the energy written directly, $\\sum_l \\tfrac12\\lVert z_l - \\mu_l(z_{l-1})\\rVert^2 +
    \\ell$, with the predictions from `predict` on the activities themselves (float64), also
    for the top layers alone (layer slicing)."""
    network = _lm(blocks=3)
    x, y = _tokens()
    loss = mupc.CrossEntropy()
    reference, _ = network.feedforward(x)
    activities = reference + 0.2 * jax.random.normal(jax.random.key(3), reference.shape)

    def direct(z):
        predicted = network.predict(z, network.features(z), x)
        return jnp.sum(
            0.5 * jnp.sum((z - predicted) ** 2, axis=(0, 2, 3)) + loss(network.readout(z), y)
        )

    want = jax.grad(direct)(activities)
    features = network.features(reference)
    got = network.energy_gradient(activities, reference, features, y, loss)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    start = 4  # the top 3 layers move, z_4 (row 3) is fixed
    top = activities.at[:start].set(reference[:start])
    sliced = network.for_layers_above(start).energy_gradient(
        top[start:], reference[start:], features[start:], y, loss, start
    )
    np.testing.assert_allclose(sliced, jax.grad(direct)(top)[start:], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activity", ["sublayer", "block"])
def test_block_and_sublayer_activities_share_the_feedforward_function(activity):
    """One activity per block or per sub-layer is the same network in the forward pass."""
    network = _lm(activity=activity)
    x, _ = _tokens()
    sub = _lm(activity="sublayer")
    if activity == "block":
        attention, mlp = sub.hidden_stacks
        (block,) = network.hidden_stacks
        block = eqx.tree_at(lambda b: (b.attention, b.mlp), block, (attention, mlp))
        network = eqx.tree_at(lambda n: n.hidden_stacks, network, (block,))
        network = eqx.tree_at(
            lambda n: (n.input_layer, n.readout_layer), network,
            (sub.input_layer, sub.readout_layer),
        )  # fmt: skip
    np.testing.assert_allclose(network(x), sub(x), rtol=1e-12)
    assert network.num_layers == (5 if activity == "sublayer" else 3)


def test_checkpoint_round_trip(tmp_path):
    network = _lm(dtype=jnp.float32)
    trainer = mupc.PCTrainer(
        optimiser=optax.adam(1e-3), inference=mupc.ErrorInference.gradient_descent(0.1),
        loss=mupc.CrossEntropy(),
    )  # fmt: skip
    x, y = _tokens(dtype=jnp.float32)
    state, _ = trainer.step(trainer.init(network), x, y)
    path = tmp_path / "lm.npz"
    mupc.save_checkpoint(path, state)
    loaded = mupc.load_network(path)
    assert isinstance(loaded, mupc.Transformer) and loaded.config == network.config
    np.testing.assert_array_equal(loaded(x), state.network(x))
    resumed = mupc.load_checkpoint(path, trainer.init(loaded))
    np.testing.assert_array_equal(resumed.step, 1)


def test_bad_configurations_and_batches_are_refused():
    with pytest.raises(ValueError, match="patch_size"):
        mupc.TransformerConfig((28, 28, 1), 10, patch_size=5)
    with pytest.raises(ValueError, match="vocab_size"):
        mupc.TransformerConfig((8,), 10, vocab_size=0)
    with pytest.raises(ValueError, match="heads"):
        mupc.nn.MultiHeadAttention(6, 4, causal=True)
    network = _lm(dtype=jnp.float32)
    x, y = _tokens(dtype=jnp.float32)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        network.check_batch(x.at[0, 0].set(V), y)
    with pytest.raises(ValueError, match="targets"):
        network.check_batch(x, y[:, :, :-1])
    with pytest.raises(ValueError, match="no multiplier yet"):
        mupc.nn.Linear(3, 2)(jnp.ones(3))


def _coordinates(param, heads, blocks, lr=1e-2):
    """RMS of the activities at initialisation and of the change of the outputs after one
    Adam step (ePC, T = 1), for a token transformer with d_head = 8."""
    config = mupc.TransformerConfig(
        (T,), V, vocab_size=V, heads=heads, head_dim=8, blocks=blocks, parameterisation=param
    )
    network = mupc.Transformer(config, key=jax.random.key(0), dtype=jnp.float32)
    x, y = _tokens(dtype=jnp.float32)
    trainer = mupc.PCTrainer(
        optax.adam(lr), mupc.ErrorInference.gradient_descent(0.1), loss=mupc.CrossEntropy()
    )
    _, record = mupc.coordinate_check(trainer, trainer.init(network), x, y, steps=1)
    return float(jnp.mean(record.activity[0, :-1])), float(record.feedforward_update[0, -1])


@pytest.mark.slow  # in `make test-slow`: the suite's 10-minute budget
def test_coordinate_check_across_width_and_depth_passes_under_mupc_and_fails_under_sp():
    """μP's claim, as an assertion: under μPC one Adam step moves the outputs by the same
    amount at every width (heads 2 → 16 at d_head = 8; measured ratio 1.3), under sp by an
    amount that grows with the width (∝ d; measured 9×); under μPC the activities stay O(1)
    across width and depth (1 → 8 blocks). (Pre-LN keeps sp's activities bounded in depth at
    initialisation too, so depth transfer is measured by the transfer sweep, not asserted.)"""
    narrow, wide, deep = (_coordinates("mupc", h, b) for h, b in ((2, 1), (16, 1), (2, 8)))
    assert max(narrow[0], wide[0], deep[0]) / min(narrow[0], wide[0], deep[0]) < 1.3
    assert 0.5 < wide[1] / narrow[1] < 2.0
    sp_narrow, sp_wide = _coordinates("sp", 2, 1), _coordinates("sp", 16, 1)
    assert sp_wide[1] / sp_narrow[1] > 4.0


@pytest.mark.slow  # in `make test-slow`: the suite's 10-minute budget
def test_diagnostics_run_on_a_transformer():
    """The learning signal (ePC's local gradient against backprop's: every layer aligned) and
    the activity Hessian (against the Hessian of the energy written directly) work on the
    transformer through the generic interface."""
    network = _lm()
    x, y = _tokens()
    loss = mupc.CrossEntropy()
    trainer = mupc.PCTrainer(inference=mupc.ErrorInference.gradient_descent(1e-3), loss=loss)
    signal = mupc.learning_signal(trainer, network, x, y)
    assert signal.cosine.shape == (network.num_layers + 1,)
    assert float(jnp.min(signal.cosine)) > 0.99
    one = (x[:1], y[:1])
    hessian = mupc.activity_hessian(network, *one, loss=loss)[0]
    reference, _ = network.feedforward(one[0])

    def direct(flat):
        z = flat.reshape(reference.shape)
        predicted = network.predict(z, network.features(z), one[0])
        return 0.5 * jnp.sum((z - predicted) ** 2) + jnp.sum(loss(network.readout(z), one[1]))

    want = jax.hessian(direct)(reference.ravel())
    np.testing.assert_allclose(hessian, want, rtol=1e-8, atol=1e-10)


def test_greedy_generation_equals_a_plain_loop_and_sampling_is_reproducible():
    network = _lm(dtype=jnp.float32)
    prompt = np.array([1, 4, 2])
    drawn = np.asarray(mupc.generate(network, prompt, 6, temperature=0.0))
    text = list(prompt)
    for _ in range(6):  # the obvious loop: run the network on the last T tokens, take the argmax
        window = np.array(text[-T:])
        padded = np.pad(window, (0, T - window.size)).astype(np.float32)
        logits = network(jnp.asarray(padded)[None])[0, window.size - 1]
        text.append(int(jnp.argmax(logits)))
    np.testing.assert_array_equal(drawn, text[len(prompt) :])
    a = mupc.generate(network, prompt, 20, temperature=1.0, key=jax.random.key(3))
    b = mupc.generate(network, prompt, 20, temperature=1.0, key=jax.random.key(3))
    c = mupc.generate(network, prompt, 20, temperature=1.0, key=jax.random.key(4))
    np.testing.assert_array_equal(a, b)
    assert np.any(np.asarray(a) != np.asarray(c)) and int(jnp.max(a)) < V
    with pytest.raises(ValueError, match="vocabulary"):
        mupc.generate(network, np.array([V]), 2)


def test_evaluate_with_integer_targets_equals_one_hot_targets():
    network = _lm(dtype=jnp.float32)
    ids = np.asarray(jax.random.randint(jax.random.key(7), (9, T + 1), 0, V))
    x, labels = ids[:, :-1].astype(np.float32), ids[:, 1:]
    loss = mupc.CrossEntropy()
    by_ids = mupc.evaluate(network, x, labels, loss=loss, batch_size=4)
    one_hot = mupc.evaluate(network, x, np.eye(V, dtype=np.float32)[labels], loss=loss)
    assert by_ids.num_examples == 9 and by_ids.positions == T == one_hot.positions
    np.testing.assert_allclose(by_ids.loss, one_hot.loss, rtol=1e-6)
    assert by_ids.accuracy == pytest.approx(one_hot.accuracy, rel=1e-6)
    logits = np.asarray(network(jnp.asarray(x)))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_char = -np.mean(np.take_along_axis(log_probs, labels[..., None], -1))
    np.testing.assert_allclose(by_ids.loss_per_position, per_char, rtol=1e-5)
    with pytest.raises(ValueError, match="outside 0..6"):
        mupc.evaluate(network, x, labels + V, loss=loss)


def test_the_compiled_step_does_not_grow_with_depth():
    """Compile time flat in depth, checked on the program itself (wall-clock compile times
    are too noisy for a test): the lowered training step of BP and ePC is the same program
    at 2 and 16 blocks (the blocks are scanned), and PC's, whose layer skipping compiles one
    loop per bucket of top layers (at most 9), stops growing once every bucket exists."""
    import optax

    from mupc._training.base import _compiled_step

    loss = mupc.CrossEntropy()
    trainers = {
        "bp": mupc.BPTrainer(optimiser=optax.adam(1e-3), loss=loss),
        "epc": mupc.PCTrainer(
            optimiser=optax.adam(1e-3), inference=mupc.ErrorInference.gradient_descent(1e-3),
            loss=loss,
        ),
        "pc": mupc.PCTrainer(
            optimiser=optax.adam(1e-3), inference=mupc.DiscreteInference.gradient_descent(0.1),
            loss=loss,
        ),
    }  # fmt: skip

    def program_lines(trainer, blocks):
        config = mupc.TransformerConfig(
            (16,), 11, vocab_size=11, heads=2, head_dim=4, blocks=blocks
        )
        state = trainer.init(mupc.Transformer(config, key=jax.random.key(0)), key=jax.random.key(1))
        ids = jax.random.randint(jax.random.key(2), (4, 17), 0, 11)
        x, y = ids[:, :-1].astype(jnp.float32), jax.nn.one_hot(ids[:, 1:], 11)
        return len(_compiled_step.lower(trainer, state, x, y).as_text().splitlines())

    for name in ("bp", "epc"):
        assert program_lines(trainers[name], 2) == program_lines(trainers[name], 16), name
    assert program_lines(trainers["pc"], 32) == program_lines(trainers["pc"], 64)
