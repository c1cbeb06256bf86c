"""The common ground of the diagnostic experiments (`mupc diagnose hessian | coords | theory |
signal`, or `mupc.experiments.diagnose_*` from Python): the grid of networks, the synthetic
task, the trainer, CSV and PNG output.

Data are synthetic (no download): inputs $x \\sim \\mathcal{N}(0, I_D)$ and one-hot labels of
a random linear teacher, $y = \\text{onehot}(\\arg\\max_k (T x)_k)$. With `network="conv"`
(`hessian`, `coords`) the same inputs are reshaped to √D × √D × 1 images and each grid point
is the conv ResNet with `stages` stages, the width as the first stage's channels and the
depth as the residual blocks per stage (always with skips).

Every random draw comes from `key = jax.random.key(seed)`, so a run can be recomputed
independently (the tests do, with NumPy oracles): the network of every grid point from
`fold_in(key, 2)` (default float dtype), the trainer's state from `fold_in(key, 3)`, the probe
batch from `synthetic_task(fold_in(key, 1), D, C, size)` (`examples` rows for `hessian`,
`batch_size` rows for `coords` and `theory`) and training batch t = 0, 1, ... from
`synthetic_task(fold_in(key, 100 + t), D, C, batch_size)`; the trainer is Adam
(`weight_lr`) on the weights and T = H steps of gradient descent (`activity_lr`).
"""

import csv
import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from .. import _published as published
from .._activation import ACTIVATIONS
from .._atomic import atomic_open
from .._figures import pyplot as pyplot, save_figure as save_figure
from .._parameterisation import PARAMETERISATIONS

PARAMETERISATION_NAMES = tuple(PARAMETERISATIONS)
ACTIVATION_NAMES = tuple(ACTIVATIONS)
GridNetwork = Literal["mlp", "conv"]
Echo = Callable[[str], None]


def _positive(name: str, value, kind=int) -> None:
    ok = isinstance(value, kind) and not isinstance(value, bool) and value > 0
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and value > 0
    if not ok:
        expected = "a positive integer" if kind is int else "a positive finite number"
        raise ValueError(f"`{name}` must be {expected}, got {value!r}.")


