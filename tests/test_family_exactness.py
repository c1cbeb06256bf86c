"""Exact zeros with a free latent (a decoder), in float32, bit for bit; and the one-line errors
of the PC family's options."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mupc

K, WIDTH, DEPTH = 10, 32, 24


@pytest.fixture(scope="module")
def images():
    data = mupc.load_dataset("mnist-sample")
    return jnp.asarray(data.train_images[:8], jnp.float32)


def _decoder(depth=DEPTH, seed=0):
    config = mupc.NetworkConfig(K, WIDTH, depth, 784, "relu", "mupc")
    return mupc.ResNet(config, key=jax.random.key(seed), dtype=jnp.float32)


# A bias-free ReLU decoder at z_0 = 0 is a dead point (every activity 0, φ'(0) = 0): start
# the latent at a constant 0.5, the prior's mean, so that its prior gradient is 0.
PRIOR, AT_PRIOR_MEAN = mupc.GaussianPrior(mean=0.5), mupc.FeedforwardInit(latent_mean=0.5)


def _trainer(skip_inactive=True):
    inference = mupc.DiscreteInference.gradient_descent(0.5 / 64, skip_inactive=skip_inactive)
    return mupc.PCTrainer(
        optimiser=optax.adam(0.1), inference=inference, clamp=mupc.Clamp(input="free"),
        prior=PRIOR, activity_init=AT_PRIOR_MEAN,
    )  # fmt: skip


def _moved(activities, reference):
    return np.asarray(jnp.any(activities != reference, axis=(1, 2)))


@pytest.mark.parametrize("skip_inactive", [True, False])
def test_decoder_layers_inference_has_not_reached_have_exact_zeros(images, skip_inactive):
    """A decoder with a free latent starting at the prior's mean (its prior gradient is 0):
    the feedforward start has every hidden error exactly 0; after the published inference
    the layers that did not move, the latent included, have errors and weight gradients of
    exactly 0, and one Adam step leaves their weights bit for bit unchanged."""
    decoder = _decoder()
    trainer = _trainer(skip_inactive)
    energy, start, states = trainer.begin(decoder, None, images, jax.random.key(0))
    assert np.count_nonzero(np.asarray(energy.errors(states))) == 0
    result = jax.jit(
        lambda: trainer.inference.solve(energy, states, feedforward_start=start.feedforward)
    )()
    final = result.activities
    moved = _moved(final.hidden, states.hidden)
    assert moved[-1] and not moved[0]
    np.testing.assert_array_equal(final.input, states.input)  # the latent never moved
    still = ~moved & np.concatenate([[True], ~moved[:-1]])
    errors = energy.errors(final)
    assert not np.asarray(jnp.any(errors != 0, axis=(1, 2)))[still].any()
    _, grads = energy.weight_gradients(final)
    assert np.count_nonzero(np.asarray(grads.input_weights)) == 0
    zero_rows = np.asarray(jnp.all(grads.hidden_weights == 0, axis=(1, 2)))
    assert zero_rows[still[1:]].all() and not zero_rows[~still[1:]].any()
    state, _ = trainer.step(trainer.init(decoder), None, images)
    np.testing.assert_array_equal(state.network.input_weights, decoder.input_weights)
    unchanged = np.asarray(
        jnp.all(state.network.hidden_weights == decoder.hidden_weights, axis=(1, 2))
    )
    assert unchanged[still[1:]].all() and not unchanged[-1]


def test_layer_skipping_with_a_latent_is_exact(images):
    """Skipping the layers inference has not reached gives the full computation's activities
    and latent, with a latent the prior pulls from the start (no layer can be skipped) and with
    one at the prior's mean."""
    decoder = _decoder(depth=8)
    for init in (AT_PRIOR_MEAN, mupc.FeedforwardInit(latent_std=1.0)):
        inference = {
            skip: mupc.DiscreteInference.gradient_descent(0.3, steps=12, skip_inactive=skip)
            for skip in (True, False)
        }
        got = {
            skip: mupc.PCTrainer(
                inference=solver,
                clamp=mupc.Clamp(input="free"),
                prior=mupc.GaussianPrior(),
                activity_init=init,
            ).infer(decoder, None, images)  # fmt: skip
            for skip, solver in inference.items()
        }
        np.testing.assert_allclose(got[True].inputs, got[False].inputs, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(
            got[True].states.hidden, got[False].states.hidden, rtol=1e-6, atol=1e-6
        )
        assert np.abs(np.asarray(got[True].inputs) - 0.5).max() > 0  # the latent moved


def _tiny(d=3, c=2, seed=0, depth=2):
    config = mupc.NetworkConfig(d, 4, depth, c, "tanh", "mupc")
    return mupc.ResNet(config, key=jax.random.key(seed))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: mupc.Clamp(input="loose"), "must be 'clamped' or 'free'"),
        (lambda: mupc.Clamp(input="free", output="free"), "holds no data"),
        (lambda: mupc.PCTrainer(prior=mupc.GaussianPrior()), "free input end"),
        (lambda: mupc.GaussianPrior(std=0.0), "`std` must be finite and > 0"),
        (lambda: mupc.Bidirectional(0.0, 0.0), "cannot both be 0"),
        (lambda: mupc.Bidirectional(-1.0, 1.0), "`forward_weight` must be"),
        (lambda: mupc.PCTrainer(update="sometimes"), "`update` must be one of"),
        (
            lambda: mupc.PCTrainer(
                inference=mupc.ErrorInference(optax.sgd(0.1)), update="every-step"
            ),
            "use a DiscreteInference",
        ),  # fmt: skip
        (lambda: mupc.LangevinInference(0.0), "`step_size` must be"),
        (lambda: mupc.NetworkPair(_tiny(depth=2), _tiny(depth=3)), "same number of layers"),
        (lambda: mupc.FeedforwardInit(latent_std=-1.0), "`latent_std`"),
    ],
)
def test_bad_options_raise_one_clear_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_combinations_raise_one_clear_error():
    x, y = jnp.ones((2, 3)), jnp.ones((2, 2))
    network = _tiny()
    pair = mupc.NetworkPair(_tiny(2, 3, 1), _tiny(3, 2, 2))
    with pytest.raises(ValueError, match="needs a coupling"):
        mupc.PCTrainer().infer(pair, y, x)
    with pytest.raises(ValueError, match="a coupling needs a NetworkPair"):
        mupc.PCTrainer(coupling=mupc.Amortised()).infer(network, x, y)
    with pytest.raises(ValueError, match="single network with a clamped output end"):
        mupc.PCTrainer(
            inference=mupc.ErrorInference(optax.sgd(0.1)), coupling=mupc.Bidirectional()
        ).infer(pair, y, x)
    with pytest.raises(ValueError, match="backward network of a mupc.NetworkPair"):
        mupc.PCTrainer(activity_init=mupc.AmortisedInit()).infer(network, x, y)
    with pytest.raises(ValueError, match="`inputs` is None but that end is clamped"):
        mupc.PCTrainer().infer(network, None, y)
    with pytest.raises(ValueError, match="pass a PRNG key"):
        mupc.LangevinInference(0.1).solve(
            mupc.NetworkEnergy.bind(network, x, y, mupc.MSE()),
            mupc.States(network.feedforward(x)[0]),
            feedforward_start=True,
        )
    with pytest.raises(ValueError, match="`direction` must be one of"):
        mupc.classify_by_inference(mupc.PCTrainer(), network, x, direction="sideways")
    with pytest.raises(ValueError, match="free input end"):
        mupc.NetworkEnergy.bind(network, x, y, mupc.MSE(), prior=mupc.GaussianPrior())


def test_generative_step_reports_its_energies(images):
    """A decoder step: the energy falls during inference (the prior included), and the weights
    of the top layers move."""
    decoder = _decoder(depth=4)
    trainer = mupc.PCTrainer(
        optimiser=optax.adam(0.01), inference=mupc.ErrorInference(optax.sgd(0.1), steps=5),
        clamp=mupc.Clamp(input="free"), prior=mupc.GaussianPrior(),
        activity_init=mupc.FeedforwardInit(latent_std=1.0),
    )  # fmt: skip
    state, metrics = trainer.step(trainer.init(decoder), None, images)
    assert float(metrics.energy_after) < float(metrics.energy_before)
    assert not np.array_equal(state.network.output_weights, decoder.output_weights)
    latents, recon = mupc.reconstruct(trainer, state.network, images)
    assert latents.shape == (8, K) and recon.shape == images.shape
    assert np.abs(np.asarray(latents)).max() > 0
