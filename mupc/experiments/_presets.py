"""Sweep presets: the published settings (spec §5) and quick versions for a 2-core machine.

Learning rates are given as published, activity rates in the **batch-mean** convention, and
converted to this library's per-example convention (`activity_lr_from_batch_mean`) when the
runs are built.
"""

import dataclasses
from typing import Any, Literal, get_args

from .. import _published as published
from .._inference import activity_lr_from_batch_mean
from ._config import Method as TrainingMethod, RunConfig
from ._sweep import SweepRun


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method of the depth sweep: its plot `label` and `RunConfig` fields
    (`activity_lr_batch_mean` is converted with the batch size)."""

    label: str
    method: TrainingMethod
    parameterisation: str
    lr: float
    activity_lr_batch_mean: float | None = None


# Standard PC's rates: best of a small grid measured here (mnist-sample, N = 128, 100 steps,
# weight lr {1e-2, 1e-3, 1e-4} x activity lr {0.5, 0.1, 0.05} batch-mean): (1e-3, 0.5) has
# the lowest training loss at H = 16 and the best test accuracy at H = 8 and 16; see
# docs/tutorials/sweeps.md (depth sweep). The published rates of μPC and BP are from spec §5.
METHODS: dict[str, Method] = {
    "pc": Method("PC", "pc", "sp", 1e-3, 0.5),
    "mupc": Method("μPC", "pc", "mupc", published.MUPC_WEIGHT_LR, published.ACTIVITY_LR_BATCH_MEAN),
    "bp": Method("BP", "bp", "mupc", published.BP_WEIGHT_LR),
}


@dataclasses.dataclass(frozen=True)
class DepthPreset:
    """Settings of `mupc sweep depth`."""

    dataset: str
    width: int
    depths: tuple[int, ...]
    seeds: int
    epochs: float | None
    steps: int | None
    batch_size: int = published.BATCH_SIZE
    methods: tuple[str, ...] = ("pc", "mupc", "bp")
    activation: str = "relu"


DEPTH_PRESETS = {
    # spec §5: N = 512, 1 epoch of MNIST, H in {8, ..., 128}, 3 seeds.
    "paper": DepthPreset("mnist", published.WIDTH, published.DEPTHS, published.SEEDS, 1.0, None),
    # A few minutes on 2 cores: 150 steps (2.4 epochs) of the 4,000 mnist-sample digits.
    "quick": DepthPreset("mnist-sample", 128, (8, 16, 32, 64), 2, None, 150),
}


Over = Literal["width", "depth"]
OVER: tuple[str, ...] = get_args(Over)


@dataclasses.dataclass(frozen=True)
class TransferPreset:
    """Settings of `mupc sweep transfer`: a (weight lr x activity lr) grid at every size."""

    dataset: str
    over: Over
    sizes: tuple[int, ...]
    width: int  # used when sweeping over depth
    depth: int  # used when sweeping over width
    weight_lrs: tuple[float, ...]
    activity_lrs: tuple[float, ...]  # batch-mean convention, as published
    seeds: int
    epochs: float | None
    steps: int | None
    batch_size: int = published.BATCH_SIZE


PUBLISHED_WEIGHT_LRS = published.TRANSFER_WEIGHT_LRS
PUBLISHED_ACTIVITY_LRS = published.TRANSFER_ACTIVITY_LRS

TRANSFER_PRESETS = {
    "paper": TransferPreset(
        "mnist", "width", published.TRANSFER_WIDTHS, published.WIDTH, published.TRANSFER_DEPTH,
        PUBLISHED_WEIGHT_LRS, PUBLISHED_ACTIVITY_LRS, published.SEEDS, 1.0, None,
    ),
    "paper-depth": TransferPreset(
        "mnist", "depth", published.TRANSFER_DEPTHS, published.WIDTH, published.TRANSFER_DEPTH,
        PUBLISHED_WEIGHT_LRS, PUBLISHED_ACTIVITY_LRS, published.SEEDS, 1.0, None,
    ),
    "quick": TransferPreset(
        "mnist-sample", "width", (32, 128, 512), 128, 8,
        PUBLISHED_WEIGHT_LRS, (1e2, 1e1, 1.0, 0.5, 0.1, 0.01), 1, None, 100,
    ),
}  # fmt: skip


def _fmt(value: float) -> str:
    return f"{value:g}"


def depth_runs(
    preset: DepthPreset, *, data_dir: str | None = None, **fields: Any
) -> list[SweepRun]:
    """The runs of a depth sweep: every method x depth x seed. `fields` override the
    `RunConfig` of every run (e.g. `eval_every`)."""
    runs = []
    for key in preset.methods:
        if key not in METHODS:
            raise ValueError(f"Unknown method {key!r}: expected some of {sorted(METHODS)}.")
        method = METHODS[key]
        activity = method.activity_lr_batch_mean
        if key == "mupc" and preset.activation in ("linear", "tanh"):
            activity = published.ACTIVITY_LR_BATCH_MEAN_LINEAR_TANH
        for depth in preset.depths:
            for seed in range(preset.seeds):
                length = preset.steps or 10**9
                config = RunConfig(
                    dataset=preset.dataset,
                    data_dir=data_dir,
                    depth=depth,
                    width=preset.width,
                    activation=preset.activation,
                    parameterisation=method.parameterisation,
                    method=method.method,
                    lr=method.lr,
                    activity_lr=activity_lr_from_batch_mean(
                        activity or published.ACTIVITY_LR_BATCH_MEAN, preset.batch_size
                    ),
                    batch_size=preset.batch_size,
                    epochs=preset.epochs,
                    steps=preset.steps,
                    seed=seed,
                    eval_every=min(length, 500),
                    checkpoint_every=50,
                )
                config = dataclasses.replace(config, **fields)
                labels = {
                    "method": method.label,
                    "depth": depth,
                    "width": preset.width,
                    "seed": seed,
                    "weight_lr": method.lr,
                    "activity_lr_batch_mean": activity if method.method == "pc" else None,
                }
                runs.append(SweepRun(f"{key}-H{depth}-s{seed}", config, labels))
    return runs


def transfer_runs(
    preset: TransferPreset,
    *,
    parameterisation: str = "mupc",
    activation: str = "relu",
    data_dir: str | None = None,
    **fields: Any,
) -> list[SweepRun]:
    """The runs of a transfer sweep: size x weight lr x activity lr x seed, μPC (or
    `parameterisation`) trained with PC, T = H."""
    if preset.over not in OVER:
        raise ValueError(f"`over` must be one of {list(OVER)}, got {preset.over!r}.")
    runs = []
    for size in preset.sizes:
        width, depth = (size, preset.depth) if preset.over == "width" else (preset.width, size)
        for weight_lr in preset.weight_lrs:
            for activity_lr in preset.activity_lrs:
                for seed in range(preset.seeds):
                    config = RunConfig(
                        dataset=preset.dataset,
                        data_dir=data_dir,
                        depth=depth,
                        width=width,
                        activation=activation,
                        parameterisation=parameterisation,
                        method="pc",
                        lr=weight_lr,
                        activity_lr=activity_lr_from_batch_mean(activity_lr, preset.batch_size),
                        batch_size=preset.batch_size,
                        epochs=preset.epochs,
                        steps=preset.steps,
                        seed=seed,
                        eval_every=min(preset.steps or 10**9, 500),
                        checkpoint_every=100,
                    )
                    config = dataclasses.replace(config, **fields)
                    labels = {
                        "size": size,
                        "width": width,
                        "depth": depth,
                        "weight_lr": weight_lr,
                        "activity_lr_batch_mean": activity_lr,
                        "seed": seed,
                    }
                    letter = "N" if preset.over == "width" else "H"
                    run_id = (
                        f"{parameterisation}-{activation}-{letter}{size}-w{_fmt(weight_lr)}"
                        f"-a{_fmt(activity_lr)}-s{seed}"
                    )
                    runs.append(SweepRun(run_id, config, labels))
    return runs
