"""The PC family (generative, supervised generative, bidirectional, hybrid, incremental and
Monte-Carlo PC) against closed forms and against the variants they must reduce to."""

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from naive_family import (
    bpc_energy,
    chain_maps,
    gaussian_posterior,
    least_squares_equilibrium,
    residual_rows,
)

import mupc
from mupc._training.pc import infer_traced

D, N, H, C, B = 2, 4, 2, 3, 2  # D < C: a free input end is identified


def _resnet(d, c, *, depth=H, width=N, activation="linear", param="mupc", seed=0, dtype=None):
    config = mupc.NetworkConfig(d, width, depth, c, activation, param)
    return mupc.ResNet(config, key=jax.random.key(seed), dtype=dtype or jnp.float64)


def _data(seed, *shapes):
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return [jax.random.normal(k, shape, jnp.float64) for k, shape in zip(keys, shapes, strict=True)]


SOLVERS = {
    "gd": lambda: mupc.DiscreteInference(optax.sgd(0.2), steps=20_000, tolerance=1e-11),
    "continuous": lambda: mupc.ContinuousInference(
        5000.0,
        diffrax.Tsit5(),
        dt0=0.1,
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-12),
        max_steps=100_000,
    ),  # fmt: skip
    "epc": lambda: mupc.ErrorInference(optax.sgd(0.2), steps=20_000, tolerance=1e-11),
    "langevin-0": lambda: mupc.LangevinInference(0.2, steps=25_000, temperature=0.0),
}

# (input end, output end, prior): every clamp pattern one network admits.
PATTERNS = [
    ("clamped", "clamped", None),
    ("free", "clamped", None),
    ("free", "clamped", mupc.GaussianPrior(0.3, 0.7)),
    ("clamped", "free", None),
]


def _solve(trainer, model, inputs, targets):
    return trainer.infer(model, inputs, targets, key=jax.random.key(3))


CASES = [("gd", pattern) for pattern in PATTERNS] + [
    ("continuous", PATTERNS[2]),
    ("continuous", PATTERNS[3]),
    ("epc", PATTERNS[0]),
    ("epc", PATTERNS[1]),
    ("epc", PATTERNS[2]),
    ("langevin-0", PATTERNS[1]),
]


@pytest.mark.parametrize(
    ("solver", "pattern"), CASES, ids=[f"{s}-{p[0]}-{p[1]}-{p[2] is not None}" for s, p in CASES]
)
def test_linear_network_reaches_the_least_squares_equilibrium(solver, pattern):
    """For a linear network the energy is ½‖A z − c‖² over the free activities: every solver,
    for every clamp pattern, ends at NumPy's least-squares solution."""
    free_in, free_out, prior = pattern
    network = _resnet(D, C)
    x, y = _data(1, (B, D), (B, C))
    clamp = mupc.Clamp(free_in, free_out)
    trainer = mupc.PCTrainer(
        inference=SOLVERS[solver](), clamp=clamp, prior=prior,
        activity_init=mupc.FeedforwardInit(latent_mean=0.2),
    )  # fmt: skip
    inputs = None if clamp.free_input else x
    targets = None if clamp.free_output else y
    got = _solve(trainer, network, inputs, targets)
    sizes = [D, *[N] * H, C]
    rows = residual_rows(chain_maps(network), sizes)
    free = [clamp.free_input, *[True] * H, clamp.free_output]
    prior_rows = None if prior is None else (0, prior.mean, prior.std)
    for i in range(B):
        values = [np.asarray(x[i]), *[None] * H, np.asarray(y[i])]
        if clamp.free_input:
            values[0] = None
        expected = least_squares_equilibrium(rows, sizes, free, values, prior_rows)
        np.testing.assert_allclose(got.states.hidden[:, i], np.stack(expected[1:-1]), atol=1e-7)
        np.testing.assert_allclose(got.inputs[i], expected[0], atol=1e-7)
        np.testing.assert_allclose(got.outputs[i], expected[-1], atol=1e-7)


