"""Experiments: one training run from a configuration, sweeps of many runs, presets of the
published settings, their figures, training-curve reports and dashboard tracking.

- `RunConfig` → `run_experiment` → `RunSummary` (`describe` says it in one line).
- `SweepRun`s → `run_sweep` → `SweepResult`s (`results.csv`), resumable, stopped cleanly by
  Ctrl-C (`SweepInterrupted`).
- Presets of the published experiments: `DEPTH_PRESETS` and `depth_runs`,
  `TRANSFER_PRESETS` and `transfer_runs`; figures: `depth_figure`, `transfer_figure`,
  `transfer_report`; reports: `plot_runs` (`mupc plot`); tracking: `Tracker`,
  `TensorBoardTracker` (`--tensorboard`).
- Diagnostics (`mupc diagnose`): `diagnose_hessian` (`HessianExperiment`), `diagnose_coords`
  (`CoordsExperiment`), `diagnose_theory` (`TheoryExperiment`), `diagnose_signal`
  (`SignalExperiment`) write their CSV and figure and return the rows; `DiagnosticGrid` and
  `synthetic_task` are their common grid and data.
"""

from ._config import RunConfig as RunConfig
from ._diagnose import DiagnosticGrid as DiagnosticGrid, synthetic_task as synthetic_task
from ._diagnose_coords import (
    COORD_COLUMNS as COORD_COLUMNS,
    CoordsExperiment as CoordsExperiment,
    diagnose_coords as diagnose_coords,
)
from ._diagnose_hessian import (
    HESSIAN_COLUMNS as HESSIAN_COLUMNS,
    HessianExperiment as HessianExperiment,
    diagnose_hessian as diagnose_hessian,
)
from ._diagnose_signal import (
    SignalExperiment as SignalExperiment,
    diagnose_signal as diagnose_signal,
)
from ._diagnose_theory import (
    THEORY_COLUMNS as THEORY_COLUMNS,
    TheoryExperiment as TheoryExperiment,
    diagnose_theory as diagnose_theory,
)
from ._figures import (
    depth_figure as depth_figure,
    transfer_figure as transfer_figure,
    transfer_report as transfer_report,
)
from ._interrupt import Interrupted as Interrupted
from ._presets import (
    DEPTH_PRESETS as DEPTH_PRESETS,
    TRANSFER_PRESETS as TRANSFER_PRESETS,
    DepthPreset as DepthPreset,
    TransferPreset as TransferPreset,
    depth_runs as depth_runs,
    transfer_runs as transfer_runs,
)
from ._report import plot_runs as plot_runs
from ._run import run_experiment as run_experiment
from ._summary import RunSummary as RunSummary, describe as describe
from ._sweep import (
    SweepInterrupted as SweepInterrupted,
    SweepResult as SweepResult,
    SweepRun as SweepRun,
    run_sweep as run_sweep,
)
from ._tracking import TensorBoardTracker as TensorBoardTracker, Tracker as Tracker
