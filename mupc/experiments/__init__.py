"""Experiments: one training run from a configuration, sweeps of many runs, presets of the
published settings, their figures, training-curve reports and dashboard tracking."""

from ._report import plot_runs as plot_runs
from ._run import RunConfig as RunConfig, describe as describe, run_experiment as run_experiment
from ._sweep import SweepRun as SweepRun, run_sweep as run_sweep
from ._tracking import TensorBoardTracker as TensorBoardTracker, Tracker as Tracker
