"""Divergence: the first step whose training loss or energy is not finite or exceeds
`divergence_threshold` times its value at the first step (or whose test loss is not finite),
and the running statistics of a run read from the same metrics.

A run stops as diverged at the first step whose training loss, or energy before or after
inference, is not finite or exceeds `divergence_threshold` (default 1e3) times its value at
the first step; or when a test loss is not finite.
"""

import dataclasses
import math
from typing import Any

import numpy as np

from ._config import RunConfig
from ._summary import DivergedOn, DivergenceKind


@dataclasses.dataclass
class RunStatistics:
    """Running statistics of a run, stored in checkpoint metadata so resume restores them."""

    min_train_loss: float | None = None
    best_test_accuracy: float | None = None
    last_eval: dict | None = None
    last_train_loss: float | None = None
    wall_seconds: float = 0.0
    initial_train_loss: float | None = None
    initial_energy: float | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> "RunStatistics":
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

    def to_dict(self, wall_seconds: float) -> dict:
        return {**dataclasses.asdict(self), "wall_seconds": wall_seconds}


@dataclasses.dataclass(frozen=True)
class Divergence:
    """Where and how a run diverged: the global `step` (1-based), what diverged (`on`) and
    `kind` (`"non-finite"` or `"threshold"`)."""

    step: int
    on: DivergedOn
    kind: DivergenceKind


def first_divergence(
    values: np.ndarray, reference: float | None, threshold: float | None
) -> tuple[int, DivergenceKind] | None:
    """The index of the first of `values` that is not finite or exceeds
    `threshold * reference`, and which of the two; None if there is none.

    $v_i$ diverged $\\iff v_i \\notin \\mathbb{R}$ or $v_i > \\theta\\, v_\\text{ref}$ (the
    second test only when `threshold` θ and a finite `reference` are given).
    """
    values = np.asarray(values, np.float64)
    non_finite = ~np.isfinite(values)
    bad = non_finite.copy()
    if threshold is not None and reference is not None and math.isfinite(reference):
        with np.errstate(invalid="ignore"):
            bad |= values > threshold * reference
    if not bad.any():
        return None
    index = int(np.flatnonzero(bad)[0])
    return index, "non-finite" if non_finite[index] else "threshold"


def finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class Monitor:
    """Reads the metrics of the steps since the last flush: divergence, statistics, the
    `metrics.jsonl` record."""

    def __init__(self, config: RunConfig, tracker: RunStatistics, per_epoch: int):
        self.config, self.tracker, self.per_epoch = config, tracker, per_epoch

    def flush(self, host: list, done: int) -> tuple[dict, Divergence | None]:
        """`host`: the `StepMetrics` of steps `done - len(host) + 1 .. done`, on the host."""
        tracker, threshold = self.tracker, self.config.divergence_threshold
        first = done - len(host) + 1
        losses = np.array([float(m.loss) for m in host])
        series: list[tuple[DivergedOn, np.ndarray, float | None]] = []
        if first == 1 and tracker.initial_train_loss is None:
            tracker.initial_train_loss = finite_or_none(losses[0])
        series.append(("training", losses, tracker.initial_train_loss))
        if host[0].energy_before is not None:
            before = np.array([float(m.energy_before) for m in host])
            after = np.array([float(m.energy_after) for m in host])
            if first == 1 and tracker.initial_energy is None:
                tracker.initial_energy = finite_or_none(before[0])
            series.append(("energy", before, tracker.initial_energy))
            series.append(("energy", after, tracker.initial_energy))
        found = [
            (index, on, kind)
            for on, values, reference in series
            if (hit := first_divergence(values, reference, threshold)) is not None
            for index, kind in [hit]
        ]
        divergence = None
        if found:
            index, on, kind = min(found, key=lambda item: item[0])
            divergence = Divergence(first + index, on, kind)
            kept = losses[:index]
        else:
            kept = losses
        if kept.size:
            tracker.last_train_loss = float(kept[-1])
            low = float(kept.min())
            if tracker.min_train_loss is None or low < tracker.min_train_loss:
                tracker.min_train_loss = low
        step = done if divergence is None else divergence.step
        shown = host[step - first]
        record: dict[str, Any] = {
            "step": step,
            "epoch": round(step / self.per_epoch, 4),
            "loss": finite_or_none(shown.loss),
            "mean_loss": float(kept.mean()) if kept.size else None,
        }
        if shown.energy_before is not None:
            record["energy_before"] = finite_or_none(shown.energy_before)
            record["energy_after"] = finite_or_none(shown.energy_after)
        if divergence is not None:
            record.update(diverged=True, diverged_on=divergence.on, divergence=divergence.kind)
        return record, divergence

    def evaluated(self, record: dict, evaluation: dict) -> Divergence | None:
        """Fold a test evaluation into the statistics and `record`."""
        if evaluation["test_loss"] is None:
            record.update(diverged=True, diverged_on="test", divergence="non-finite")
            return Divergence(record["step"], "test", "non-finite")
        self.tracker.last_eval = evaluation
        accuracy = evaluation["test_accuracy"]
        best = self.tracker.best_test_accuracy
        if best is None or accuracy > best:
            self.tracker.best_test_accuracy = accuracy
        record.update(test_loss=evaluation["test_loss"], test_accuracy=accuracy)
        if "test_loss_per_position" in evaluation:  # a language model: nats per character
            record["test_loss_per_position"] = evaluation["test_loss_per_position"]
        return None
