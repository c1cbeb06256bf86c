"""Figures and the transfer report, on hand-made result rows."""

import math

import numpy as np
from helpers import PNG_SIGNATURE

from mupc.experiments import RunConfig, RunSummary, SweepResult, SweepRun
from mupc.experiments._figures import depth_figure, transfer_figure, transfer_grid, transfer_report


def _result(labels, diverged, test_accuracy=None, min_train_loss=None):
    """A `SweepResult` with only the fields the figures read."""
    summary = RunSummary(
        status="diverged" if diverged else "completed", config=RunConfig(steps=1), steps=1,
        epochs=0.0, test_accuracy=test_accuracy, test_loss=None, best_test_accuracy=None,
        min_train_loss=min_train_loss, final_train_loss=None,
        diverged_at_step=1 if diverged else None, diverged_on="training" if diverged else None,
        wall_seconds=0.0, seconds_per_step=None, dataset="synthetic", num_train=1, num_test=1,
    )  # fmt: skip
    return SweepResult(SweepRun("run", RunConfig(steps=1), labels), summary)


def _depth_rows():
    rows = []
    for method, accuracy in (("PC", 0.5), ("μPC", 0.9), ("BP", 0.95)):
        for depth in (8, 16, 32):
            for seed in (0, 1):
                diverged = method == "PC" and depth == 32
                rows.append(_result(
                    {"method": method, "depth": depth, "seed": seed}, diverged,
                    test_accuracy=None if diverged else accuracy + 0.01 * seed,
                ))  # fmt: skip
    return rows


def test_depth_figure_plots_mean_and_sd_per_method(tmp_path, saved_figures):
    """The plotted points are the mean ± sd over seeds of the test accuracy in percent, at
    each depth; diverged runs are crosses labelled with their count, not points."""
    rows = _depth_rows()
    path = depth_figure(rows, tmp_path / "depth.png", title="test")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    (figure,) = saved_figures
    (axis,) = figure.axes
    plotted = {container.get_label(): container for container in axis.containers}
    assert sorted(plotted) == ["BP", "PC", "μPC"]
    for method, base in (("PC", 50.0), ("μPC", 90.0), ("BP", 95.0)):
        line, _, (bars,) = plotted[method].lines
        depths = [8, 16] if method == "PC" else [8, 16, 32]  # PC diverged at H = 32
        seeds = np.array([base, base + 1.0])  # accuracy + 0.01·seed, in percent
        np.testing.assert_allclose(
            np.asarray(line.get_ydata(), float), [seeds.mean()] * len(depths), rtol=1e-12
        )
        # x = H·2^offset: the offsets separate the methods but keep the depth ratios.
        x = np.asarray(line.get_xdata(), float)
        np.testing.assert_allclose(x / x[0], np.array(depths) / depths[0], rtol=1e-12)
        for segment in bars.get_segments():  # vertical bar from mean − sd to mean + sd
            np.testing.assert_allclose(
                segment[:, 1], [seeds.mean() - seeds.std(), seeds.mean() + seeds.std()],
                rtol=1e-12,
            )  # fmt: skip
    crosses = [line for line in axis.lines if line.get_marker() == "x" and len(line.get_xdata())]
    assert len(crosses) == 1 and list(crosses[0].get_ydata()) == [2]
    assert [text.get_text() for text in axis.texts] == ["2"]  # both seeds of PC at H = 32


def _transfer_rows(best_by_size):
    """log10 loss = distance from the best cell, so the best cell is known; one diverged cell."""
    rows = []
    weights, activities = (0.5, 0.1, 0.01), (10.0, 1.0, 0.1)
    for size, (bi, bj) in best_by_size.items():
        for i, w in enumerate(weights):
            for j, a in enumerate(activities):
                for seed in (0, 1):
                    diverged = (i, j) == (0, 0)
                    loss = 10.0 ** (-2 + abs(i - bi) + abs(j - bj) + 0.1 * seed)
                    rows.append(_result(
                        {"size": size, "weight_lr": w, "activity_lr_batch_mean": a,
                         "seed": seed}, diverged, min_train_loss=loss,
                    ))  # fmt: skip
    return rows


