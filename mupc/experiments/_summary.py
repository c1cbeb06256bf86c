"""`RunSummary`: how one training run ended, as named fields (stored as `summary.json`)."""

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Literal

from ._config import RunConfig

Status = Literal["completed", "diverged"]
DivergedOn = Literal["training", "energy", "test"]
DivergenceKind = Literal["non-finite", "threshold"]


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """The outcome of one run (`run_experiment`'s result, `summary.json` on disk).

    **Fields:**

    - `status`: `"completed"` or `"diverged"` (also `diverged`, a property).
    - `config`: the `RunConfig` that was run.
    - `steps`: training steps taken (for a diverged run, the step where it diverged);
      `epochs`: the same in epochs.
    - `test_accuracy` (a fraction in [0, 1]) and `test_loss` at the end; None if diverged.
    - `best_test_accuracy`: the best of every evaluation.
    - `min_train_loss`, `final_train_loss`, `initial_train_loss`: the minimum, last
      (None if diverged) and first feedforward training loss (batch means).
    - `diverged_at_step`, `diverged_on` (`"training"` loss, `"energy"`, or `"test"` loss),
      `divergence` (`"non-finite"`, or `"threshold"`: above `divergence_threshold` times its
      first value): None when the run completed.
    - `wall_seconds`: time spent, summed over resumed pieces; `seconds_per_step`: of the
      last piece (None if it took no step).
    - `dataset`, `data_dir` (the folder its files were read from; None for generated data),
      `num_train`, `num_test`.
    - `test_loss_per_position`: for a language model, the final test loss per character
      (with the cross-entropy loss: nats per character; its exponential is the perplexity);
      None otherwise.
    - `placement`: the devices the last piece trained on and how they were chosen:
      ``{"devices": K, "chosen_by": "calibration" | "cache" | "flag" | "default",
      "seconds_per_step": {"1": s, "K": s} (measured, else null), "reason": ...}``
      (`mupc._parallel.placement.Placement`); None in summaries of older versions.
    - `peak_memory_mb`: the process's peak resident memory (MiB) when the summary was written
      (the host's; on a GPU the device memory is not included); None where the platform does
      not report it. A resumed run reports its last piece.
    """

    status: Status
    config: RunConfig
    steps: int
    epochs: float
    test_accuracy: float | None
    test_loss: float | None
    best_test_accuracy: float | None
    min_train_loss: float | None
    final_train_loss: float | None
    diverged_at_step: int | None
    diverged_on: DivergedOn | None
    wall_seconds: float
    seconds_per_step: float | None
    dataset: str
    num_train: int
    num_test: int
    initial_train_loss: float | None = None
    divergence: DivergenceKind | None = None
    data_dir: str | None = None
    test_loss_per_position: float | None = None
    peak_memory_mb: float | None = None
    placement: dict[str, Any] | None = None

    def __post_init__(self):
        if self.status not in ("completed", "diverged"):
            raise ValueError(f"`status` must be 'completed' or 'diverged', got {self.status!r}.")
        if (self.status == "diverged") != (self.diverged_at_step is not None):
            raise ValueError(
                f"A {self.status} run must {'' if self.status == 'diverged' else 'not '}have "
                f"a `diverged_at_step` (got {self.diverged_at_step!r})."
            )

    @property
    def diverged(self) -> bool:
        """Whether the run diverged."""
        return self.status == "diverged"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of `summary.json` (with `diverged` and the config as a dict)."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["config"] = self.config.to_dict()
        data["diverged"] = self.diverged
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSummary":
        """Inverse of `to_dict`.

        **Raises:** `ValueError` for a missing or unknown field.
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        diverged = data.pop("diverged", None)
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        required = [
            name
            for name, field in fields.items()
            if field.default is dataclasses.MISSING and name not in data
        ]
        if unknown or required:
            raise ValueError(f"unknown fields {unknown}, missing fields {required}")
        summary = cls(**{**data, "config": RunConfig.from_dict(data["config"])})
        if diverged is not None and bool(diverged) != summary.diverged:
            raise ValueError(f"`diverged` is {diverged} but `status` is {summary.status!r}")
        return summary

    @classmethod
    def read(cls, path: str | os.PathLike) -> "RunSummary":
        """Read a `summary.json`.

        **Raises:** `ValueError` naming the file if it is not a valid summary (cut short,
        edited, or from an incompatible version); `FileNotFoundError` if it is missing.
        """
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
            raise ValueError(
                f"{path} is not a valid run summary ({error}); delete it to finish the run "
                "again from its checkpoint"
            ) from error


def describe(summary: RunSummary) -> str:
    """One line saying how a run ended.

    **Raises:** `ValueError` if `summary` is not a `RunSummary` (e.g. `summary.json`'s dict:
    use `RunSummary.read(path)`).
    """
    if not isinstance(summary, RunSummary):
        raise ValueError(
            f"`summary` must be a RunSummary (RunSummary.read(path) reads summary.json), got "
            f"{type(summary).__name__}."
        )
    if summary.diverged:
        what = {"energy": "energy", "test": "test loss"}.get(
            summary.diverged_on or "", "training loss"
        )
        how = (
            f"exceeded {summary.config.divergence_threshold:g} × its first value"
            if summary.divergence == "threshold"
            else "became non-finite"
        )
        return (
            f"DIVERGED: {what} {how} at step {summary.diverged_at_step}; no test accuracy recorded."
        )
    assert summary.test_accuracy is not None and summary.best_test_accuracy is not None
    if summary.test_loss_per_position is not None:
        import math

        per = summary.test_loss_per_position
        text = f"test loss {per:.4f} per character"
        if summary.config.loss == "cross-entropy":
            text = (
                f"test cross-entropy {per:.4f} nats per character (perplexity {math.exp(per):.3g})"
            )
        return (
            f"{text}, next-character accuracy {summary.test_accuracy:.2%}, {summary.steps} "
            f"steps in {summary.wall_seconds:.1f} s"
        )
    return (
        f"test accuracy {summary.test_accuracy:.2%} (best {summary.best_test_accuracy:.2%}), "
        f"min training loss {summary.min_train_loss:.4g}, {summary.steps} steps in "
        f"{summary.wall_seconds:.1f} s"
    )


def summarise(loop: Any, divergence: Any, started: float) -> RunSummary:
    """The `RunSummary` of the training `loop` (a `mupc.experiments._loop.Loop`) that ended at
    `divergence` (a `Divergence`, or None when it completed), `started` at this
    `time.perf_counter()`."""
    tracker = loop.monitor.tracker
    steps = loop.total if divergence is None else divergence.step
    last = tracker.last_eval if divergence is None else None
    seconds = time.perf_counter() - started
    return RunSummary(
        status="completed" if divergence is None else "diverged",
        config=loop.config,
        steps=steps,
        epochs=round(steps / loop.per_epoch, 4),
        test_accuracy=None if last is None else last["test_accuracy"],
        test_loss=None if last is None else last["test_loss"],
        best_test_accuracy=tracker.best_test_accuracy,
        min_train_loss=tracker.min_train_loss,
        final_train_loss=None if divergence is not None else tracker.last_train_loss,
        diverged_at_step=None if divergence is None else divergence.step,
        diverged_on=None if divergence is None else divergence.on,
        wall_seconds=round(loop.wall(), 3),
        seconds_per_step=round(seconds / (steps - loop.start), 5) if steps > loop.start else None,
        dataset=loop.data.name,
        num_train=int(loop.data.train_images.shape[0]),
        num_test=int(loop.data.test_images.shape[0]),
        initial_train_loss=tracker.initial_train_loss,
        divergence=None if divergence is None else divergence.kind,
        data_dir=loop.data.directory,
        test_loss_per_position=None if last is None else last.get("test_loss_per_position"),
        peak_memory_mb=peak_memory_mb(),
    )


def peak_memory_mb() -> float | None:
    """This process's peak resident set size in MiB (`getrusage`: kB on Linux, bytes on
    macOS), or None where the `resource` module is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
