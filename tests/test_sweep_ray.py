"""The Ray sweep backend on a local Ray instance: same results as the process pool, resume
without redoing finished runs. The Ray run is skipped when Ray is not installed
(`pip install 'mupc[ray]'`)."""

import csv

import pytest

from mupc._cli import main
from mupc.experiments import RunConfig
from mupc.experiments._sweep import SweepRun, run_sweep


def _grid():
    runs = []
    for method, lr in (("pc", 0.1), ("bp", 0.01)):
        config = RunConfig(
            dataset="synthetic", depth=2, width=8, method=method, lr=lr, steps=4, eval_every=2,
            checkpoint_every=2, log_every=2,
        )  # fmt: skip
        runs.append(SweepRun(f"{method}-H2", config, {"method": method}))
    return runs


def _rows(path):
    with open(path, newline="") as handle:
        return {row["run_id"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow  # in `make test-slow`: the suite's 10-minute budget
def test_ray_backend_matches_local_and_resumes(tmp_path):
    pytest.importorskip("ray")
    runs = _grid()
    lines = []
    run_sweep(runs, tmp_path / "local", kind="test", workers=1, argv=["test"], log=lambda _: None)
    run_sweep(runs, tmp_path / "ray", kind="test", workers=2, argv=["test"], backend="ray",
              log=lines.append)  # fmt: skip
    assert "running 2 as Ray tasks on a local Ray instance" in lines[0]
    local, remote = (
        _rows(tmp_path / "local" / "results.csv"),
        _rows(tmp_path / "ray" / "results.csv"),
    )
    assert sorted(remote) == ["bp-H2", "pc-H2"]
    for run_id, row in remote.items():  # the oracle: the same runs through the local backend
        assert row["steps"] == local[run_id]["steps"] == "4"
        for column in ("test_accuracy", "test_loss", "min_train_loss"):
            # Equal up to rounding: the Ray tasks run XLA on one thread, as pool workers do.
            assert float(row[column]) == pytest.approx(float(local[run_id][column]), rel=1e-5)

    # A killed run (summary lost after its last checkpoint) is redone; the other is not.
    summary = tmp_path / "ray" / "runs" / "pc-H2" / "summary.json"
    kept = tmp_path / "ray" / "runs" / "bp-H2" / "summary.json"
    summary.unlink()
    kept_time = kept.stat().st_mtime_ns
    lines.clear()
    run_sweep(runs, tmp_path / "ray", kind="test", workers=2, argv=["test"], backend="ray",
              log=lines.append)  # fmt: skip
    assert "2 runs: 1 already finished, running 1" in lines[0]
    assert summary.exists() and kept.stat().st_mtime_ns == kept_time
    again = _rows(tmp_path / "ray" / "results.csv")
    for column in ("test_accuracy", "test_loss", "min_train_loss", "steps", "status"):
        assert {k: row[column] for k, row in again.items()} == {
            k: row[column] for k, row in remote.items()
        }


def test_address_needs_the_ray_backend(tmp_path):
    with pytest.raises(ValueError, match=r"needs backend='ray' \(--backend ray\)"):
        run_sweep(_grid(), tmp_path, kind="test", address="127.0.0.1:6379", log=lambda _: None)


def test_unknown_backend(tmp_path):
    with pytest.raises(
        ValueError, match=r"`backend` must be one of \('local', 'ray'\), got 'slurm'"
    ):
        run_sweep(_grid(), tmp_path, kind="test", backend="slurm", log=lambda _: None)


def test_missing_ray_is_a_clear_cli_error(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    flags = ["sweep", "depth", "--dataset", "synthetic", "--depths", "2", "-N", "8", "--steps"]
    assert main([*flags, "1", "--seeds", "1", "--out", str(tmp_path), "--backend", "ray"]) == 2
    assert (
        "needs Ray, which is not installed: run `pip install 'mupc[ray]'`"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "runs").exists()  # nothing ran
