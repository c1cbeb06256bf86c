"""Experiment tracking: send each `metrics.jsonl` record to a dashboard as well.

A tracker is any object with three methods, called by the run loop
(`mupc.experiments.run_experiment(..., tracking=...)`):

- `start(step)`: once, before training, with the step the run starts (or resumes) from;
- `log(record)`: with every dictionary written to `metrics.jsonl` (it always has `step`);
- `close()`: by whoever made the tracker, when the run is over (also after an error).

`TensorBoardTracker` writes TensorBoard event files with `tensorboardX`
(`pip install 'mupc[tensorboard]'`). Another service (W&B, MLflow, ...) is one more class with
the same three methods.
"""

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    """What the run loop calls: `start(step)`, then `log(record)` for every metrics line."""

    def start(self, step: int) -> None: ...

    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The scalars of one `metrics.jsonl` record, as TensorBoard tags.

    Every finite number except `step` keeps its key (`loss`, `energy_after`, `test_accuracy`,
    ...); booleans become 0 or 1; a list of numbers (e.g. `layer_energies`, H + 1 values)
    becomes one tag per entry, `layer_energies/0`, `layer_energies/1`, ...; `None` is skipped.
    """
    out: dict[str, float] = {}
    for key, value in record.items():
        if key == "step" or value is None:
            continue
        if isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, int | float):
            if math.isfinite(value):
                out[key] = float(value)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, int | float) and math.isfinite(item):
                    out[f"{key}/{index}"] = float(item)
    return out


class TensorBoardTracker:
    """Write every metrics record as TensorBoard scalars to `logdir` (tensorboardX).

    A resumed run (`start(step)` with `step` > 0) opens a new event file that *purges* the
    events logged after its checkpoint by the interrupted run (`purge_step = step + 1`, the
    same lines `metrics.jsonl` drops), so TensorBoard shows one clean curve. View with
    `tensorboard --logdir DIR`.

    **Arguments:**

    - `logdir`: the folder for the event files (created if needed).
    - `config`: optional JSON-serialisable settings, stored once as the text summary
      `run_config`.

    **Raises:** `ImportError` naming the extra to install when `tensorboardX` is missing.
    """

    def __init__(self, logdir: str | os.PathLike, config: dict[str, Any] | None = None):
        try:
            import tensorboardX  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "--tensorboard needs the tensorboardX package: pip install 'mupc[tensorboard]'."
            ) from error
        self.logdir = Path(logdir)
        self.config = config
        self._writer: Any = None

    def start(self, step: int) -> None:
        from tensorboardX import SummaryWriter

        self.close()
        self.logdir.mkdir(parents=True, exist_ok=True)
        # Event files sort by name (TensorBoard reads them in that order); the nanosecond
        # suffix keeps a resume within the same second after the file it corrects.
        self._writer = SummaryWriter(
            str(self.logdir), purge_step=step + 1, filename_suffix=f".{time.time_ns()}"
        )
        if self.config is not None:
            self._writer.add_text("run_config", json.dumps(self.config, indent=1), step)

    def log(self, record: dict[str, Any]) -> None:
        if self._writer is None:
            raise RuntimeError("TensorBoardTracker.log called before start(step).")
        for tag, value in scalars(record).items():
            self._writer.add_scalar(tag, value, global_step=int(record["step"]))
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
