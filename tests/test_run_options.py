"""Run options beyond the published MLP: conv networks, ePC, the top-layers-only control and
training subsets, from `RunConfig`, the command line and the presets."""

import dataclasses
import json

import jax
import numpy as np
import pytest

import mupc
from mupc._cli import main
from mupc.experiments import DEPTH_PRESETS, TRANSFER_PRESETS, RunConfig, depth_runs, transfer_runs
from mupc.experiments._figures import transfer_grid, transfer_report
from mupc.experiments._loop import build_trainer
from mupc.experiments._run_data import load_run_data
from mupc.experiments._summary import RunSummary
from mupc.experiments._sweep import SweepResult


def _train(tmp_path, *flags):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "synthetic", "--steps", "4", "--eval-every", "4", "--quiet"]
    assert main([*argv, *flags, "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_conv_network_from_the_command_line(tmp_path, capsys):
    out, summary = _train(tmp_path, "--network", "conv", "-H", "2", "-N", "4", "--stages", "2")
    assert summary["status"] == "completed" and summary["steps"] == 4
    network = mupc.load_network(out / "checkpoint.npz")
    assert isinstance(network, mupc.ConvResNet)
    assert network.config.channels == (4, 8) and network.config.blocks == 2
    assert network.config.input_shape == (8, 8, 1)  # the synthetic set as 8 x 8 images
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.npz"), "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluation["test_accuracy"] == pytest.approx(summary["test_accuracy"])


def test_epc_from_the_command_line_uses_error_inference(tmp_path):
    out, summary = _train(tmp_path, "--inference", "epc", "-H", "4")
    stored = json.loads((out / "config.json").read_text())["run"]
    assert stored["inference"] == "epc"
    assert stored["activity_lr"] == 0.001 and stored["lr"] == 0.05  # ePC's defaults
    trainer = build_trainer(RunConfig.from_dict(stored))
    assert isinstance(trainer.inference, mupc.ErrorInference)
    assert trainer.inference.steps == 1 and trainer.inference.weight_gradient == "local"
    config = dataclasses.replace(
        RunConfig.from_dict(stored), inference_steps=2, weight_gradient="reparameterised"
    )
    assert build_trainer(config).inference.weight_gradient == "reparameterised"
    assert summary["status"] == "completed"


def test_train_top_keeps_the_bottom_layers_at_their_initial_weights(tmp_path):
    out, _ = _train(tmp_path, "-H", "6", "-N", "8", "--train-top", "2", "--lr", "0.05")
    trained = mupc.load_network(out / "checkpoint.npz")
    config = RunConfig(dataset="synthetic", depth=6, width=8, steps=4)
    data = load_run_data(config)
    key = jax.random.split(jax.random.key(config.seed))[0]
    initial = config.build_network(
        data.train_images.shape[1:], data.train_labels.shape[1], key=key, dtype=np.float32
    )
    np.testing.assert_array_equal(trained.input_weights, initial.input_weights)
    same = np.all(np.asarray(trained.hidden_weights) == np.asarray(initial.hidden_weights), (1, 2))
    np.testing.assert_array_equal(same, [True, True, True, False, False])


def test_train_examples_keeps_the_first_examples(tmp_path):
    config = RunConfig(dataset="synthetic", train_examples=100, steps=1)
    full = load_run_data(dataclasses.replace(config, train_examples=None))
    subset = load_run_data(config)
    np.testing.assert_array_equal(subset.train_images, full.train_images[:100])
    np.testing.assert_array_equal(subset.test_images, full.test_images)
    _, summary = _train(tmp_path, "--train-examples", "128", "--batch-size", "64")
    assert summary["num_train"] == 128 and summary["epochs"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="train_examples.*exceeds"):
        load_run_data(dataclasses.replace(config, train_examples=10**6))


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"network": "cnn"}, r"network.*\['mlp', 'conv', 'transformer'\]"),
        ({"inference": "ep"}, r"inference.*\['pc', 'epc', 'epc-then-pc'\]"),
        ({"trainable_top": 9, "depth": 8}, r"trainable_top.*\[0, depth = 8\]"),
        ({"trainable_top": 1, "network": "conv"}, "needs network='mlp'"),
        ({"train_examples": 0}, "train_examples"),
    ],
)
def test_bad_options_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        RunConfig(**fields)


def test_presets_with_epc_and_conv():
    runs = depth_runs(DEPTH_PRESETS["fmnist"])
    epc = [run for run in runs if run.labels["method"] == "μPC + ePC"]
    assert len(epc) == 5 * 3 and all(run.config.inference == "epc" for run in epc)
    assert all(run.labels["activity_lr_batch_mean"] is None for run in epc)
    conv = depth_runs(DEPTH_PRESETS["conv-quick"])
    assert {run.config.network for run in conv} == {"conv"}
    assert {run.config.train_examples for run in conv} == {4096}
    transfer = transfer_runs(TRANSFER_PRESETS["epc-width"])
    assert {run.config.inference for run in transfer} == {"epc"}
    assert {run.labels["error_lr"] for run in transfer} == set(
        TRANSFER_PRESETS["epc-width"].activity_lrs
    )


def _result(size, weight_lr, error_lr, loss):
    config = RunConfig(dataset="synthetic", steps=1, inference="epc")
    summary = RunSummary(
        status="completed", config=config, steps=1, epochs=1.0, test_accuracy=0.5,
        test_loss=0.1, best_test_accuracy=0.5, min_train_loss=loss, final_train_loss=loss,
        diverged_at_step=None, diverged_on=None, wall_seconds=1.0, seconds_per_step=1.0,
        dataset="synthetic", num_train=1, num_test=1,
    )  # fmt: skip
    labels = {"size": size, "weight_lr": weight_lr, "error_lr": error_lr, "seed": 0}
    return SweepResult(mupc.experiments.SweepRun("r", config, labels), summary)


def test_epc_transfer_grid_and_report_use_the_error_rate():
    results = [
        _result(8, 0.01, 0.1, 0.1),
        _result(8, 0.01, 0.5, 0.2),
        _result(128, 0.01, 0.1, 0.3),
        _result(128, 0.01, 0.5, 0.05),
    ]
    grid = transfer_grid(results)
    assert grid["rate_name"] == "error lr (per example)"
    assert grid["activity_lrs"] == [0.5, 0.1]
    report = transfer_report(results, "H")
    assert "error lr (per example)" in report
    assert "from H = 8 to H = 128 the optimum moved: (0.01, 0.1) -> (0.01, 0.5)" in report


@pytest.mark.slow  # in `make test-slow`: the suite's 10-minute budget
def test_transfer_sweep_on_conv_networks_from_the_command_line(tmp_path):
    out = tmp_path / "sweep"
    argv = [
        "sweep", "transfer", "--preset", "quick", "--network", "conv", "--dataset", "synthetic",
        "--sizes", "2", "4", "--depth", "1", "--weight-lrs", "0.1", "--activity-lrs", "0.5",
        "--steps", "2", "--seeds", "1", "--workers", "1", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    checkpoints = sorted((out / "runs").glob("*/checkpoint.npz"))
    networks = [mupc.load_network(path) for path in checkpoints]
    assert len(networks) == 2 and all(isinstance(n, mupc.ConvResNet) for n in networks)
    # --sizes are the first stage's channels, --depth the residual blocks per stage.
    assert sorted(n.config.channels[0] for n in networks) == [2, 4]
    assert {n.config.blocks for n in networks} == {1}
