"""Experiments: one training run from a configuration, sweeps of many runs, presets of the
published settings, and their figures."""

from ._run import RunConfig as RunConfig, describe as describe, run_experiment as run_experiment
from ._sweep import SweepRun as SweepRun, run_sweep as run_sweep
