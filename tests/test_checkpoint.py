"""Checkpoints: bit-exact round trip, readable names, clear errors."""

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mupc


def _trained_state(key, config=None):
    config = config or mupc.NetworkConfig(6, 8, 4, 3, "tanh", "mupc")
    network = mupc.ResNet(config, key=key, dtype=jnp.float32)
    trainer = mupc.PCTrainer()
    state = trainer.init(network, jax.random.key(5))
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    for _ in range(3):
        state, _ = trainer.step(state, x, y)
    return trainer, state


def _assert_trees_equal(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for left, right in zip(leaves_a, leaves_b, strict=True):
        if jnp.issubdtype(left.dtype, jax.dtypes.prng_key):
            left, right = jax.random.key_data(left), jax.random.key_data(right)
        np.testing.assert_array_equal(np.asarray(left), np.asarray(right))
        assert left.dtype == right.dtype


def test_round_trip_is_bit_exact(tmp_path, getkey):
    trainer, state = _trained_state(getkey())
    path = tmp_path / "run" / "ckpt.npz"
    mupc.save_checkpoint(path, state, metadata={"note": "hello"})
    like = trainer.init(mupc.ResNet(state.network.config, key=getkey(), dtype=jnp.float32))
    loaded = mupc.load_checkpoint(path, like)
    _assert_trees_equal(loaded, state)
    assert mupc.read_checkpoint_config(path)["metadata"] == {"note": "hello"}
    _assert_trees_equal(mupc.load_network(path), state.network)
    # No temporary files are left behind.
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.npz"]


def test_documented_arrays_hold_the_state_by_value(tmp_path, getkey):
    """Each documented array holds what the README says, value for value: the weights as
    stored (no multipliers folded in), Adam's moments and count under `opt_state/...`, the
    step, the key's raw data and the JSON configuration."""
    _, state = _trained_state(getkey())
    path = tmp_path / "ckpt.npz"
    mupc.save_checkpoint(path, state, metadata={"note": 1})
    network, (adam, _) = state.network, state.opt_state  # optax.adam = chain(scale_by_adam, ...)
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    expected = {
        "network/input_weights": network.input_weights,  # (N, D) = (8, 6)
        "network/hidden_weights": network.hidden_weights,  # (H − 1, N, N) = (3, 8, 8)
        "network/output_weights": network.output_weights,  # (C, N) = (3, 8)
        "opt_state/0/mu/hidden_weights": adam.mu.hidden_weights,
        "opt_state/0/nu/output_weights": adam.nu.output_weights,
        "opt_state/0/count": adam.count,
        "step": state.step,
        "key": jax.random.key_data(state.key),
    }
    for name, value in expected.items():
        np.testing.assert_array_equal(arrays[name], np.asarray(value), err_msg=name)
        assert arrays[name].dtype == np.asarray(value).dtype, name
    assert arrays["network/hidden_weights"].shape == (3, 8, 8)
    assert int(arrays["step"]) == 3 and int(arrays["opt_state/0/count"]) == 3
    # Three Adam steps moved the first moment away from zero: the check compares real values.
    assert np.abs(arrays["opt_state/0/mu/hidden_weights"]).max() > 0
    config = json.loads(str(arrays["config"]))
    assert config == {
        "format": "mupc-checkpoint-1",
        "kind": "resnet",
        "network": state.network.config.to_dict(),
        "dtype": "float32",
        "metadata": {"note": 1},
    }
    assert config["network"]["depth"] == 4 and config["network"]["parameterisation"] == "mupc"


def test_loading_into_a_different_network_fails(tmp_path, getkey):
    trainer, state = _trained_state(getkey())
    path = tmp_path / "ckpt.npz"
    mupc.save_checkpoint(path, state)
    other = mupc.NetworkConfig(6, 16, 4, 3, "tanh", "sp")
    like = trainer.init(mupc.ResNet(other, key=getkey(), dtype=jnp.float32))
    with pytest.raises(ValueError, match=r"different network.*parameterisation.*width: "):
        mupc.load_checkpoint(path, like)


def test_wrong_dtype_fails(tmp_path, getkey):
    trainer, state = _trained_state(getkey())
    path = tmp_path / "ckpt.npz"
    mupc.save_checkpoint(path, state)
    like = trainer.init(mupc.ResNet(state.network.config, key=getkey(), dtype=jnp.float64))
    with pytest.raises(ValueError, match=r"network/input_weights.*float32.*expected.*float64"):
        mupc.load_checkpoint(path, like)


def test_missing_and_corrupt_files(tmp_path, getkey):
    trainer, state = _trained_state(getkey())
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        mupc.load_checkpoint(tmp_path / "nope.npz", state)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable mupc checkpoint"):
        mupc.load_checkpoint(bad, state)
    path = tmp_path / "ckpt.npz"
    mupc.save_checkpoint(path, state)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable mupc checkpoint"):
        mupc.load_checkpoint(truncated, state)
    assert zipfile.is_zipfile(path)
