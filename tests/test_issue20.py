"""Issue 20's defects and minor findings, each a case that failed before its fix: integer
networks, `redraw transfer` of a depth sweep, `diagnose signal` of a float64 checkpoint, flags
that do not apply, a bad CIFAR archive, an empty CSV, a deleted output folder and Python API
misuses (one line, a `ValueError` naming the argument, never a deep error)."""

import csv
import errno
import io
import tarfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mupc
from mupc._cli import main
from mupc.experiments import RunConfig, SweepRun, describe, run_experiment, run_sweep
from mupc.experiments._sweep import SUMMARY_COLUMNS


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text and len(lines) == 1, text
    return lines[0]


# ----------------------------------------------------------------- defect 4: integer networks


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, jnp.bool_, "int32"])
def test_networks_refuse_a_dtype_that_is_not_floating(dtype):
    with pytest.raises(ValueError, match="`dtype` must be a floating dtype"):
        mupc.ResNet(mupc.NetworkConfig(4, 8, 2, 3), key=jax.random.key(0), dtype=dtype)
    with pytest.raises(ValueError, match="`dtype` must be a floating dtype"):
        mupc.ConvResNet(mupc.ConvConfig((4, 4, 1), (2,), 1, 3), key=jax.random.key(0), dtype=dtype)


def test_float_dtypes_are_still_accepted():
    network = mupc.ResNet(mupc.NetworkConfig(4, 8, 2, 3), key=jax.random.key(0), dtype="float32")
    assert network.dtype == jnp.float32


# ------------------------------------------------------ defect 5: redraw the wrong kind of CSV


def _results_csv(path, labels: dict) -> None:
    row = {"run_id": "r0", **labels, **{name: "" for name in SUMMARY_COLUMNS}}
    row.update(status="completed", test_accuracy=0.5, min_train_loss=0.1, diverged=False)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)