@pytest.mark.parametrize(
    "clamp", [mupc.Clamp(), mupc.Clamp(input="free"), mupc.Clamp(output="free")], ids=str
)
def test_bidirectional_linear_network_reaches_the_least_squares_equilibrium(clamp):
    """bPC's energy α_f F_f + α_b F_b is also a sum of squares: classification (label end free),
    generation (image end free) and training (both clamped) reach NumPy's solution."""
    forward, backward = _resnet(C, D, seed=1), _resnet(D, C, seed=2)
    pair = mupc.NetworkPair(forward, backward)
    labels, images = _data(4, (B, C), (B, D))
    coupling = mupc.Bidirectional(0.7, 0.4)
    trainer = mupc.PCTrainer(
        inference=mupc.DiscreteInference(optax.sgd(0.2), steps=20_000, tolerance=1e-11),
        clamp=clamp, coupling=coupling,
    )  # fmt: skip
    got = _solve(
        trainer, pair, None if clamp.free_input else labels, None if clamp.free_output else images
    )
    sizes = [C, *[N] * H, D]
    rows = residual_rows(chain_maps(forward), sizes, np.sqrt(0.7)) + residual_rows(
        chain_maps(backward), sizes, np.sqrt(0.4), reverse=True
    )
    free = [clamp.free_input, *[True] * H, clamp.free_output]
    for i in range(B):
        values = [np.asarray(labels[i]), *[None] * H, np.asarray(images[i])]
        expected = least_squares_equilibrium(rows, sizes, free, values)
        np.testing.assert_allclose(got.states.hidden[:, i], np.stack(expected[1:-1]), atol=1e-7)
        np.testing.assert_allclose(got.inputs[i], expected[0], atol=1e-7)
        np.testing.assert_allclose(got.outputs[i], expected[-1], atol=1e-7)


@pytest.mark.parametrize("depth", [1, 3])
def test_bidirectional_energy_matches_the_naive_loop(depth):
    """bPC's energy against a plain loop over layers: the backward network's layer l reads
    z_{l+1} (the reference library appears to read the wrong layer from two hidden layers
    on)."""
    forward, backward = _resnet(C, D, depth=depth, seed=1), _resnet(D, C, depth=depth, seed=2)
    labels, images, hidden = _data(5, (B, C), (B, D), (depth, B, N))
    forward_energy = mupc.NetworkEnergy.bind(
        forward, labels, None, mupc.MSE(), clamp=mupc.Clamp(output="free")
    )
    backward_energy = mupc.NetworkEnergy.bind(
        backward, images, labels, mupc.MSE(), clamp=mupc.Clamp(input="free")
    )
    energy = mupc.CoupledEnergy(forward_energy, backward_energy, mupc.Bidirectional(0.6, 1.3))
    states = mupc.States(hidden, None, images[None])
    got = energy.per_example(states)
    for i in range(B):
        expected = bpc_energy(
            forward, backward, np.asarray(labels[i]), np.asarray(hidden[:, i]),
            np.asarray(images[i]), 0.6, 1.3,
        )  # fmt: skip
        np.testing.assert_allclose(got[i], expected, rtol=1e-12)


def test_one_hidden_layer_generative_inference_is_ridge_regression():
    """A linear decoder z_0 → z_1 → y with a Gaussian prior: marginalising z_1 leaves
    ½‖y − M z_0‖²_{S⁻¹} + ½‖z_0 − m‖²/σ², so the inferred latent is (generalised) ridge
    regression, z_0* = (Mᵀ S⁻¹ M + I/σ²)⁻¹ (Mᵀ S⁻¹ y + m/σ²)."""
    k, d = 3, 6
    decoder = _resnet(k, d, depth=1, width=5, seed=3)
    images = _data(6, (4, d))[0]
    prior = mupc.GaussianPrior(0.1, 0.8)
    trainer = mupc.PCTrainer(
        inference=mupc.DiscreteInference(optax.sgd(0.1), steps=50_000, tolerance=1e-12),
        clamp=mupc.Clamp(input="free"), prior=prior,
    )  # fmt: skip
    got = _solve(trainer, decoder, None, images)
    first, readout = chain_maps(decoder)
    design, noise = readout @ first, np.eye(d) + readout @ readout.T
    weighting = np.linalg.inv(noise)
    lhs = design.T @ weighting @ design + np.eye(k) / prior.std**2
    for i in range(4):
        rhs = design.T @ weighting @ np.asarray(images[i]) + prior.mean / prior.std**2
        np.testing.assert_allclose(got.inputs[i], np.linalg.solve(lhs, rhs), atol=1e-8)


class _Identity(eqx.Module):
    def __call__(self, x):
        return x


