"""`mupc train` end to end: files, resume, divergence, bad options (in-process, tiny runs)."""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from naive import numpy_feedforward

import mupc
from mupc import _data
from mupc._cli import main
from mupc.experiments import RunConfig
from mupc.experiments._divergence import first_divergence
from mupc.experiments._run_data import load_run_data

TINY = ["--dataset", "synthetic", "-H", "2", "-N", "16", "--quiet"]


def _train(*flags) -> int:
    return main(["train", *TINY, *flags])


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_writes_every_file_with_sane_values(tmp_path):
    out = tmp_path / "run"
    flags = ["--steps", "20", "--eval-every", "10", "--log-every", "5", "--checkpoint-every", "10"]
    started = time.perf_counter()
    assert _train(*flags, "--out", str(out)) == 0
    elapsed = time.perf_counter() - started

    config = json.loads((out / "config.json").read_text())
    assert config["run"]["depth"] == 2 and config["run"]["width"] == 16
    assert config["run"]["activity_lr"] == pytest.approx(0.5 / 64)  # published 0.5, batch 64
    assert "jax" in config["versions"]

    lines = _lines(out / "metrics.jsonl")
    assert [line["step"] for line in lines] == [5, 10, 15, 20]
    evaluated = [line for line in lines if "test_accuracy" in line]
    assert [line["step"] for line in evaluated] == [10, 20]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["diverged"] is False
    assert summary["diverged_at_step"] is None
    assert summary["steps"] == 20
    # Wall time: positive, no more than the test measured around the call, and the logged
    # times run forwards to it.
    logged_times = [line["wall_seconds"] for line in lines]
    assert 0 < logged_times[0] and logged_times == sorted(logged_times)
    assert logged_times[-1] <= summary["wall_seconds"] <= elapsed
    assert summary["best_test_accuracy"] == max(line["test_accuracy"] for line in evaluated)
    assert 0 < summary["min_train_loss"] <= min(line["loss"] for line in lines)

    # Oracle for the reported accuracy: the checkpointed network, scored here with NumPy.
    network = mupc.load_network(out / "checkpoint.npz")
    data = load_run_data(RunConfig(dataset="synthetic"))
    predictions = np.argmax(np.asarray(network(jnp.asarray(data.test_images))), -1)
    accuracy = np.mean(predictions == np.argmax(data.test_labels, -1))
    assert summary["test_accuracy"] == pytest.approx(accuracy)
    assert summary["test_accuracy"] == evaluated[-1]["test_accuracy"]
    assert int(np.load(out / "checkpoint.npz")["step"]) == 20


def test_min_train_loss_is_the_minimum_over_every_step(tmp_path):
    """`min_train_loss` is the minimum over every step, not over the logged ones: against a
    twin run logging every step (same trajectory), at a batch size where the minimum falls
    inside a log window. Each logged `mean_loss` is the mean over its window."""
    flags = ["--steps", "20", "--batch-size", "8", "--eval-every", "20", "--checkpoint-every", "20"]
    assert _train(*flags, "--log-every", "5", "--out", str(tmp_path / "every5")) == 0
    assert _train(*flags, "--log-every", "1", "--out", str(tmp_path / "every1")) == 0
    # The published activity step 0.5 (batch-mean) is 0.5 / 8 per example at batch 8.
    config = json.loads((tmp_path / "every5" / "config.json").read_text())["run"]
    assert config["batch_size"] == 8 and config["activity_lr"] == 0.5 / 8
    every_step = _lines(tmp_path / "every1" / "metrics.jsonl")
    assert [line["step"] for line in every_step] == list(range(1, 21))
    losses = np.array([line["loss"] for line in every_step])
    lowest = int(np.argmin(losses)) + 1
    assert lowest % 5 != 0, "the minimum must fall inside a window for this test to bite"
    for name in ("every5", "every1"):
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["min_train_loss"] == float(losses.min()), name
        assert summary["final_train_loss"] == float(losses[-1]), name
    windows = _lines(tmp_path / "every5" / "metrics.jsonl")
    assert [line["step"] for line in windows] == [5, 10, 15, 20]
    for line in windows:
        window = losses[line["step"] - 5 : line["step"]]
        assert line["loss"] == float(window[-1])
        assert line["mean_loss"] == pytest.approx(float(window.mean()), rel=1e-12)