def test_redraw_transfer_of_a_depth_sweep_is_one_line(tmp_path, capsys):
    depth = tmp_path / "depth.csv"
    _results_csv(depth, {"method": "mupc", "depth": 8, "seed": 0})
    assert main(["redraw", "transfer", str(depth), "--out", str(tmp_path / "a.png")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "is not a transfer sweep's results.csv" in line and "mupc redraw depth" in line
    assert main(["redraw", "depth", str(depth), "--out", str(tmp_path / "b.png")]) == 0
    transfer = tmp_path / "transfer.csv"
    _results_csv(transfer, {"size": 16, "weight_lr": 0.1, "activity_lr_batch_mean": 0.5})
    assert main(["redraw", "depth", str(transfer), "--out", str(tmp_path / "c.png")]) == 2
    assert "mupc redraw transfer" in _one_line(capsys.readouterr().err)


def test_an_empty_results_csv_is_one_line_without_warnings(tmp_path, capsys):
    """Minor: a results.csv with its header only was reported as missing every column."""
    empty = tmp_path / "results.csv"
    empty.write_text(",".join(["run_id", *SUMMARY_COLUMNS]) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in ("depth", "transfer"):
            assert main(["redraw", kind, str(empty), "--out", str(tmp_path / "a.png")]) == 2
            assert "holds no finished run" in _one_line(capsys.readouterr().err)
        signal = tmp_path / "signal.csv"
        signal.write_text("")
        assert main(["redraw", "signal", str(signal), "--out", str(tmp_path / "a.png")]) == 2
        assert "holds no rows" in _one_line(capsys.readouterr().err)


# ---------------------------------------------- defect 6: the learning signal of a float64 run


def test_diagnose_signal_reads_the_checkpoint_of_a_float64_run(tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--dataset", "mnist-sample", "-H", "2", "-N", "8", "--steps", "2", "--quiet"]
    assert main(["train", *flags, "--float64", "--out", str(out)]) == 0
    assert mupc.read_checkpoint_config(out / "checkpoint.npz")["dtype"] == "float64"
    signal_out = tmp_path / "signal"
    argv = ["diagnose", "signal", "--checkpoint", str(out / "checkpoint.npz"), "--out",
            str(signal_out), "--settings", "gd:0.5/64:H", "--batch-size", "4"]  # fmt: skip
    x64 = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)  # as in a user's process (the suite enables it)
    try:
        assert main(argv) == 0, capsys.readouterr().err
        assert jax.config.read("jax_enable_x64") is False  # restored after the diagnostic
    finally:
        jax.config.update("jax_enable_x64", x64)
    with open(signal_out / "signal.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["layer"]) for row in rows] == [1, 2, 3]
    assert all(np.isfinite(float(row["bp_norm"])) and float(row["bp_norm"]) > 0 for row in rows)


# ----------------------------------------------------------- flags that do not apply are errors

TRAIN = ["train", "--dataset", "synthetic", "-H", "2", "-N", "8", "--steps", "2", "--quiet"]


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--method", "bp", "--parallel", "layers"], "--parallel layers"),
        (["--method", "bp", "--parallel", "both"], "--parallel both"),
        (["--method", "bp", "--inference", "epc"], "--inference"),
        (["--method", "bp", "--activity-lr", "0.1"], "--activity-lr"),
        (["--method", "bp", "--activity-lr-batch-mean", "0.5"], "--activity-lr-batch-mean"),
        (["--method", "bp", "-T", "3"], "--inference-steps"),
        (["--method", "bp", "--activity-optimizer", "adam"], "--activity-optimizer"),
        (["--method", "bp", "--weight-gradient", "local"], "--weight-gradient"),
        (["--weight-gradient", "reparameterised"], "--weight-gradient"),
        (["--stages", "2"], "--stages"),
        (["--network", "conv", "--no-skips"], "--no-skips"),
    ],
)
def test_a_flag_that_does_not_apply_is_an_error(flags, named, tmp_path, capsys):
    assert main([*TRAIN, *flags, "--out", str(tmp_path / "run")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("mupc train: error: ") and named in line, line
    assert not (tmp_path / "run").exists()


def test_flags_that_apply_are_accepted(tmp_path, capsys):
    assert main([*TRAIN, "--method", "bp", "--parallel", "data"]) == 0
    assert main([*TRAIN, "--inference", "epc", "--weight-gradient", "reparameterised"]) == 0
    capsys.readouterr()


# ------------------------------------------------------------------- a bad CIFAR-10 archive


def test_a_bad_cifar_archive_is_one_line(tmp_path, capsys):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / "cifar-10-python.tar.gz").write_bytes(b"\x00garbage" * 100)
    argv = ["train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--steps", "1"]
    assert main([*argv, "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "cifar-10-python.tar.gz: corrupt or truncated archive" in line
    assert "downloaded again" in line
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:  # a real archive of the wrong files
        info = tarfile.TarInfo("cifar-10-batches-py/readme")
        tar.addfile(info, io.BytesIO(b""))
    (folder / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    assert main([*argv, "--quiet"]) == 2
    assert "missing from the archive" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------- the output folder deleted mid-run


class _DeleteTheFolder:
    """A tracker that deletes the run's output folder after the first metrics line."""

    def __init__(self, out):
        self.out = out

    def start(self, step):
        pass

    def log(self, record):
        import shutil

        shutil.rmtree(self.out, ignore_errors=True)

    def close(self):
        pass


def test_deleting_the_output_folder_mid_run_stops_it_saying_so(tmp_path):
    """Minor: the run went on writing into a deleted file, lost `metrics.jsonl` and exited 0."""
    out = tmp_path / "run"
    config = RunConfig(dataset="synthetic", depth=2, width=8, steps=6, log_every=2)
    with pytest.raises(OSError) as raised:
        run_experiment(config, out, progress=False, tracking=_DeleteTheFolder(out))
    assert raised.value.errno == errno.ENOENT
    assert raised.value.filename == str(out / "metrics.jsonl")
    assert "deleted while the run was writing" in raised.value.strerror


# ------------------------------------------------------------------- Python API misuses


def _state():
    network = mupc.ResNet(mupc.NetworkConfig(4, 8, 2, 3), key=jax.random.key(0))
    return network, mupc.PCTrainer().init(network, jax.random.key(1))


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: run_experiment({"depth": 2}), "config"),
        (lambda: run_sweep([RunConfig(dataset="synthetic", steps=1)], "x", kind="k"), "runs"),
        (lambda: describe({"status": "completed"}), "summary"),
        (lambda: mupc.save_checkpoint("x.npz", _state()[0]), "state"),
        (
            lambda: mupc.learning_signal(mupc.PCTrainer(), "net", np.ones((2, 4)), np.ones((2, 3))),
            "network",
        ),  # fmt: skip
        (lambda: mupc.hessian_spectrum("net", np.ones((2, 4)), np.ones((2, 3))), "network"),
        (
            lambda: mupc.coordinate_check(
                mupc.PCTrainer(), None, np.ones((2, 4)), np.ones((2, 3)), 1
            ),
            "state",
        ),  # fmt: skip
    ],
)
def test_api_misuses_are_value_errors_naming_the_argument(call, argument, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"`{argument}` must be"):
        call()
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.npz").exists()


def test_sweep_runs_are_still_accepted_by_type(tmp_path):
    run = SweepRun("a", RunConfig(dataset="synthetic", depth=1, width=4, steps=1), {})
    results = run_sweep([run], tmp_path / "s", kind="k", workers=1, log=lambda line: None)
    assert [result.run.run_id for result in results] == ["a"]


# ------------------------------------------------------ a stop that comes out as another error


def test_a_stop_inside_an_import_that_comes_out_as_another_error_is_still_a_stop(capsys):
    """NumPy turns a KeyboardInterrupt raised while it imports into "ImportError: numpy._core
    failed to import" (chained implicitly): the command line must still say "stopped by"."""
    import signal

    from mupc._cli import run_command
    from mupc.experiments._interrupt import Interrupted, stop_behind

    def importing():
        try:
            raise Interrupted(signal.SIGTERM)
        except KeyboardInterrupt:
            raise ImportError("numpy._core.multiarray failed to import")  # noqa: B904

    with pytest.raises(ImportError) as raised:
        importing()
    assert stop_behind(raised.value).signum == signal.SIGTERM
    assert stop_behind(ValueError("plain")) is None
    assert run_command("mupc x", importing) == 143
    assert _one_line(capsys.readouterr().err) == "mupc x: stopped by SIGTERM"