def test_linear_generative_training_finds_the_principal_subspace():
    """A linear decoder z_0 → y (identity input layer, one dense readout) trained by PC with a
    free latent minimises E min_z ‖y − W z‖²: its column space converges to the span of the
    data's top principal directions (principal angles → 0)."""
    k, d, n = 2, 6, 512
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    data = (rng.normal(size=(n, d)) * np.array([3.0, 2.0, 0.6, 0.5, 0.4, 0.3])) @ basis.T
    decoder = mupc.LayerStack(
        _Identity(), [], mupc.nn.Linear(k, d, kind="readout"), input_shape=(k,),
        key=jax.random.key(0), parameterisation="sp", dtype=jnp.float64,
    )  # fmt: skip
    trainer = mupc.PCTrainer(
        optimiser=optax.adam(optax.exponential_decay(0.03, 100, 0.3)),
        inference=mupc.DiscreteInference(optax.sgd(0.5), steps=60),
        clamp=mupc.Clamp(input="free"),
    )
    state = trainer.init(decoder)
    for _ in range(400):  # full batch: the angles go to 0, not to the noise of a batch
        state, _ = trainer.step(state, None, data)
    weight = np.asarray(state.network.readout_layer.weight)  # (d, k)
    top = np.linalg.eigh(data.T @ data)[1][:, -k:]
    cosines = np.linalg.svd(np.linalg.qr(weight)[0].T @ top, compute_uv=False)
    angles = np.degrees(np.arccos(np.clip(cosines, -1, 1)))
    assert angles.max() < 0.2, angles
    # The untrained decoder is far from it: the test can fail.
    start = np.asarray(decoder.readout_layer.weight)
    cosines0 = np.linalg.svd(np.linalg.qr(start)[0].T @ top, compute_uv=False)
    assert np.degrees(np.arccos(np.clip(cosines0, -1, 1))).max() > 10


@pytest.mark.parametrize("loss", [mupc.MSE(), mupc.CrossEntropy()], ids=["mse", "ce"])
def test_discriminative_classification_by_inference_is_the_feedforward_pass(loss):
    """With the image clamped and the label end free, the feedforward pass has every error 0
    (the free output starts at ŷ; under cross-entropy there is no minimiser and ŷ is read):
    inference does not move, bit for bit, in float32."""
    network = _resnet(784, 10, depth=6, width=32, activation="relu", dtype=jnp.float32)
    x = _data(7, (8, 784))[0].astype(jnp.float32)
    trainer = mupc.PCTrainer(loss=loss, clamp=mupc.Clamp(output="free"))
    got = trainer.infer(network, x, None)
    assert np.count_nonzero(np.asarray(got.energy)) == 0  # every error, the output's too
    still = dataclasses.replace(trainer, inference=mupc.DiscreteInference(optax.sgd(0.1), steps=0))
    start = still.infer(network, x, None)
    np.testing.assert_array_equal(got.states.hidden, start.states.hidden)
    np.testing.assert_array_equal(got.outputs, start.outputs)
    activities, outputs = network.feedforward(x)  # outside `jit`: other roundings
    np.testing.assert_allclose(got.states.hidden, activities, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.outputs, outputs, rtol=1e-5, atol=1e-5)
    scores = mupc.classify_by_inference(trainer, network, x, direction="discriminative")
    np.testing.assert_array_equal(scores, got.outputs)


def _pc_step(trainer, network, x, y):
    state = trainer.init(network, jax.random.key(0))
    return trainer.step(state, x, y)


def test_incremental_pc_with_weight_rate_zero_is_pc_inference():
    """iPC with a weight rate of 0 moves the activities as PC's inference does: the same
    energies after inference, layer by layer (to rounding: iPC recomputes the feedforward
    reference inside its loop, which XLA may round differently), and the weights untouched
    bit for bit."""
    network = _resnet(D, C, depth=4, activation="tanh")
    x, y = _data(8, (B, D), (B, C))
    inference = mupc.DiscreteInference(optax.sgd(0.1), steps=7, skip_inactive=False)
    common = dict(optimiser=optax.sgd(0.0), inference=inference, record_layer_energies=True)
    ipc_state, ipc = _pc_step(mupc.PCTrainer(**common, update="every-step"), network, x, y)
    _, pc = _pc_step(mupc.PCTrainer(**common), network, x, y)
    np.testing.assert_allclose(ipc.layer_energies, pc.layer_energies, rtol=1e-11, atol=0)
    np.testing.assert_allclose(ipc.energy_after, pc.energy_after, rtol=1e-11, atol=0)
    assert float(pc.energy_after) < float(pc.energy_before)
    for a, b in zip(jax.tree.leaves(ipc_state.network), jax.tree.leaves(network), strict=True):
        np.testing.assert_array_equal(a, b)