def _arrays(path):
    with np.load(path) as data:
        return {name: data[name] for name in data.files if name != "config"}


def _die_at_batch(monkeypatch, epoch: int, batch: int):
    """Make `iterate_batches` raise KeyboardInterrupt (as a kill would end the run) when it is
    about to yield batch number `batch` of epoch `epoch`; returns a function that undoes it."""
    original = _data.iterate_batches

    def dying(*args, **kwargs):
        for count, item in enumerate(original(*args, **kwargs)):
            if kwargs["epoch"] == epoch and count == batch:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(_data, "iterate_batches", dying)
    return lambda: monkeypatch.setattr(_data, "iterate_batches", original)


def test_resume_after_interruption_is_bit_identical(tmp_path, monkeypatch):
    flags = ["--steps", "24", "--log-every", "5", "--checkpoint-every", "4", "--eval-every", "12"]
    whole = tmp_path / "whole"
    assert _train(*flags, "--out", str(whole)) == 0

    # Kill the run while it fetches the 11th batch: the last checkpoint is at step 8 and
    # metrics were logged up to step 10, past it.
    broken = tmp_path / "broken"
    restore = _die_at_batch(monkeypatch, epoch=0, batch=10)
    assert _train(*flags, "--out", str(broken)) == 130  # one line, no traceback (see below)
    restore()
    assert int(np.load(broken / "checkpoint.npz")["step"]) == 8
    assert not (broken / "summary.json").exists()

    assert _train(*flags, "--out", str(broken), "--resume") == 0
    expected, resumed = _arrays(whole / "checkpoint.npz"), _arrays(broken / "checkpoint.npz")
    assert sorted(expected) == sorted(resumed)
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)

    def strip(lines):
        return [{k: v for k, v in line.items() if k != "wall_seconds"} for line in lines]

    assert strip(_lines(broken / "metrics.jsonl")) == strip(_lines(whole / "metrics.jsonl"))
    a, b = (json.loads((p / "summary.json").read_text()) for p in (whole, broken))
    for key in ("test_accuracy", "best_test_accuracy", "min_train_loss", "steps"):
        assert a[key] == b[key], key


def _set_stored_wall_seconds(checkpoint, seconds):
    """Rewrite the wall time a checkpoint carries in its metadata (`tracker`)."""
    with np.load(checkpoint) as data:
        arrays = {name: data[name] for name in data.files}
    config = json.loads(str(arrays["config"]))
    config["metadata"]["tracker"]["wall_seconds"] = seconds
    arrays["config"] = np.array(json.dumps(config))
    with open(checkpoint, "wb") as handle:
        np.savez(handle, **arrays)


def test_resume_extends_a_finished_run(tmp_path):
    short, whole = tmp_path / "short", tmp_path / "whole"
    assert _train("--steps", "6", "--out", str(short)) == 0
    # The wall time of a resumed run adds to the time already spent (say 1000 s).
    _set_stored_wall_seconds(short / "checkpoint.npz", 1000.0)
    started = time.perf_counter()
    assert _train("--steps", "12", "--out", str(short), "--resume") == 0
    elapsed = time.perf_counter() - started
    summary = json.loads((short / "summary.json").read_text())
    assert 1000.0 < summary["wall_seconds"] <= 1000.0 + elapsed
    assert _train("--steps", "12", "--out", str(whole)) == 0
    for name, value in _arrays(whole / "checkpoint.npz").items():
        np.testing.assert_array_equal(_arrays(short / "checkpoint.npz")[name], value)


