"""Sweeps: results, provenance, resuming without redoing finished runs, transfer report."""

import csv
import json

import pytest
from helpers import PNG_SIGNATURE

from mupc._cli import main
from mupc.experiments import RunConfig
from mupc.experiments._presets import DEPTH_PRESETS, TRANSFER_PRESETS, depth_runs, transfer_runs
from mupc.experiments._sweep import SweepRun, run_sweep

TINY_DEPTH = ["sweep", "depth", "--dataset", "synthetic", "--depths", "2", "3", "-N", "8",
              "--steps", "4", "--seeds", "1", "--methods", "mupc", "bp"]  # fmt: skip


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _summary_mtimes(out):
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/summary.json")}


def test_killed_depth_sweep_resumes_without_redoing_finished_runs(tmp_path, capsys):
    out = tmp_path / "depth"
    # First invocation through the process pool (spawned workers, one run each).
    assert main([*TINY_DEPTH, "--out", str(out), "--workers", "2"]) == 0
    rows = _rows(out / "results.csv")
    expected = ["bp-H2-s0", "bp-H3-s0", "mupc-H2-s0", "mupc-H3-s0"]
    assert sorted(row["run_id"] for row in rows) == expected
    for row in rows:
        assert 0 <= float(row["test_accuracy"]) <= 1 and row["diverged"] == "False"
    assert (out / "depth.png").read_bytes()[:8] == PNG_SIGNATURE
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["kind"] == "depth" and "jax" in sweep["invocations"][0]["versions"]
    assert len(sweep["runs"]) == 4

    # Simulate a kill: one run lost its summary (it died after its last checkpoint), another
    # lost everything after its first lines of metrics.
    before = _summary_mtimes(out)
    (out / "runs" / "mupc-H3-s0" / "summary.json").unlink()
    lost = out / "runs" / "bp-H2-s0"
    for name in ("summary.json", "checkpoint.npz"):
        (lost / name).unlink()
    capsys.readouterr()
    assert main([*TINY_DEPTH, "--out", str(out), "--workers", "1"]) == 0
    assert "4 runs: 2 already finished, running 2" in capsys.readouterr().out
    after = _summary_mtimes(out)
    assert sorted(after) == sorted(before)
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed == ["bp-H2-s0", "mupc-H3-s0"]
    assert len(_rows(out / "results.csv")) == 4
    assert len(json.loads((out / "sweep.json").read_text())["invocations"]) == 2


def test_transfer_sweep_marks_divergence_and_reports_best_cell(tmp_path, capsys):
    out = tmp_path / "transfer"
    argv = ["sweep", "transfer", "--dataset", "synthetic", "--sizes", "8", "16", "-H", "2",
            "--weight-lrs", "0.1", "--activity-lrs", "1e30", "0.5", "--steps", "8",
            "--seeds", "1", "--workers", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    report = capsys.readouterr().out
    assert "N = 8: (0.1, 0.5)" in report and "N = 16: (0.1, 0.5)" in report
    assert "best cell stayed in place" in report
    rows = _rows(out / "results.csv")
    assert len(rows) == 4
    diverged = {row["run_id"]: row["diverged"] == "True" for row in rows}
    assert diverged == {
        "mupc-relu-N8-w0.1-a1e+30-s0": True,
        "mupc-relu-N16-w0.1-a1e+30-s0": True,
        "mupc-relu-N8-w0.1-a0.5-s0": False,
        "mupc-relu-N16-w0.1-a0.5-s0": False,
    }
    assert (out / "transfer.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (out / "transfer_report.txt").read_text().startswith("best (weight lr")


def test_failed_run_is_reported_and_others_kept(tmp_path):
    good = SweepRun("good", RunConfig(dataset="synthetic", depth=2, width=8, steps=2), {"k": 1})
    # 4,096 devices: refused when the run builds its device mesh, inside the run.
    many = RunConfig(dataset="synthetic", depth=2, width=8, steps=2, devices=4096)
    bad = SweepRun("bad", many, {"k": 2})
    with pytest.raises(RuntimeError, match=r"1 run\(s\) failed: \['bad'\]"):
        run_sweep([good, bad], tmp_path, kind="test", workers=1, log=lambda _: None)
    assert "Asked for 4096 devices" in (tmp_path / "runs" / "bad" / "error.txt").read_text()
    assert [row["run_id"] for row in _rows(tmp_path / "results.csv")] == ["good"]
    with pytest.raises(ValueError, match="unique"):
        run_sweep([good, good], tmp_path, kind="test", workers=1)


def test_presets_convert_published_rates():
    quick = depth_runs(DEPTH_PRESETS["quick"])
    mupc = [run for run in quick if run.labels["method"] == "μPC"]
    assert {run.config.activity_lr for run in mupc} == {0.5 / 64}
    assert {run.config.lr for run in mupc} == {0.1}
    assert len(quick) == 3 * 4 * 2
    paper = transfer_runs(TRANSFER_PRESETS["paper"])
    assert len(paper) == 5 * 4 * 11 * 3
    assert {run.config.depth for run in paper} == {8}
    assert max(run.config.activity_lr for run in paper) == 1e3 / 64
    assert len({run.run_id for run in paper}) == len(paper)


def test_rerun_with_other_settings_is_refused_and_longer_runs_are_extended(tmp_path, capsys):
    out = tmp_path / "depth"
    tiny = ["sweep", "depth", "--dataset", "synthetic", "--depths", "2", "-N", "8",
            "--seeds", "1", "--methods", "bp", "--workers", "1", "--out", str(out)]  # fmt: skip
    assert main([*tiny, "--steps", "3"]) == 0
    # Another width into the same folder must not report the old run under the new label.
    assert main([*tiny, "--steps", "3", "-N", "12"]) == 2
    assert "holds a different run" in capsys.readouterr().err
    (row,) = _rows(out / "results.csv")
    assert row["width"] == "8"
    # Asking for more steps extends the finished run from its checkpoint.
    assert main([*tiny, "--steps", "5"]) == 0
    assert "1 runs: 0 already finished, running 1" in capsys.readouterr().out
    summary = json.loads((out / "runs" / "bp-H2-s0" / "summary.json").read_text())
    assert summary["steps"] == 5