def test_incremental_pc_with_one_step_is_pc_without_inference():
    """iPC's first step evaluates the weight gradient at the feedforward start, as PC with
    T = 0 does: one iPC step gives PC's T = 0 weights bit for bit."""
    network = _resnet(D, C, depth=3, activation="relu")
    x, y = _data(9, (B, D), (B, C))
    one = mupc.PCTrainer(
        optimiser=optax.adam(0.01),
        inference=mupc.DiscreteInference(optax.sgd(0.1), steps=1),
        update="every-step",
    )
    zero = mupc.PCTrainer(
        optimiser=optax.adam(0.01), inference=mupc.DiscreteInference(optax.sgd(0.1), steps=0)
    )
    (ipc_state, _), (pc_state, _) = _pc_step(one, network, x, y), _pc_step(zero, network, x, y)
    for a, b in zip(
        jax.tree.leaves(ipc_state.network), jax.tree.leaves(pc_state.network), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(pc_state.network.output_weights, network.output_weights)


def test_hybrid_with_no_inference_is_the_amortiser():
    """Hybrid PC with T = 0: the latent (label) end and every activity are the amortiser's
    feedforward prediction, bit for bit."""
    generator = _resnet(10, 784, depth=4, width=16, activation="relu", dtype=jnp.float32)
    amortiser = _resnet(784, 10, depth=4, width=16, activation="relu", seed=5, dtype=jnp.float32)
    pair = mupc.NetworkPair(generator, amortiser)
    images = _data(10, (6, 784))[0].astype(jnp.float32)
    trainer = mupc.PCTrainer(
        inference=mupc.DiscreteInference(optax.sgd(0.1), steps=0),
        activity_init=mupc.AmortisedInit(), clamp=mupc.Clamp(input="free"),
        coupling=mupc.Amortised(),
    )  # fmt: skip
    got = trainer.infer(pair, None, images)
    activities, prediction = amortiser.feedforward(images)
    np.testing.assert_array_equal(got.inputs, prediction)
    np.testing.assert_array_equal(got.states.hidden, activities[::-1])
    scores = mupc.classify_by_inference(trainer, pair, images)
    np.testing.assert_array_equal(scores, prediction)


def _leaves_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_bidirectional_with_no_forward_term_is_discriminative_pc():
    """bPC with α_f = 0 is discriminative PC of the backward network (image → label) alone,
    started at its feedforward pass: the same new weights bit for bit; the forward network,
    with no term in the energy, does not move."""
    generator = _resnet(C, D, depth=3, activation="tanh", seed=1)
    classifier = _resnet(D, C, depth=3, activation="tanh", seed=2)
    labels, images = _data(11, (B, C), (B, D))
    inference = mupc.DiscreteInference(optax.sgd(0.1), steps=5, skip_inactive=False)
    bpc = mupc.PCTrainer(
        optimiser=optax.adam(0.01), inference=inference, activity_init=mupc.AmortisedInit(),
        coupling=mupc.Bidirectional(0.0, 1.0),
    )  # fmt: skip
    pc = mupc.PCTrainer(optimiser=optax.adam(0.01), inference=inference)
    pair_state, _ = _pc_step(bpc, mupc.NetworkPair(generator, classifier), labels, images)
    alone, _ = _pc_step(pc, classifier, images, labels)
    _leaves_equal(pair_state.network.backward, alone.network)
    _leaves_equal(pair_state.network.forward, generator)


def test_bidirectional_with_no_backward_term_is_supervised_generative_pc():
    """bPC with α_b = 0 is supervised generative PC (label → image) of the forward network."""
    generator = _resnet(C, D, depth=3, activation="tanh", seed=1)
    classifier = _resnet(D, C, depth=3, activation="tanh", seed=2)
    labels, images = _data(12, (B, C), (B, D))
    inference = mupc.DiscreteInference(optax.sgd(0.1), steps=5, skip_inactive=False)
    bpc = mupc.PCTrainer(
        optimiser=optax.adam(0.01), inference=inference, coupling=mupc.Bidirectional(1.0, 0.0)
    )
    pc = mupc.PCTrainer(optimiser=optax.adam(0.01), inference=inference)
    pair_state, _ = _pc_step(bpc, mupc.NetworkPair(generator, classifier), labels, images)
    alone, _ = _pc_step(pc, generator, labels, images)
    _leaves_equal(pair_state.network.forward, alone.network)
    _leaves_equal(pair_state.network.backward, classifier)


def test_langevin_samples_the_linear_gaussian_posterior():
    """Monte-Carlo PC on a linear-Gaussian decoder (prior on z_0, Gaussian layers): after
    mixing, 4,000 independent chains of the same image have the closed-form posterior's mean
    and covariance, within Monte-Carlo error and the O(η) bias of the unadjusted chain."""
    k, d, chains = 2, 3, 4000
    decoder = _resnet(k, d, depth=1, width=2, seed=4)
    image = _data(13, (1, d))[0]
    images = jnp.repeat(image, chains, axis=0)
    prior = mupc.GaussianPrior(0.0, 1.0)
    eta = 0.01
    trainer = mupc.PCTrainer(
        inference=mupc.LangevinInference(eta, steps=2000), clamp=mupc.Clamp(input="free"),
        prior=prior,
    )  # fmt: skip
    got = trainer.infer(decoder, None, images, key=jax.random.key(1))
    samples = np.concatenate([np.asarray(got.inputs), np.asarray(got.states.hidden[0])], axis=1)
    sizes = [k, 2, d]
    rows = residual_rows(chain_maps(decoder), sizes)
    mean, covariance = gaussian_posterior(
        rows, sizes, [True, True, False], [None, None, np.asarray(image[0])], (0, 0.0, 1.0)
    )
    standard_error = np.sqrt(np.diag(covariance) / chains)
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), 5 * standard_error)
    empirical = np.cov(samples.T)
    scale = np.sqrt(np.outer(np.diag(covariance), np.diag(covariance)))
    # MC error of a covariance entry ~ scale·√(2/chains) ≈ 0.022·scale, bias ≈ η·λ_max/2.
    np.testing.assert_array_less(np.abs(empirical - covariance), 0.1 * scale)
    # Not the prior, not a point: the check can fail.
    assert np.abs(np.diag(covariance) - 1).max() > 0.2


