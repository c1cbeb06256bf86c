"""Sweep presets: the published settings (docs/method.md, "Published settings") and quick
versions for a 2-core machine.

Learning rates are given as published, activity rates in the **batch-mean** convention, and
converted to this library's per-example convention (`activity_lr_from_batch_mean`) when the
runs are built.
"""

import dataclasses
from typing import Any, Literal, get_args

from .. import _published as published
from .._inference import activity_lr_from_batch_mean
from ._config import (
    EPC_ERROR_LR,
    EPC_WEIGHT_LR,
    InferenceKind,
    Method as TrainingMethod,
    NetworkKind,
    RunConfig,
)
from ._sweep import SweepRun


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method of the depth sweep: its plot `label` and `RunConfig` fields
    (`activity_lr_batch_mean` is converted with the batch size; ePC's `error_lr` is per
    example)."""

    label: str
    method: TrainingMethod
    parameterisation: str
    lr: float
    activity_lr_batch_mean: float | None = None
    inference: InferenceKind = "pc"
    error_lr: float | None = None


# Standard PC's rates: best of a small grid measured here (mnist-sample, N = 128, 100 steps,
# weight lr {1e-2, 1e-3, 1e-4} x activity lr {0.5, 0.1, 0.05} batch-mean): (1e-3, 0.5) has
# the lowest training loss at H = 16 and the best test accuracy at H = 8 and 16; see
# docs/tutorials/sweeps.md (depth sweep). The published rates of μPC and BP are on the method
# page ("Published settings").
METHODS: dict[str, Method] = {
    "pc": Method("PC", "pc", "sp", 1e-3, 0.5),
    "mupc": Method("μPC", "pc", "mupc", published.MUPC_WEIGHT_LR, published.ACTIVITY_LR_BATCH_MEAN),
    "bp": Method("BP", "bp", "mupc", published.BP_WEIGHT_LR),
    # ePC on the μPC network: rates chosen by this project (see EPC_WEIGHT_LR, EPC_ERROR_LR).
    "epc": Method("μPC + ePC", "pc", "mupc", EPC_WEIGHT_LR, inference="epc", error_lr=EPC_ERROR_LR),
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
    network: NetworkKind = "mlp"
    stages: int = 3
    train_examples: int | None = None
    # Per-method rates replacing `METHODS`' (tuned for the MLP): (method, weight lr, activity
    # lr per example (ePC: error step), or None for backprop).
    rates: tuple[tuple[str, float, float | None], ...] = ()
    # Further `RunConfig` fields of every run (e.g. the transformer's loss and context).
    fields: tuple[tuple[str, Any], ...] = ()


# The ViT presets' shared fields: 7 x 7 patches, d_head = 16, cross-entropy.
VIT_FIELDS: tuple[tuple[str, Any], ...] = (
    ("loss", "cross-entropy"), ("head_dim", 16), ("patch_size", 7),
)  # fmt: skip


DEPTH_PRESETS = {
    # As published (docs/method.md): N = 512, 1 epoch of MNIST, H in {8, ..., 128}, 3 seeds.
    "paper": DepthPreset("mnist", published.WIDTH, published.DEPTHS, published.SEEDS, 1.0, None),
    # A few minutes on 2 cores: 150 steps (2.4 epochs) of the 4,000 mnist-sample digits.
    "quick": DepthPreset("mnist-sample", 128, (8, 16, 32, 64), 2, None, 150),
    # The depth figure at full size on the full Fashion-MNIST (offline), N = 128, one epoch,
    # with ePC: hours on 2 cores.
    "fmnist": DepthPreset(
        "fashion-mnist", 128, published.DEPTHS, published.SEEDS, 1.0, None,
        methods=("pc", "mupc", "epc", "bp"),
    ),
    # Conv ResNets (depth = residual blocks per stage, width = channels of the first stage):
    # minutes on 2 cores on 4,096 Fashion-MNIST images ...
    "conv-quick": DepthPreset(
        "fashion-mnist", 8, (1, 2, 4), 1, None, 100, methods=("pc", "mupc", "epc", "bp"),
        network="conv", train_examples=4096,
    ),
    # ... the depth table of the docs (hours on 2 cores) ...
    "conv-fmnist": DepthPreset(
        "fashion-mnist", 8, (1, 2, 4, 8, 16), 1, None, 300,
        methods=("pc", "mupc", "epc", "bp"), network="conv",
    ),
    # The PC transformer: a ViT (7 x 7 patches, d = 64 in 4 heads of 16) on the full
    # Fashion-MNIST, 600 steps of batch 64 (0.64 epoch), 1-8 blocks, cross-entropy, one seed;
    # rates from short probes (docs/tutorials/transformer.md).
    "vit-fmnist": DepthPreset(
        "fashion-mnist", 64, (1, 2, 4, 8), 1, None, 600,
        methods=("pc", "mupc", "epc", "bp"), network="transformer",
        rates=(("pc", 0.001, 0.05), ("mupc", 0.01, 0.02), ("epc", 0.03, 0.001), ("bp", 0.01, None)),
        fields=VIT_FIELDS,
    ),
    # ... and a quick one (minutes on 2 cores): 4,096 images, 200 steps, 1-4 blocks.
    "vit-quick": DepthPreset(
        "fashion-mnist", 32, (1, 2, 4), 1, None, 200, methods=("pc", "mupc", "epc", "bp"),
        network="transformer", train_examples=4096,
        rates=(("pc", 0.001, 0.05), ("mupc", 0.01, 0.02), ("epc", 0.03, 0.001), ("bp", 0.01, None)),
        fields=VIT_FIELDS,
    ),
    # ... and a GPU-sized CIFAR-10 version (docs/method.md, "Convolutional ResNets": 16
    # channels doubling over 3 stages).
    "conv-paper": DepthPreset(
        "cifar10", 16, (1, 2, 4, 8, 16), published.SEEDS, 20.0, None,
        methods=("pc", "mupc", "epc", "bp"), network="conv",
    ),
}  # fmt: skip


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
    inference: InferenceKind = "pc"  # "epc": `activity_lrs` are ePC's error steps, per example
    network: NetworkKind = "mlp"
    inference_steps: int | None = None  # T (None: T = H for PC, ePC's default for ePC)
    # Further `RunConfig` fields of every run (e.g. the transformer's loss and context).
    fields: tuple[tuple[str, Any], ...] = ()


# ePC's grid: Adam weight rates around backprop's; error steps per example over four decades
# (one inference step: the state perturbation grows like the error step times the depth).
EPC_WEIGHT_LRS = (0.05, 0.01, 0.005, 0.001)
EPC_ERROR_LRS = (1.0, 0.1, 0.01, 0.001, 0.0001)
EPC_STEPS = 1
# The published activity grid without its largest rates (1e3, 5e2), which diverge at every size
# measured here (mnist-sample, one epoch).
TRIMMED_ACTIVITY_LRS = published.TRANSFER_ACTIVITY_LRS[2:]

# The transformer's grid: Adam rates around the best of short probes (0.01-0.1); ePC's error
# step at its default (near it, ePC's gradient is backprop's, so the weight rate decides).
TRANSFORMER_WEIGHT_LRS = (0.1, 0.03, 0.01, 0.003)
TRANSFORMER_ERROR_LRS = (0.001,)

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
    # Depth transfer at N = 128 up to H = 128 on mnist-sample, one epoch (about an hour with 2
    # workers): the published grid without its two largest activity rates.
    "depth-sample": TransferPreset(
        "mnist-sample", "depth", published.TRANSFER_DEPTHS, 128, 8,
        PUBLISHED_WEIGHT_LRS, TRIMMED_ACTIVITY_LRS, 1, 1.0, None,
    ),
    # ePC's (weight lr x error lr) grid across widths (H = 8) and depths (N = 128).
    "epc-width": TransferPreset(
        "mnist-sample", "width", (32, 128, 512), 128, 8,
        EPC_WEIGHT_LRS, EPC_ERROR_LRS, 1, 1.0, None, inference="epc", inference_steps=EPC_STEPS,
    ),
    "epc-depth": TransferPreset(
        "mnist-sample", "depth", (8, 32, 128), 128, 8,
        EPC_WEIGHT_LRS, EPC_ERROR_LRS, 1, 1.0, None, inference="epc", inference_steps=EPC_STEPS,
    ),
    # μPC + ePC on the ViT (Fashion-MNIST, 8,192 images, 300 steps): across width d = 32-128
    # (heads of 16, 2 blocks) and depth 1-8 blocks (d = 64).
    "vit-epc-width": TransferPreset(
        "fashion-mnist", "width", (32, 64, 128), 64, 2, TRANSFORMER_WEIGHT_LRS,
        TRANSFORMER_ERROR_LRS, 1, None, 300, inference="epc", inference_steps=EPC_STEPS,
        network="transformer", fields=(*VIT_FIELDS, ("train_examples", 8192)),
    ),
    "vit-epc-depth": TransferPreset(
        "fashion-mnist", "depth", (1, 2, 4, 8), 64, 2, TRANSFORMER_WEIGHT_LRS,
        TRANSFORMER_ERROR_LRS, 1, None, 300, inference="epc", inference_steps=EPC_STEPS,
        network="transformer", fields=(*VIT_FIELDS, ("train_examples", 8192)),
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
        activity_lr: float
        weight_lr = method.lr
        if method.inference == "epc":
            activity_lr = method.error_lr or EPC_ERROR_LR
        else:
            activity_lr = activity_lr_from_batch_mean(
                activity or published.ACTIVITY_LR_BATCH_MEAN, preset.batch_size
            )
        tuned = {name: (lr, rate) for name, lr, rate in preset.rates}.get(key)
        if tuned is not None:
            weight_lr = tuned[0]
            activity_lr = activity_lr if tuned[1] is None else tuned[1]
            activity = None  # the rates are per example here, not the published batch mean
        for depth in preset.depths:
            for seed in range(preset.seeds):
                length = preset.steps or 10**9
                config = RunConfig(
                    dataset=preset.dataset,
                    data_dir=data_dir,
                    network=preset.network,
                    depth=depth,
                    width=preset.width,
                    stages=preset.stages,
                    train_examples=preset.train_examples,
                    activation=preset.activation,
                    parameterisation=method.parameterisation,
                    method=method.method,
                    lr=weight_lr,
                    inference=method.inference,
                    activity_lr=activity_lr,
                    batch_size=preset.batch_size,
                    epochs=preset.epochs,
                    steps=preset.steps,
                    seed=seed,
                    eval_every=min(length, 500),
                    checkpoint_every=50,
                    **dict(preset.fields),
                )
                config = dataclasses.replace(config, **fields)
                pc_activities = method.method == "pc" and method.inference == "pc"
                labels = {
                    "method": method.label,
                    "depth": depth,
                    "width": preset.width,
                    "seed": seed,
                    "weight_lr": weight_lr,
                    "activity_lr_batch_mean": activity if pc_activities else None,
                    "error_lr": activity_lr if method.inference == "epc" else None,
                }
                if tuned is not None:
                    labels["activity_lr"] = activity_lr if pc_activities else None
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
    `parameterisation`) trained with PC (T = H) or, for an ePC preset, with ePC (the
    activity rates are then its error steps, per example)."""
    if preset.over not in OVER:
        raise ValueError(f"`over` must be one of {list(OVER)}, got {preset.over!r}.")
    runs = []
    for size in preset.sizes:
        width, depth = (size, preset.depth) if preset.over == "width" else (preset.width, size)
        for weight_lr in preset.weight_lrs:
            for activity_lr in preset.activity_lrs:
                for seed in range(preset.seeds):
                    epc = preset.inference == "epc"
                    config = RunConfig(
                        dataset=preset.dataset,
                        data_dir=data_dir,
                        network=preset.network,
                        depth=depth,
                        width=width,
                        activation=activation,
                        parameterisation=parameterisation,
                        method="pc",
                        lr=weight_lr,
                        inference=preset.inference,
                        inference_steps=preset.inference_steps,
                        activity_lr=(
                            activity_lr
                            if epc
                            else activity_lr_from_batch_mean(activity_lr, preset.batch_size)
                        ),
                        batch_size=preset.batch_size,
                        epochs=preset.epochs,
                        steps=preset.steps,
                        seed=seed,
                        eval_every=min(preset.steps or 10**9, 500),
                        checkpoint_every=100,
                        **dict(preset.fields),
                    )
                    config = dataclasses.replace(config, **fields)
                    labels = {
                        "size": size,
                        "width": width,
                        "depth": depth,
                        "weight_lr": weight_lr,
                        "activity_lr_batch_mean": None if epc else activity_lr,
                        "error_lr": activity_lr if epc else None,
                        "seed": seed,
                    }
                    letter = "N" if preset.over == "width" else "H"
                    rate = f"e{_fmt(activity_lr)}" if epc else f"a{_fmt(activity_lr)}"
                    kind = "epc-" if epc else ""
                    run_id = (
                        f"{kind}{parameterisation}-{activation}-{letter}{size}-w{_fmt(weight_lr)}"
                        f"-{rate}-s{seed}"
                    )
                    runs.append(SweepRun(run_id, config, labels))
    return runs