def _non_negative(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")


def _choices(name: str, values: Sequence, allowed: Sequence) -> None:
    if isinstance(values, str) or not len(values):
        raise ValueError(f"`{name}` must be a non-empty sequence of {', '.join(allowed)}.")
    for value in values:
        if value not in allowed:
            raise ValueError(f"`{name}`: {value!r} is not one of {', '.join(allowed)}.")


@dataclasses.dataclass(frozen=True)
class DiagnosticGrid:
    """The grid of networks a diagnostic measures, and how they are trained.

    **Fields:** `widths` N and `depths` H (for `network="conv"`: channels of the first stage
    and residual blocks per stage), `params` (parameterisations), `activation`, `input_dim` D,
    `output_dim` C, `seed`, `weight_lr` (Adam), `activity_lr` (per-example step of the T = H
    gradient-descent inference steps), `batch_size`, `network` (`"mlp"` or `"conv"`, square D),
    `stages` (conv), `quiet` (no progress bars).

    **Raises:** `ValueError` naming the field for a value out of range.
    """

    widths: tuple[int, ...] = (16, 32, 64)
    depths: tuple[int, ...] = (4, 8, 16)
    params: tuple[str, ...] = ("sp", "mupc")
    activation: str = "linear"
    input_dim: int = 784
    output_dim: int = 10
    seed: int = 0
    weight_lr: float = published.MUPC_WEIGHT_LR
    activity_lr: float = published.ACTIVITY_LR
    batch_size: int = published.BATCH_SIZE
    network: GridNetwork = "mlp"
    stages: int = 2
    quiet: bool = False

    def __post_init__(self):
        for name in ("widths", "depths"):
            values = tuple(getattr(self, name))
            object.__setattr__(self, name, values)
            if not values:
                raise ValueError(f"`{name}` must hold at least one positive integer.")
            for value in values:
                _positive(name, value)
        object.__setattr__(self, "params", tuple(self.params))
        _choices("params", self.params, PARAMETERISATION_NAMES)
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(
                f"`activation` {self.activation!r} is not one of {', '.join(ACTIVATION_NAMES)}."
            )
        for name in ("input_dim", "output_dim", "batch_size", "stages"):
            _positive(name, getattr(self, name))
        _non_negative("seed", self.seed)
        _positive("weight_lr", self.weight_lr, float)
        _positive("activity_lr", self.activity_lr, float)
        if self.network not in ("mlp", "conv"):
            raise ValueError(f"`network` must be 'mlp' or 'conv', got {self.network!r}.")
        if self.network == "conv":
            image_side(self.input_dim)

    def points(self) -> list[tuple[str, int, int]]:
        """Every (parameterisation, width, depth) of the grid."""
        return [(p, n, h) for p in self.params for n in self.widths for h in self.depths]


def synthetic_task(key, input_dim: int, output_dim: int, batch_size: int, dtype=None):
    """A batch `(inputs, targets)`: Gaussian inputs, one-hot labels of a fixed random linear
    teacher (the teacher depends only on the dimensions, the batch on `key`).

    **Returns:** inputs of shape (batch_size, input_dim) and one-hot targets of shape
    (batch_size, output_dim).
    """
    import jax
    import jax.numpy as jnp

    teacher = jax.random.normal(jax.random.key(12345), (output_dim, input_dim))
    inputs = jax.random.normal(key, (batch_size, input_dim))
    labels = jnp.argmax(inputs @ teacher.T, axis=-1)
    targets = jax.nn.one_hot(labels, output_dim)
    if dtype is not None:
        inputs, targets = inputs.astype(dtype), targets.astype(dtype)
    return inputs, targets


def image_side(input_dim: int) -> int:
    """For `network="conv"`: the side of the square one-channel images that `input_dim` D
    pixels make.

    **Raises:** `ValueError` if D is not a square.
    """
    side = math.isqrt(input_dim)
    if side * side != input_dim:
        raise ValueError(
            f"--network conv needs --input-dim to be a square number of pixels (side × side "
            f"images), got {input_dim}."
        )
    return side


def shaped(grid: DiagnosticGrid, task):
    """A synthetic `(inputs, targets)` batch with the inputs as (B, side, side, 1) images for
    `network="conv"` (the same numbers, reshaped), else unchanged."""
    inputs, targets = task
    if grid.network == "conv":
        side = image_side(grid.input_dim)
        inputs = inputs.reshape(inputs.shape[0], side, side, 1)
    return inputs, targets


def grid_batch(grid: DiagnosticGrid, key, index: int, size: int | None = None):
    """The synthetic batch number `index` of the run seeded by `key` (`size` rows, default
    `batch_size`), shaped for the grid's network."""
    import jax

    rows = grid.batch_size if size is None else size
    task = synthetic_task(jax.random.fold_in(key, index), grid.input_dim, grid.output_dim, rows)
    return shaped(grid, task)


def grid_trainer(grid: DiagnosticGrid):
    """The trainer of the diagnostics: Adam on the weights, T = H steps of gradient descent
    on the activities."""
    import optax

    from .._inference import DiscreteInference
    from .._training import PCTrainer

    return PCTrainer(
        optimiser=optax.adam(grid.weight_lr),
        inference=DiscreteInference.gradient_descent(grid.activity_lr),
    )


def grid_network(grid: DiagnosticGrid, param: str, width: int, depth: int, skips: bool, key):
    """The network of one grid point: the residual MLP, or with `network="conv"` the conv
    ResNet with `stages` stages of `depth` blocks, `width` channels in the first stage (the
    conv network always has skips)."""
    from .._network import NetworkConfig, ResNet
    from ._config import RunConfig

    if grid.network == "conv":
        conv = RunConfig(
            network="conv", depth=depth, width=width, stages=grid.stages,
            activation=grid.activation, parameterisation=param,
        )  # fmt: skip
        side = image_side(grid.input_dim)
        return conv.build_network((side, side, 1), grid.output_dim, key=key, dtype=None)
    config = NetworkConfig(
        grid.input_dim, width, depth, grid.output_dim, grid.activation, param, skips
    )
    return ResNet(config, key=key)


def progress(iterable, grid: DiagnosticGrid, desc: str):
    """`iterable` with a progress bar on stderr (none when `grid.quiet`)."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, disable=grid.quiet, leave=False)


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write `rows` (dicts) with a header of `columns`, atomically."""
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def log_ticks(axis, values) -> None:
    """Label a log axis with the measured values themselves."""
    from matplotlib.ticker import NullFormatter

    axis.set_ticks(sorted(set(values)), [str(v) for v in sorted(set(values))])
    axis.set_minor_formatter(NullFormatter())


def finite(value: float) -> float:
    """`value`, or NaN when it is infinite (CSV cells are numbers or NaN)."""
    return value if math.isfinite(value) else float("nan")


def mean_by(rows, keys, value, where=None) -> dict[tuple, float]:
    """The mean of column `value` over the rows of each group of equal `keys` (only the rows
    for which `where(row)` holds, when given)."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        if where is not None and not where(row):
            continue
        groups.setdefault(tuple(row[k] for k in keys), []).append(float(row[value]))
    return {k: sum(v) / len(v) for k, v in groups.items()}


def summary_lines(rows, keys, value) -> list[str]:
    """One line per group of equal `keys`: the keys and the mean of `value`."""
    return [
        " ".join(f"{name}={x}" for name, x in zip(keys, k, strict=True)) + f" {value}={v:.4g}"
        for k, v in sorted(mean_by(rows, keys, value).items(), key=str)
    ]


def fields_from(cls, namespace: Any) -> dict:
    """The fields of the dataclass `cls` that the argparse `namespace` holds (lists as
    tuples): what the command line passes to the experiments."""
    values = {}
    for field in dataclasses.fields(cls):
        if hasattr(namespace, field.name):
            value = getattr(namespace, field.name)
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return values