@pytest.mark.parametrize(
    "loss", [mupc.CrossEntropy(), mupc.Bernoulli(), mupc.MSE()], ids=["ce", "bernoulli", "mse"]
)
def test_output_term_gradients_are_backprops(loss):
    """Through the reparameterised energy at ε = 0 the PC weight gradient is backprop's
    gradient of the same output term; the locally computed gradient from one small error step
    points the same way (cosine > 0.999) at every layer."""
    network = _resnet(D, 4, depth=3, activation="tanh")
    x = _data(14, (B, D))[0]
    targets = jax.nn.sigmoid(_data(15, (B, 4))[0]) if isinstance(loss, mupc.Bernoulli) else (
        jax.nn.softmax(_data(15, (B, 4))[0])
    )  # fmt: skip
    bp, _ = mupc.BPTrainer(loss=loss).gradients(network, x, targets, None)
    exact = mupc.PCTrainer(
        loss=loss,
        inference=mupc.ErrorInference(optax.sgd(0.1), steps=0, weight_gradient="reparameterised"),
    )
    pc, _ = exact.gradients(network, x, targets, jax.random.key(0))
    for a, b in zip(jax.tree.leaves(pc), jax.tree.leaves(bp), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    local = mupc.PCTrainer(loss=loss, inference=mupc.ErrorInference(optax.sgd(1e-4), steps=1))
    pc, _ = local.gradients(network, x, targets, jax.random.key(0))
    for a, b in zip(network.layer_weights(pc), network.layer_weights(bp), strict=True):
        cosine = jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))
        assert float(cosine) > 0.999


def test_epc_decoder_weight_gradient_is_backprops_at_a_small_error_step():
    """A decoder (free latent, no prior): one small ePC step gives every layer's local PC
    gradient backprop's direction for ½‖x − f(z_0)‖² at the start latent (cosine > 0.999)."""
    decoder = _resnet(3, 5, depth=3, activation="tanh", seed=4)
    images = _data(17, (B, 5))[0]
    trainer = mupc.PCTrainer(
        inference=mupc.ErrorInference(optax.sgd(1e-5), steps=1), clamp=mupc.Clamp(input="free"),
        activity_init=mupc.FeedforwardInit(latent_mean=0.4),
    )  # fmt: skip
    pc, _ = eqx.filter_jit(trainer.gradients)(decoder, None, images, jax.random.key(0))

    def loss(network):
        return jnp.mean(0.5 * jnp.sum((network(jnp.full((B, 3), 0.4)) - images) ** 2, axis=1))

    bp = eqx.filter_jit(jax.grad(loss))(decoder)
    for a, b in zip(decoder.layer_weights(pc), decoder.layer_weights(bp), strict=True):
        cosine = jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))
        assert float(cosine) > 0.999


