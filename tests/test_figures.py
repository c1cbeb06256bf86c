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


def test_depth_figure_is_a_png(tmp_path):
    path = depth_figure(_depth_rows(), tmp_path / "depth.png", title="test")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 5000


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


def test_transfer_figure_is_a_png(tmp_path):
    rows = _transfer_rows({64: (1, 1), 128: (1, 2), 256: (2, 2)})
    path = transfer_figure(rows, tmp_path / "transfer.png", title="test")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 5000