def test_diverging_run_is_recorded_with_its_step(tmp_path, capsys):
    # Without a threshold, only non-finite losses count (the threshold: test_reliability.py).
    # A linear network: with ReLU a huge step can kill every unit instead (a constant loss of
    # 0.5 that never diverges), depending on the last bits of the first steps.
    huge = ["--activation", "linear", "--optimizer", "sgd", "--lr", "1e3", "--log-every", "3",
            "--divergence-threshold", "none", "--steps", "30"]  # fmt: skip
    assert _train(*huge, "--out", str(tmp_path / "bad")) == 0
    summary = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert summary["diverged"] is True and summary["status"] == "diverged"
    # The energy after inference can overflow a step before the feedforward loss does.
    assert summary["diverged_on"] in ("training", "energy", "test")
    what = "energy" if summary["diverged_on"] == "energy" else f"{summary['diverged_on']} loss"
    assert f"DIVERGED: {what} became non-finite" in capsys.readouterr().out
    assert summary["test_accuracy"] is None and summary["test_loss"] is None
    step = summary["diverged_at_step"]
    assert 2 < step < 30
    last = _lines(tmp_path / "bad" / "metrics.jsonl")[-1]
    assert last["step"] == step and last["diverged"] is True
    assert (last["loss"] is None) == (summary["diverged_on"] == "training")
    assert last["epoch"] == round(step / 16, 4)  # 1,024 examples at batch 64: 16 steps/epoch
    # Independent check of the step: stopping two steps earlier (before the update that made
    # the step-`step` loss non-finite), every training and test loss is finite.
    huge[-1] = str(step - 2)
    assert _train(*huge, "--log-every", "1", "--out", str(tmp_path / "before")) == 0
    before = json.loads((tmp_path / "before" / "summary.json").read_text())
    assert before["diverged"] is False and 0 <= before["test_accuracy"] <= 1
    # Resuming a diverged run does not train it again.
    assert _train(*huge[:-1], "30", "--out", str(tmp_path / "bad"), "--resume") == 0
    assert json.loads((tmp_path / "bad" / "summary.json").read_text()) == summary


def test_an_infinite_training_loss_is_divergence(tmp_path):
    """A loss that overflows to +inf (not NaN) is divergence too, at its own step. Oracle for
    the step: with the weights after the 2 updates before it (the checkpoint of step 2), the
    loss on the third batch, computed in float64 with the naive forward pass, is beyond
    float32's range, so +inf in float32."""
    huge = ["--optimizer", "sgd", "--lr", "1e6", "--log-every", "1", "--steps", "10"]
    huge += ["--divergence-threshold", "none"]  # only non-finite values count here
    assert _train(*huge, "--checkpoint-every", "2", "--out", str(tmp_path)) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["diverged"] and summary["diverged_on"] == "training"
    assert summary["diverged_at_step"] == 3
    losses = [line["loss"] for line in _lines(tmp_path / "metrics.jsonl")]
    assert len(losses) == 3 and all(np.isfinite(losses[:2])) and losses[2] is None

    assert int(np.load(tmp_path / "checkpoint.npz")["step"]) == 2
    network = mupc.load_network(tmp_path / "checkpoint.npz")
    data = load_run_data(RunConfig(dataset="synthetic"))
    batches = mupc.iterate_batches(data.train_images, data.train_labels, 64, seed=0, epoch=0)
    x, y = list(batches)[2]
    _, outputs = numpy_feedforward(network, x)
    loss = 0.5 * np.mean(np.sum((y - outputs) ** 2, axis=1))
    assert np.finfo(np.float32).max < loss < np.inf


