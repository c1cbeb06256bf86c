"""`mupc plot` and `make run`'s figure, checked through the numbers they draw: each line's
data must equal the values in the runs' `metrics.jsonl`, parsed here independently."""

import csv
import json

import pytest
from helpers import PNG_SIGNATURE

import mupc.experiments._report as report
from mupc import _demo
from mupc._cli import main

TINY = ["train", "--dataset", "synthetic", "-H", "2", "-N", "16", "--quiet"]


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _points(records, key, scale=1.0):
    return [[r["step"], scale * r[key]] for r in records if r.get(key) is not None]


@pytest.fixture
def drawn(monkeypatch):
    """The figures `curves_figure` returns during the test, as
    `{panel title: {legend label or (label, linestyle): [[x, y], ...]}}`."""
    figures = []
    original = report.curves_figure

    def recording(*args, **kwargs):
        figures.append(original(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(report, "curves_figure", recording)

    def lines(index=-1):
        panels = {}
        for ax in figures[index].axes:
            panel = panels.setdefault(ax.get_title(), [])
            for line in ax.get_lines():
                panel.append((line.get_label(), line.get_linestyle(), line.get_xydata().tolist()))
        return panels

    return lines


def test_plot_overlays_runs_with_their_logged_values(tmp_path, drawn, capsys):
    runs = [tmp_path / "a", tmp_path / "b"]
    for seed, run in enumerate(runs):
        flags = ["--steps", "20", "--log-every", "5", "--eval-every", "10", "--seed", str(seed)]
        assert main([*TINY, *flags, "--out", str(run)]) == 0
    png = tmp_path / "compare.png"
    assert main(["plot", *map(str, runs), "--labels", "A", "B", "--out", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == PNG_SIGNATURE

    panels = drawn()
    assert list(panels) == ["training loss", "test accuracy (%)", report._TITLES["energy"]]
    for label, run in zip(["A", "B"], runs, strict=True):
        records = _records(run)
        assert [r["step"] for r in records] == [5, 10, 15, 20]
        loss = [points for name, _, points in panels["training loss"] if name == label]
        assert loss == [_points(records, "loss")]
        accuracy = [p for name, _, p in panels["test accuracy (%)"] if name == label]
        assert accuracy == [_points(records, "test_accuracy", 100.0)]
        assert [p[0] for p in accuracy[0]] == [10, 20]
    # Energy panel: per run, the solid line is after inference, the dashed one before.
    energy = panels[report._TITLES["energy"]]
    assert [style for _, style, _ in energy] == ["-", "--", "-", "--"]
    for index, run in enumerate(runs):
        records = _records(run)
        assert energy[2 * index][2] == _points(records, "energy_after")
        assert energy[2 * index + 1][2] == _points(records, "energy_before")
    assert energy[0][2] != energy[1][2]  # inference lowered the energy: two different lines


def test_plot_defaults_and_sweep_folders(tmp_path, drawn, capsys):
    sweep = tmp_path / "sweep"
    for name, accuracy in (("r1", 0.5), ("r2", 0.75)):
        (sweep / "runs" / name).mkdir(parents=True)
        lines = [{"step": 10, "loss": 1.0, "test_accuracy": accuracy / 2},
                 {"step": 20, "loss": 0.5, "test_accuracy": accuracy}]  # fmt: skip
        text = "".join(json.dumps(line) + "\n" for line in lines) + '{"step": 30, "lo'
        (sweep / "runs" / name / "metrics.jsonl").write_text(text)  # a torn last line
    assert main(["plot", str(sweep), "--panels", "test_accuracy"]) == 0
    assert (sweep / "curves.png").read_bytes()[:8] == PNG_SIGNATURE
    panels = drawn()
    assert panels == {
        "test accuracy (%)": [("r1", "-", [[10, 25.0], [20, 50.0]]),
                              ("r2", "-", [[10, 37.5], [20, 75.0]])],
    }  # fmt: skip


def test_layer_energies_are_drawn_against_the_layer_index():
    records = [
        {"step": 5, "loss": 1.0, "layer_energies": [0.5, 0.25, 2.0]},
        {"step": 10, "loss": 0.8, "layer_energies": [0.1, 0.2, 0.3]},
    ]
    fig = report.curves_figure({"run": records}, panels=("layer_energies",))
    (ax,) = fig.axes
    lines = [(line.get_linestyle(), line.get_xydata().tolist()) for line in ax.get_lines()]
    assert lines == [("--", [[1, 0.5], [2, 0.25], [3, 2.0]]), ("-", [[1, 0.1], [2, 0.2], [3, 0.3]])]


def test_plot_errors_name_the_problem(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "No metrics.jsonl in" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    assert main(["plot", str(run), "--labels", "x", "y"]) == 2
    assert "Got 2 labels for 1 runs" in capsys.readouterr().err
    assert main(["plot", str(run), "--panels", "test_accuracy"]) == 2
    assert "Nothing to plot" in capsys.readouterr().err
    (run / "metrics.jsonl").write_text('{"step": 1\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match="line 1: not a JSON record"):
        report.read_metrics(run)


def test_make_run_ends_with_a_test_accuracy_figure(tmp_path, drawn, capsys):
    out = tmp_path / "demo"
    argv = ["--out", str(out), "--depth", "2", "--width", "16", "--steps", "12"]
    assert _demo.main([*argv, "--eval-every", "4", "--workers", "1"]) == 0
    figure = out / "test_accuracy.png"
    assert f"test accuracy against steps: {figure}" in capsys.readouterr().out
    assert figure.read_bytes()[:8] == PNG_SIGNATURE
    with open(out / "results.csv") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    (panel,) = drawn().values()
    assert [label for label, _, _ in panel] == ["PC", "μPC", "BP"]
    for label, _, points in panel:
        records = _records(out / "runs" / rows[label]["run_id"])
        assert points == _points(records, "test_accuracy", 100.0)
        assert [x for x, _ in points] == [4, 8, 12]  # evaluated often enough for a curve
        assert points[-1][1] == pytest.approx(100 * float(rows[label]["test_accuracy"]))