def test_transfer_grid_averages_log_losses_and_finds_best_cell():
    grid = transfer_grid(_transfer_rows({64: (1, 1), 128: (1, 2)}))
    assert grid["sizes"] == [64, 128]
    assert grid["weight_lrs"] == [0.5, 0.1, 0.01]
    assert grid["activity_lrs"] == [10.0, 1.0, 0.1]
    assert tuple(int(k) for k in grid["best"][64]) == (1, 1)
    assert tuple(int(k) for k in grid["best"][128]) == (1, 2)
    # mean over seeds of log10 loss: -2 + distance + 0.05
    assert math.isclose(grid["values"][64][2, 2], -2 + 2 + 0.05)
    assert grid["diverged"][64][0, 0] and np.isnan(grid["values"][64][0, 0])
    assert grid["diverged"][64].sum() == 1


def test_transfer_report_says_whether_best_cell_moved():
    stayed = transfer_report(_transfer_rows({64: (1, 1), 128: (1, 1)}))
    assert "N = 64: (0.1, 1)" in stayed and "N = 128: (0.1, 1)" in stayed
    assert "best cell stayed in place" in stayed
    assert stayed.endswith(
        "from N = 64 to N = 128 the optimum stayed in place: (0.1, 1.0) -> (0.1, 1.0)"
    )
    moved = transfer_report(_transfer_rows({64: (1, 1), 128: (2, 2)}), size_name="H")
    assert "H = 128: (0.01, 0.1)" in moved and "<- moved" in moved
    assert "best cell moved across sizes" in moved
    assert moved.endswith("from H = 64 to H = 128 the optimum moved: (0.1, 1.0) -> (0.01, 0.1)")
    # With three sizes the report also compares the second smallest with the largest.
    three = transfer_report(_transfer_rows({8: (2, 2), 16: (1, 1), 128: (1, 1)}), size_name="H")
    assert "from H = 8 to H = 128 the optimum moved" in three
    assert three.endswith(
        "from H = 16 to H = 128 the optimum stayed in place: (0.1, 1.0) -> (0.1, 1.0)"
    )


def test_transfer_figure_plots_the_grid_and_marks_best_and_diverged_cells(tmp_path, saved_figures):
    rows = _transfer_rows({64: (1, 1), 128: (1, 2), 256: (2, 0)})
    path = transfer_figure(rows, tmp_path / "transfer.png", title="test")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    (figure,) = saved_figures
    panels = [axis for axis in figure.axes if axis.images]
    assert [axis.get_title() for axis in panels] == ["N = 64", "N = 128", "N = 256"]
    for axis, (bi, bj) in zip(panels, [(1, 1), (1, 2), (2, 0)], strict=True):
        # Mean over the two seeds of log10 loss = −2 + distance to the best cell + 0.05.
        i, j = np.indices((3, 3))
        expected = -2 + np.abs(i - bi) + np.abs(j - bj) + 0.05
        expected[0, 0] = np.nan  # diverged
        image = np.ma.filled(np.ma.asarray(axis.images[0].get_array(), float), np.nan)
        np.testing.assert_allclose(image, expected, rtol=1e-12)
        outlined = [p for p in axis.patches if not p.get_fill()]
        assert [p.get_xy() for p in outlined] == [(bj - 0.5, bi - 0.5)]
        hatched = [p for p in axis.patches if p.get_hatch()]
        assert [p.get_xy() for p in hatched] == [(-0.5, -0.5)]
    # One colour scale for all panels, spanning every finite value.
    limits = {axis.images[0].get_clim() for axis in panels}
    assert limits == {(-2 + 0.05, -2 + 4 + 0.05)}