def test_first_divergence_is_the_first_non_finite_or_too_large_value():
    """The divergence rule on its own: the first value that is ±inf or NaN, or above θ times
    the reference (when the reference is finite)."""
    inf, nan = float("inf"), float("nan")
    assert first_divergence(np.array([1.0, 2.0]), 1.0, 1e3) is None
    assert first_divergence(np.array([1.0, inf, nan]), None, None) == (1, "non-finite")
    assert first_divergence(np.array([1.0, -inf]), None, None) == (1, "non-finite")
    assert first_divergence(np.array([1.0, 5.0, 2e3, nan]), 1.0, 1e3) == (2, "threshold")
    assert first_divergence(np.array([1.0, 5.0, 2e3, nan]), 2.0, 1e3) == (3, "non-finite")
    assert first_divergence(np.array([1.0, 2e3]), nan, 1e3) is None  # no finite reference


def test_float64_and_bp_flags(tmp_path):
    x64_before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        assert _train("--steps", "3", "--method", "bp", "--float64", "--out", str(tmp_path)) == 0
        with np.load(tmp_path / "checkpoint.npz") as data:
            assert data["network/input_weights"].dtype == np.float64
        assert not jax.config.jax_enable_x64  # restored for the rest of the process
    finally:
        jax.config.update("jax_enable_x64", x64_before)


def test_bad_options_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--activation", "sigmoid"])
    assert "invalid choice: 'sigmoid'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--activity-lr", "0.1", "--activity-lr-batch-mean", "0.5"])
    assert main(["train", *TINY, "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert _train("--steps", "2", "--out", str(tmp_path)) == 0
    assert _train("--steps", "2", "--out", str(tmp_path)) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert _train("--steps", "4", "-N", "32", "--out", str(tmp_path), "--resume") == 2
    assert "width: stored 16 vs requested 32" in capsys.readouterr().err


def test_run_length_in_steps():
    # 1,000 examples at batch 64: 15 batches per epoch (the last 40 examples dropped).
    assert RunConfig(epochs=2.0).total_steps(1000) == 30
    assert RunConfig(epochs=1.5).total_steps(1000) == 23  # 22.5 steps, rounded up
    assert RunConfig(epochs=0.01).total_steps(1000) == 1  # never zero
    assert RunConfig(steps=7, epochs=2.0).total_steps(1000) == 7  # steps win over epochs


def test_run_config_validates_fields():
    with pytest.raises(ValueError, match="`method` must be one of"):
        RunConfig(method="hebbian")
    with pytest.raises(ValueError, match="`lr` must be a positive finite number, got -1"):
        RunConfig(lr=-1)
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="`lr` must be a positive finite number"):
            RunConfig(lr=bad)
        with pytest.raises(ValueError, match="`epochs` must be a positive finite number"):
            RunConfig(epochs=bad)
    with pytest.raises(ValueError, match="`dataset` must be one of"):
        RunConfig(dataset="mnsit")
    with pytest.raises(ValueError, match="Unknown activation"):
        RunConfig(activation="swish")


def test_resume_in_a_later_epoch_is_bit_identical(tmp_path, monkeypatch):
    # 1,024 synthetic examples at batch 64: 16 steps per epoch. Die on the 6th batch of the
    # second epoch (step 22); the last checkpoint (step 20) sits mid-epoch, so the resumed run
    # must restart epoch 1's shuffled order at batch 4.
    flags = ["--steps", "40", "--log-every", "5", "--checkpoint-every", "4", "--eval-every", "20"]
    whole = tmp_path / "whole"
    assert _train(*flags, "--out", str(whole)) == 0
    broken = tmp_path / "broken"
    restore = _die_at_batch(monkeypatch, epoch=1, batch=5)
    assert _train(*flags, "--out", str(broken)) == 130
    restore()
    assert int(np.load(broken / "checkpoint.npz")["step"]) == 20
    assert _train(*flags, "--out", str(broken), "--resume") == 0
    expected, resumed = _arrays(whole / "checkpoint.npz"), _arrays(broken / "checkpoint.npz")
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)
