"""`mupc train --network transformer` (a character language model on a text corpus, a ViT on
images), `mupc evaluate` and `mupc generate` on its checkpoints, offline, on text generated
here."""

import json
import math
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mupc
from mupc._cli import main

WORDS = "the quick brown fox jumps over a lazy dog while birds sing".split()


@pytest.fixture
def corpus_dir(tmp_path, monkeypatch):
    """A small 'tiny-shakespeare' corpus in a data folder (no download)."""
    monkeypatch.delenv("MUPC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(300)]
    folder = tmp_path / "data" / "tiny-shakespeare"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_text("\n".join(lines) + "\n")
    return tmp_path / "data"


LM = ["--network", "transformer", "-H", "1", "-N", "16", "--head-dim", "8", "--context", "12"]


def _train_lm(tmp_path, corpus_dir, *flags, name="lm"):
    out = tmp_path / name
    argv = ["train", "--dataset", "tiny-shakespeare", "--data-dir", str(corpus_dir), *LM]
    argv += ["--eval-every", "4", "--checkpoint-every", "4", "--quiet", "--out", str(out)]
    assert main([*argv, *flags]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_a_language_model_trains_and_reports_nats_per_character(tmp_path, corpus_dir, capsys):
    out, summary = _train_lm(tmp_path, corpus_dir, "--steps", "8", "--inference", "epc")
    stored = summary["config"]
    assert stored["loss"] == "cross-entropy" and stored["context"] == 12
    network = mupc.load_network(out / "checkpoint.npz")
    assert isinstance(network, mupc.Transformer) and network.config.tokens
    corpus = mupc.load_corpus("tiny-shakespeare", data_dir=corpus_dir)
    assert network.config.vocab_size == corpus.vocab_size
    # The summary's per-character loss, recomputed independently from the test text.
    test = mupc.text_windows(corpus.test, 12)
    logits = np.asarray(network(jnp.asarray(test.inputs, jnp.float32)), np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nats = -np.mean(np.take_along_axis(log_probs, test.targets[..., None], -1))
    assert summary["test_loss_per_position"] == pytest.approx(nats, rel=1e-4)
    assert summary["test_loss"] == pytest.approx(12 * nats, rel=1e-4)
    # Every evaluation's record in metrics.jsonl carries it too (the curves are drawn from it).
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in records if "test_loss" in r]
    assert [r["step"] for r in evaluated] == [4, 8]
    assert evaluated[-1]["test_loss_per_position"] == pytest.approx(nats, rel=1e-4)
    assert nats < math.log(corpus.vocab_size)  # it learned something in 8 steps
    assert "nats per character" in capsys.readouterr().out
    capsys.readouterr()
    code = main(["evaluate", str(out / "checkpoint.npz"), "--data-dir", str(corpus_dir), "--json"])
    assert code == 0
    evaluation = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluation["test_loss_per_position"] == pytest.approx(nats, rel=1e-4)


def test_a_language_model_run_resumes_to_the_same_weights(tmp_path, corpus_dir):
    whole, _ = _train_lm(tmp_path, corpus_dir, "--steps", "8", name="whole")
    _train_lm(tmp_path, corpus_dir, "--steps", "4", name="pieces")
    pieces, _ = _train_lm(tmp_path, corpus_dir, "--steps", "8", "--resume", name="pieces")
    with np.load(whole / "checkpoint.npz") as a, np.load(pieces / "checkpoint.npz") as b:
        for name in a.files:
            if name.startswith("network/"):
                np.testing.assert_array_equal(a[name], b[name])


def test_generate_continues_the_prompt_with_the_models_own_characters(tmp_path, corpus_dir, capsys):
    out, _ = _train_lm(tmp_path, corpus_dir, "--steps", "4")
    capsys.readouterr()
    argv = ["generate", str(out / "checkpoint.npz"), "--prompt", "the fox", "--length", "15"]
    assert main([*argv, "--temperature", "0"]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    assert text.startswith("the fox") and len(text) == len("the fox") + 15
    # Greedy decoding, done by hand with the stored network and the corpus's vocabulary.
    network = mupc.load_network(out / "checkpoint.npz")
    corpus = mupc.load_corpus("tiny-shakespeare", data_dir=corpus_dir)
    ids = list(corpus.encode("the fox"))
    for _ in range(15):
        window = np.array(ids[-12:])
        padded = np.pad(window, (0, 12 - window.size)).astype(np.float32)
        ids.append(int(jnp.argmax(network(jnp.asarray(padded)[None])[0, window.size - 1])))
    assert text == corpus.decode(ids)
    assert main([*argv, "--prompt", "the fox!"]) == 2
    assert "outside the vocabulary" in capsys.readouterr().err


def test_a_vit_trains_on_images_and_generate_refuses_it(tmp_path, capsys):
    out = tmp_path / "vit"
    argv = ["train", "--dataset", "synthetic", "--network", "transformer", "-H", "2", "-N", "16"]
    argv += ["--head-dim", "8", "--patch-size", "4", "--steps", "3", "--eval-every", "3"]
    assert main([*argv, "--quiet", "--pc-layers", "block", "--out", str(out)]) == 0
    network = mupc.load_network(out / "checkpoint.npz")
    assert network.config.input_shape == (8, 8, 1) and network.num_layers == 3
    assert network.config.heads == 2 and not network.config.is_causal
    capsys.readouterr()
    assert main(["generate", str(out / "checkpoint.npz")]) == 2
    assert "records no vocabulary" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dataset", "tiny-shakespeare"], "text corpus"),
        (["--context", "8"], "only for --network transformer"),
        (["--network", "conv", "--pc-layers", "block"], "only for --network transformer"),
        (["--network", "transformer", "--no-skips"], "always has its skip connections"),
        (["--network", "transformer", "-N", "20", "--head-dim", "8"], "multiple of `head_dim`"),
    ],
)
def test_flags_that_do_not_apply_are_refused(tmp_path, capsys, flags, message):
    assert main(["train", "--steps", "1", "--quiet", *flags, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err


def test_the_model_learns_the_corpus_better_than_chance_with_every_method(tmp_path, corpus_dir):
    """A few steps of BP, μPC + ePC and μPC lower the held-out cross-entropy below log V."""
    corpus = mupc.load_corpus("tiny-shakespeare", data_dir=corpus_dir)
    for name, flags in (
        ("bp", ["--method", "bp", "--lr", "0.03"]),
        ("epc", ["--inference", "epc", "--lr", "0.03"]),
        ("pc", ["--lr", "0.03", "--activity-lr", "0.1"]),
    ):
        _, summary = _train_lm(tmp_path, corpus_dir, "--steps", "12", *flags, name=name)
        assert summary["test_loss_per_position"] < math.log(corpus.vocab_size) - 0.3, name
    assert jax.device_count() >= 1


def test_redraw_curves_plots_every_method_and_the_floors(tmp_path, saved_figures):
    rows = [("BP", 100, 2.5), ("BP", 200, 2.1), ("μPC + ePC", 100, 2.6), ("μPC + ePC", 200, 2.2)]
    path = tmp_path / "curves.csv"
    path.write_text("method,step,value\n" + "".join(f"{m},{s},{v}\n" for m, s, v in rows))
    argv = ["redraw", "curves", str(path), "--out", str(tmp_path / "c.png"), "--ylabel", "nats"]
    assert main([*argv, "--floor", "bigram floor=2.447"]) == 0
    (figure,) = saved_figures
    lines = figure.axes[0].lines
    plotted = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in lines}
    assert plotted["BP"] == ([100, 200], [2.5, 2.1])
    assert plotted["μPC + ePC"] == ([100, 200], [2.6, 2.2])
    assert list(plotted["bigram floor"][1]) == [2.447, 2.447]
    path.write_text("method,step\nBP,1\n")
    assert main([*argv[:-2]]) == 2


def test_the_vit_depth_preset_runs_as_a_sweep_and_reads_back(tmp_path):
    """The ViT preset's runs (here on the synthetic 8 x 8 images, 4 x 4 patches, 2 steps) go
    through the sweep machinery: one row per method with its labels and rates."""
    import dataclasses

    from mupc.experiments import DEPTH_PRESETS, depth_runs, run_sweep
    from mupc.experiments._results import read_results

    preset = DEPTH_PRESETS["vit-quick"]
    fields = tuple((k, 4 if k == "patch_size" else v) for k, v in preset.fields)
    tiny = dataclasses.replace(
        preset, dataset="synthetic", depths=(1,), steps=2, width=16, train_examples=None,
        methods=("epc", "bp"), fields=(*fields, ("head_dim", 8)),
    )  # fmt: skip
    runs = depth_runs(tiny)
    assert [run.config.lr for run in runs] == [0.03, 0.01]  # the preset's probed rates
    assert runs[0].config.activity_lr == 0.001 and runs[0].config.network == "transformer"
    results = run_sweep(runs, tmp_path / "sweep", kind="depth", workers=1, log=lambda _: None)
    stored = read_results(tmp_path / "sweep" / "results.csv", "depth")
    assert [r.labels["method"] for r in stored] == ["μPC + ePC", "BP"]
    assert all(not r.summary.diverged and r.summary.steps == 2 for r in results)


def test_diagnose_signal_measures_a_language_model_checkpoint(tmp_path, corpus_dir):
    """`mupc diagnose signal` on a transformer checkpoint: one row per weight layer of the
    network, under cross-entropy; ePC with a tiny error step is backprop computed locally, so
    its cosines are ~1 at every layer, while one activity step (T = 1) from the feedforward
    start reaches only the top: the layers below get exactly zero PC gradients."""
    out, _ = _train_lm(tmp_path, corpus_dir, "--method", "bp", "--steps", "4")
    argv = ["diagnose", "signal", "--checkpoint", str(out / "checkpoint.npz"),
            "--dataset", "tiny-shakespeare", "--data-dir", str(corpus_dir),
            "--settings", "epc:1e-4:1", "gd:0.1:1", "--batch-size", "8",
            "--out", str(tmp_path / "signal")]  # fmt: skip
    assert main(argv) == 0
    import csv

    rows = list(csv.DictReader((tmp_path / "signal" / "signal.csv").open()))
    network = mupc.load_network(out / "checkpoint.npz")
    layers = len(network.layer_specs())
    by_setting: dict[str, list[dict]] = {}
    for row in rows:
        by_setting.setdefault(row["setting"], []).append(row)
    assert sorted(by_setting) == ["epc 1e-4 T=1", "gd 0.1 T=1"]
    assert all(len(group) == layers for group in by_setting.values())
    assert min(float(r["cosine"]) for r in by_setting["epc 1e-4 T=1"]) > 0.99
    bottom = by_setting["gd 0.1 T=1"][0]
    assert float(bottom["pc_norm"]) == 0.0 and float(bottom["bp_norm"]) > 0


def test_a_depth_sweep_runs_a_language_model_on_a_text_corpus(tmp_path, corpus_dir):
    """The sweeps find a text corpus before starting (as they do an image dataset) and run
    the transformer on it: every run reports its per-character loss."""
    import dataclasses

    from mupc.experiments import DEPTH_PRESETS, depth_runs, run_sweep

    preset = dataclasses.replace(
        DEPTH_PRESETS["vit-quick"], dataset="tiny-shakespeare", depths=(1,), steps=2, width=16,
        train_examples=None, methods=("epc", "bp"),
        fields=(("loss", "cross-entropy"), ("head_dim", 8), ("context", 12)),
    )  # fmt: skip
    runs = depth_runs(preset, data_dir=str(corpus_dir))
    results = run_sweep(runs, tmp_path / "sweep", kind="depth", workers=1, log=lambda _: None)
    vocabulary = mupc.load_corpus("tiny-shakespeare", data_dir=corpus_dir).vocab_size
    for result in results:
        assert result.summary.steps == 2 and not result.summary.diverged
        assert 0 < result.summary.test_loss_per_position < 2 * math.log(vocabulary)
