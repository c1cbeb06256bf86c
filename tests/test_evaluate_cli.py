"""`mupc evaluate CHECKPOINT`: test loss and accuracy from the file alone, against a NumPy
forward pass written from docs/method.md's equations and the checkpoint's raw arrays."""

import json

import jax
import numpy as np
import pytest
from naive import spec_multipliers

import mupc
from mupc._cli import main
from mupc.experiments import RunConfig
from mupc.experiments._run_data import load_run_data

TINY = ["train", "--dataset", "synthetic", "-H", "3", "-N", "16", "--quiet"]


def _numpy_forward(path, x):
    """ŷ = a_L W_L φ(z_H), z_l = z_{l-1} + a_l W_l φ(z_{l-1}), z_1 = a_1 W_1 x (ReLU)."""
    with np.load(path) as data:
        w_in = data["network/input_weights"].astype(np.float64)
        w_hidden = data["network/hidden_weights"].astype(np.float64)
        w_out = data["network/output_weights"].astype(np.float64)
    width, depth = w_in.shape[0], w_hidden.shape[0] + 1
    first, hidden, last = spec_multipliers("mupc", x.shape[1], width, depth, skips=True)
    relu = lambda v: np.maximum(v, 0.0)
    z = first * x.astype(np.float64) @ w_in.T
    for w in w_hidden:
        z = z + hidden * relu(z) @ w.T
    return last * relu(z) @ w_out.T


def _json_output(capsys, *argv):
    assert main(["evaluate", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def test_evaluate_matches_an_independent_forward_pass(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--steps", "30", "--out", str(out)]) == 0
    checkpoint = str(out / "checkpoint.npz")
    data = load_run_data(RunConfig(dataset="synthetic"))
    outputs = _numpy_forward(checkpoint, data.test_images)
    targets = data.test_labels.astype(np.float64)
    accuracy = np.mean(np.argmax(outputs, 1) == np.argmax(targets, 1))
    mse = np.mean(0.5 * np.sum((targets - outputs) ** 2, axis=1))
    shifted = outputs - outputs.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    cross_entropy = np.mean(-np.sum(targets * log_softmax, axis=1))
    assert 0.2 < accuracy < 1  # trained (chance is 0.1), so not a comparison at chance

    result = _json_output(capsys, checkpoint)  # the dataset and loss recorded by the run
    assert result["dataset"] == "synthetic" and result["step"] == 30
    assert result["num_examples"] == 256
    assert result["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert result["test_loss"] == pytest.approx(mse, rel=1e-5)  # float32 network
    summary = json.loads((out / "summary.json").read_text())
    assert result["test_accuracy"] == summary["test_accuracy"]

    result = _json_output(capsys, checkpoint, "--dataset", "synthetic", "--loss", "cross-entropy",
                          "--batch-size", "100")  # fmt: skip
    assert result["test_loss"] == pytest.approx(cross_entropy, rel=1e-5)
    assert result["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)

    capsys.readouterr()
    assert main(["evaluate", checkpoint]) == 0
    text = capsys.readouterr().out
    assert "step 30, H = 3, N = 16, mupc, relu" in text
    assert f"accuracy {100 * accuracy:.2f} %" in text and "(256 examples)" in text


def test_evaluate_errors_name_the_problem(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--steps", "2", "--out", str(out)]) == 0
    checkpoint = str(out / "checkpoint.npz")
    assert main(["evaluate", checkpoint, "--dataset", "mnist-sample"]) == 2
    error = capsys.readouterr().err
    assert "does not take mnist-sample" in error and "(batch, 64)" in error and "784" in error
    assert main(["evaluate", str(tmp_path / "none.npz")]) == 2
    assert "No checkpoint at" in capsys.readouterr().err

    # A checkpoint saved from Python carries no run settings: the dataset must be given.
    config = mupc.NetworkConfig(64, 8, 2, 10)
    state = mupc.PCTrainer().init(mupc.ResNet(config, key=jax.random.key(0)), jax.random.key(1))
    bare = str(tmp_path / "bare.npz")
    mupc.save_checkpoint(bare, state)
    assert main(["evaluate", bare]) == 2
    assert "does not record its dataset; pass --dataset" in capsys.readouterr().err
    assert _json_output(capsys, bare, "--dataset", "synthetic")["num_examples"] == 256


def test_evaluate_a_float64_checkpoint_in_a_float32_process(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TINY, "--steps", "2", "--float64", "--out", str(out)]) == 0
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        result = _json_output(capsys, str(out / "checkpoint.npz"))
        assert not jax.config.jax_enable_x64  # restored
    finally:
        jax.config.update("jax_enable_x64", x64)
    summary = json.loads((out / "summary.json").read_text())
    assert result["test_accuracy"] == summary["test_accuracy"]
    assert result["test_loss"] == pytest.approx(summary["test_loss"], rel=1e-12)