def test_epc_on_a_free_latent_diverges_past_two_over_its_hessians_top_eigenvalue():
    """ePC descends F(z_0, ε) = ½Σ‖ε_l‖² + ½‖x − ŷ(z_0, ε)‖²; for a linear decoder
    ŷ = P_0 z_0 + Σ P_l ε_l, so its Hessian is diag(0, I) + PᵀP (built here from the weight
    matrices with NumPy), whose latent block carries the gain of the whole network. Gradient
    descent on it converges below the step 2/λ_max and diverges above it (docs/tutorials/
    generative.md: why the deep μPC + ePC decoders diverged)."""
    decoder = _resnet(D, C, depth=3, width=N, seed=5)
    image = np.asarray(_data(18, (1, C))[0])
    maps = chain_maps(decoder)
    above = [maps[-1]]
    for matrix in maps[-2:0:-1]:  # P_H, ..., P_1: the maps above each error
        above.append(above[-1] @ matrix)
    blocks = [above[-1] @ maps[0], *above[::-1]]  # P_0, P_1, ..., P_H
    jacobian = np.concatenate(blocks, axis=1)
    hessian = jacobian.T @ jacobian
    hessian[D:, D:] += np.eye(3 * N)
    top = np.linalg.eigvalsh(hessian)[-1]
    latent = np.full(D, 0.3)
    start = 0.5 * np.sum((image[0] - blocks[0] @ latent) ** 2)  # ε = 0

    @eqx.filter_jit
    def energy_after(eta):
        trainer = mupc.PCTrainer(
            inference=mupc.ErrorInference(optax.sgd(eta), steps=400),
            clamp=mupc.Clamp(input="free"), activity_init=mupc.FeedforwardInit(latent_mean=0.3),
        )  # fmt: skip
        return infer_traced(trainer, decoder, None, image, jax.random.key(0))

    assert float(energy_after(jnp.asarray(1.9 / top)).energy[0]) < start
    assert float(energy_after(jnp.asarray(2.1 / top)).energy[0]) > 1e6 * start


def test_bernoulli_term_against_its_formula():
    """−Σ [y log σ(ŷ) + (1 − y) log(1 − σ(ŷ))] and its gradient σ(ŷ) − y, in NumPy."""
    logits, raw = _data(16, (3, 5), (3, 5))
    targets = (np.asarray(raw) > 0).astype(np.float64)
    p = 1 / (1 + np.exp(-np.asarray(logits)))
    expected = -np.sum(targets * np.log(p) + (1 - targets) * np.log(1 - p), axis=1)
    np.testing.assert_allclose(mupc.Bernoulli()(logits, targets), expected, rtol=1e-12)
    gradient = jax.grad(lambda v: jnp.sum(mupc.Bernoulli()(v, targets)))(logits)
    np.testing.assert_allclose(gradient, p - targets, rtol=1e-12, atol=1e-15)
    big = jnp.array([[800.0, -800.0]])
    assert np.isfinite(np.asarray(mupc.Bernoulli()(big, jnp.array([[0.0, 1.0]])))).all()


def test_sequential_inference_reaches_the_equilibrium_ePC_started():
    """ePC for a few steps, then gradient descent on the activities from where it stopped
    (no longer the feedforward pass): the least-squares equilibrium of a linear network."""
    network = _resnet(D, C)
    x, y = _data(17, (B, D), (B, C))
    solver = mupc.SequentialInference(
        mupc.ErrorInference(optax.sgd(0.1), steps=3),
        mupc.DiscreteInference(optax.sgd(0.2), steps=20_000, tolerance=1e-11),
    )
    got = _solve(mupc.PCTrainer(inference=solver), network, x, y)
    sizes = [D, *[N] * H, C]
    rows = residual_rows(chain_maps(network), sizes)
    for i in range(B):
        values = [np.asarray(x[i]), *[None] * H, np.asarray(y[i])]
        expected = least_squares_equilibrium(rows, sizes, [False, True, True, False], values)
        np.testing.assert_allclose(got.states.hidden[:, i], np.stack(expected[1:-1]), atol=1e-7)
    assert int(got.steps) > 3
