"""`mupc generative`: every variant trains from the command line on the offline MNIST sample,
resumes, draws its pictures; the PCA baseline against an independent computation."""

import json

import numpy as np
import pytest

import mupc
from mupc._cli import main

TINY = ["--dataset", "mnist-sample", "-H", "1", "-N", "8", "--latent", "4", "-T", "2",
        "--max-steps", "3", "--log-every", "1", "--eval-examples", "40", "--train-examples", "256",
        "--batch-size", "16", "--quiet"]  # fmt: skip


def _summary(out):
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize(
    ("variant", "extra", "keys"),
    [
        ("decoder", ["--inference", "epc"], {"test_mse"}),
        (
            "decoder",
            ["--inference", "gd", "--update", "every-step", "--prior", "none"],
            {"test_mse"},
        ),
        ("decoder", ["--inference", "langevin", "--activity-lr", "0.01", "-H", "0"], {"test_mse"}),
        ("autoencoder", [], {"test_mse"}),
        ("supervised", ["--loss", "bernoulli"], {"test_accuracy", "test_generation_mse"}),
        ("discriminative", ["--inference", "gd"], {"test_accuracy"}),
        (
            "bpc",
            ["--inference", "gd", "--alpha-f", "0.001"],
            {"test_accuracy", "amortiser_accuracy", "test_generation_mse"},
        ),
        (
            "hybrid",
            ["--inference", "gd"],
            {"amortiser_accuracy", "hybrid_accuracy", "generator_accuracy"},
        ),
    ],  # fmt: skip
    ids=[
        "decoder-epc",
        "decoder-ipc",
        "decoder-mcpc-linear",
        "autoencoder",
        "supervised",
        "discriminative",
        "bpc",
        "hybrid",
    ],  # fmt: skip
)
def test_every_variant_trains_from_the_command_line(tmp_path, variant, extra, keys, capsys):
    out = tmp_path / variant
    assert main(["generative", "train", variant, *TINY, *extra, "--no-pictures",
                 "--out", str(out)]) == 0  # fmt: skip
    summary = _summary(out)
    assert summary["status"] == "completed" and summary["steps"] == 3
    assert keys <= set(summary), summary
    for key in keys:
        assert np.isfinite(summary[key])
        if "accuracy" in key:
            assert 0 <= summary[key] <= 1
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]


def test_a_run_resumes_and_draws_its_pictures(tmp_path, capsys):
    out = tmp_path / "decoder"
    args = ["generative", "train", "decoder", *TINY, "--out", str(out)]
    assert main([*args[:-2], "--max-steps", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [
        "reconstructions.png", "samples.png", "traversals.png"
    ]  # fmt: skip
    assert main([*args, "--lr", "0.5"]) == 2  # the same folder with other settings
    assert "another configuration" in capsys.readouterr().err
    assert main([*args[:-2], "--max-steps", "2", "--out", str(out)]) == 2  # no --resume
    assert "pass --resume" in capsys.readouterr().err
    first = _summary(out)
    # A finished run is not run again: --resume returns its summary.
    assert main([*args[:-2], "--max-steps", "2", "--out", str(out), "--resume"]) == 0
    assert _summary(out) == first
    assert main(["generative", "draw", str(out), "--pictures", "samples",
                 "--out-dir", str(tmp_path / "pics")]) == 0  # fmt: skip
    assert (tmp_path / "pics" / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["generative", "draw", str(out), "--pictures", "classes"]) == 2  # no labels


def test_an_interrupted_run_continues_where_it_stopped(tmp_path):
    """Checkpoint at step 2 of 4, then resume: the same final weights as one run of 4 steps."""
    from mupc.experiments._family import FamilyConfig, load_family_run, run_family

    config = FamilyConfig(
        dataset="mnist-sample", depth=1, width=8, latent=4, steps=2, max_steps=4, batch_size=16,
        train_examples=256, eval_examples=20, log_every=1,
    )  # fmt: skip
    run_family(config, tmp_path / "whole", log=lambda _: None)
    import dataclasses

    half = dataclasses.replace(config, max_steps=2)
    run_family(half, tmp_path / "parts", log=lambda _: None, checkpoint_every=1)
    # Continue the same folder under the full configuration (as a resumed, longer run).
    (tmp_path / "parts" / "summary.json").unlink()
    (tmp_path / "parts" / "config.json").write_text(json.dumps(config.to_dict()))
    run_family(config, tmp_path / "parts", resume=True, log=lambda _: None)
    whole = load_family_run(tmp_path / "whole")[2]
    parts = load_family_run(tmp_path / "parts")[2]
    np.testing.assert_array_equal(whole.output_weights, parts.output_weights)
    steps = [json.loads(r)["step"] for r in (tmp_path / "parts" / "metrics.jsonl").open()]
    assert steps == sorted(steps) and steps[-1] == 4


def test_pca_baseline_matches_numpy(tmp_path, capsys):
    """`mupc generative pca` against PCA done again here: SVD of the mean-centred [0, 1]
    training pixels of the MNIST sample, projection of the test images."""
    out = tmp_path / "pca.json"
    assert main(["generative", "pca", "--dataset", "mnist-sample", "--latent", "5", "20",
                 "--out", str(out)]) == 0  # fmt: skip
    got = json.loads(out.read_text())["test_mse"]
    data = mupc.load_dataset("mnist-sample")
    train = data.train_images.astype(np.float64) * 0.3081 + 0.1307
    test = data.test_images.astype(np.float64) * 0.3081 + 0.1307
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    for k in (5, 20):
        basis = vt[:k].T
        recon = (test - mean) @ basis @ basis.T + mean
        np.testing.assert_allclose(got[str(k)], np.mean((recon - test) ** 2), rtol=1e-6)
    assert got["5"] > got["20"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["bpc", "--inference", "epc"], "use inference 'gd' or 'langevin'"),
        (["supervised", "-H", "0"], "is a decoder only"),
        (["decoder", "--update", "every-step"], "needs inference 'gd'"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, capsys, extra, message):
    assert main(["generative", "train", *extra, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err


def test_a_diverged_evaluation_is_a_one_line_error(tmp_path, capsys):
    """Inference that blows up at evaluation (too large a step) says so, naming the step size,
    instead of failing to write a summary that holds NaN."""
    out = tmp_path / "decoder"
    args = ["generative", "train", "decoder", *TINY, "--inference", "gd", "--prior", "none",
            "-T", "0", "--activity-lr", "1000", "--eval-steps", "50", "--no-pictures",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "evaluation at step 3 is not finite (test_mse)" in error and "1000" in error
    assert (out / "checkpoint.eqx").exists() and not (out / "summary.json").exists()
