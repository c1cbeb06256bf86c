"""`mupc train`: train one network from the command line (every core option is a flag).

This module only parses arguments: the choices come from the library's registries (through
`mupc.experiments._config`), the defaults from `mupc._published`, and the work is
`mupc.experiments.run_experiment`.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Literal

from .. import _published as published
from ..experiments import _config
from ._arguments import (
    non_negative_int,
    positive_float,
    positive_float_or_none,
    positive_int,
    threshold,
)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `mupc train` and the sweeps: data, network, trainer, length."""
    defaults = _config.RunConfig()
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=_config.DATASETS,
        default=defaults.dataset,
        help="dataset (default: mnist-sample, 4,000 + 1,000 real MNIST digits, offline); the "
        f"text corpora {', '.join(_config.CORPORA)} train a character language model "
        "(--network transformer)",
    )
    data.add_argument("--data-dir", help="where dataset files are looked for and downloaded")
    data.add_argument(
        "--train-examples",
        type=positive_int,
        help="use only the first n training examples (default: all)",
    )
    net = parser.add_argument_group("network")
    net.add_argument(
        "--network",
        choices=_config.NETWORK_KINDS,
        default=defaults.network,
        help="mlp: the residual MLP (default); conv: the conv ResNet on images; transformer: a "
        "ViT on images, a causal language model on a text corpus (docs/method.md)",
    )
    net.add_argument(
        "--depth",
        "-H",
        type=positive_int,
        help=f"hidden layers H (default {_config.DEFAULT_SIZE['mlp'][0]}); conv: residual blocks "
        f"per stage (default {_config.DEFAULT_SIZE['conv'][0]}); transformer: blocks "
        f"(default {_config.DEFAULT_SIZE['transformer'][0]})",
    )
    net.add_argument(
        "--width",
        "-N",
        type=positive_int,
        help=f"width N (default {_config.DEFAULT_SIZE['mlp'][1]}); conv: channels of the first "
        f"stage, doubling at each stage (default {_config.DEFAULT_SIZE['conv'][1]}); transformer: "
        f"the width d, in heads of --head-dim (default {_config.DEFAULT_SIZE['transformer'][1]})",
    )
    net.add_argument(
        "--stages",
        type=positive_int,
        help=f"conv: stages, 2×2 average pooling between them (default {defaults.stages})",
    )
    net.add_argument(
        "--head-dim",
        type=positive_int,
        help=f"transformer: d_head (default {defaults.head_dim}); --width / --head-dim heads",
    )
    net.add_argument(
        "--context",
        type=positive_int,
        help=f"transformer on text: the context T in characters (default {defaults.context})",
    )
    net.add_argument(
        "--patch-size",
        type=positive_int,
        help=f"transformer on images: the patch side (default {defaults.patch_size})",
    )
    net.add_argument(
        "--pc-layers",
        dest="activity",
        choices=_config.ACTIVITY_KINDS,
        help="transformer: one PC layer per attention and MLP sub-layer (sublayer, default) or "
        "per block",
    )
    net.add_argument("--activation", choices=_config.ACTIVATION_NAMES, default=defaults.activation)
    net.add_argument(
        "--param",
        dest="parameterisation",
        choices=_config.PARAMETERISATION_NAMES,
        default=defaults.parameterisation,
        help="parameterisation: sp (standard PC), mupc, ntp",
    )
    net.add_argument(
        "--no-skips",
        dest="skips",
        action="store_const",
        const=False,
        help="remove the identity skip connections (MLP)",
    )
    net.add_argument("--float64", action="store_true", help="train in double precision")
    train = parser.add_argument_group("training")
    train.add_argument(
        "--method",
        choices=_config.METHODS,
        default=defaults.method,
        help="pc (predictive coding) or bp (backprop on the same network)",
    )
    train.add_argument(
        "--optimizer",
        choices=_config.OPTIMISER_NAMES,
        default=defaults.optimizer,
        help=f"weight optimiser (default {defaults.optimizer})",
    )
    train.add_argument(
        "--lr",
        type=positive_float,
        help=f"weight learning rate (default {published.MUPC_WEIGHT_LR:g} for pc, "
        f"{published.BP_WEIGHT_LR:g} for bp)",
    )
    train.add_argument(
        "--inference",
        choices=_config.INFERENCE_KINDS,
        help="pc: inference on the activities (default); epc: error-optimised inference on the "
        "prediction errors (ePC); epc-then-pc: learning at PC's equilibrium, ePC's warm start "
        "then the activities refined (see the refine flags)",
    )
    train.add_argument(
        "--weight-gradient",
        choices=_config.WEIGHT_GRADIENTS,
        help="ePC's weight update: local (the PC gradient at the final states, default) or "
        "reparameterised (through the forward pass; backprop at ε = 0)",
    )
    train.add_argument(
        "--train-top",
        dest="trainable_top",
        type=non_negative_int,
        help="train only the top k hidden layers and the readout (MLP; the control of "
        'docs/method.md, "The learning signal")',
    )
    train.add_argument(
        "--activity-optimizer",
        choices=_config.OPTIMISER_NAMES,
        help="inference optimiser on the activities (or, for ePC, the errors) "
        f"(default {defaults.activity_optimizer})",
    )
    rate = train.add_mutually_exclusive_group()
    rate.add_argument(
        "--activity-lr",
        type=positive_float,
        help="activity step PER EXAMPLE (this library's convention); for ePC the step on the "
        f"errors (default {_config.EPC_ERROR_LR:g})",
    )
    rate.add_argument(
        "--activity-lr-batch-mean",
        type=positive_float,
        help="activity step in the published batch-mean convention; divided by the batch size "
        f"(default {published.ACTIVITY_LR_BATCH_MEAN:g}, i.e. {published.ACTIVITY_LR:g} per "
        f"example at batch {published.BATCH_SIZE})",
    )
    train.add_argument(
        "--inference-steps",
        "-T",
        type=non_negative_int,
        help="inference steps T (default T = H; ePC: 1; epc-then-pc: the warm start's "
        f"{_config.EQUILIBRIUM_WARM_STEPS} ePC steps)",
    )
    train.add_argument(
        "--loss",
        choices=_config.LOSS_NAMES,
        help="the output energy (default: mse; cross-entropy on a text corpus)",
    )
    train.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive_float, help="epochs (default 1)")
    length.add_argument("--steps", type=positive_int, help="training steps (instead of epochs)")
    train.add_argument(
        "--seed", type=non_negative_int, default=defaults.seed, help="weights and data order"
    )
    train.add_argument(
        "--eval-every",
        type=positive_int,
        default=defaults.eval_every,
        help="evaluate on the test set every this many steps (and at the end)",
    )
    train.add_argument(
        "--log-every",
        type=positive_int,
        default=defaults.log_every,
        help="write a metrics line every this many steps",
    )
    train.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=defaults.checkpoint_every,
        help="save a checkpoint every this many steps (and at the end)",
    )
    train.add_argument(
        "--divergence-threshold",
        type=threshold,
        default=defaults.divergence_threshold,
        help="stop as diverged when the training loss or the energy exceeds this multiple of "
        f"its first value (default {_config.DIVERGENCE_THRESHOLD:g}; 'none': only when it is "
        "no longer finite)",
    )
    add_equilibrium_arguments(parser)


def add_equilibrium_arguments(parser: argparse.ArgumentParser) -> None:
    """The refine phase of `--inference epc-then-pc` (learning at PC's equilibrium)."""
    group = parser.add_argument_group(
        "learning at PC's equilibrium (--inference epc-then-pc): ePC's warm start (-T steps of "
        f"--activity-lr on the errors, default {_config.EQUILIBRIUM_WARM_STEPS} of "
        f"{_config.EQUILIBRIUM_WARM_LR:g}), then gradient descent on the activities; the weights "
        f"(default Adam {_config.EQUILIBRIUM_WEIGHT_LR:g}) step at the refined activities "
        "(docs/tutorials/epc.md)"
    )
    group.add_argument(
        "--refine-steps",
        type=non_negative_int,
        metavar="R",
        default=argparse.SUPPRESS,
        help=f"at most R activity steps after the warm start (default {_config.REFINE_STEPS})",
    )
    group.add_argument(
        "--refine-lr",
        type=positive_float,
        default=argparse.SUPPRESS,
        help=f"the activity step per example (default {_config.REFINE_LR:g})",
    )
    group.add_argument(
        "--refine-tolerance",
        type=positive_float_or_none,
        metavar="TOL",
        default=argparse.SUPPRESS,
        help="stop once every example's activity-gradient norm is below TOL (default "
        f"{_config.REFINE_TOLERANCE:g}; 'none': always R steps)",
    )


# Flags of the refine phase of `--inference epc-then-pc`.
_REFINE_ONLY = {
    "refine_steps": "--refine-steps", "refine_lr": "--refine-lr",
    "refine_tolerance": "--refine-tolerance",
}  # fmt: skip


def _refine_settings(args: argparse.Namespace) -> dict:
    """The `RunConfig` refine fields given on the command line (absent ones keep their
    defaults; the flags' argparse default is SUPPRESS, so given means present).

    **Raises:** `ValueError` for a refine flag without `--method pc --inference epc-then-pc`."""
    given = {name: getattr(args, name) for name in _REFINE_ONLY if hasattr(args, name)}
    if given and (args.method != "pc" or args.inference != "epc-then-pc"):
        flag = _REFINE_ONLY[next(iter(given))]
        raise ValueError(f"{flag} refines PC's equilibrium: add --inference epc-then-pc.")
    return given


# Flags that only apply to predictive coding (inference on the activities or errors).
_PC_ONLY = {
    "inference": "--inference", "weight_gradient": "--weight-gradient",
    "activity_optimizer": "--activity-optimizer", "activity_lr": "--activity-lr",
    "activity_lr_batch_mean": "--activity-lr-batch-mean", "inference_steps": "--inference-steps",
}  # fmt: skip


# Flags that only apply to the transformer.
_TRANSFORMER_ONLY = {
    "head_dim": "--head-dim", "context": "--context", "patch_size": "--patch-size",
    "activity": "--pc-layers",
}  # fmt: skip


def check_flags_apply(args: argparse.Namespace) -> None:
    """**Raises:** `ValueError` naming a flag given on the command line that does not apply to
    the chosen method or network (it would otherwise be ignored without a word)."""
    given = {name for name in vars(args) if getattr(args, name) is not None}
    if args.method == "bp":
        flags = [flag for name, flag in _PC_ONLY.items() if name in given]
        if flags:
            raise ValueError(
                f"{', '.join(flags)} only appl{'y' if len(flags) > 1 else 'ies'} to --method pc "
                "(inference); backprop has no inference: drop it or use --method pc."
            )
        if getattr(args, "parallel", None) in ("layers", "both"):
            raise ValueError(
                f"--parallel {args.parallel} splits PC's inference over the layers; backprop "
                "(--method bp) runs data-parallel only: use --parallel data."
            )
    if "weight_gradient" in given and args.inference != "epc":
        raise ValueError("--weight-gradient chooses ePC's weight update: add --inference epc.")
    if args.network != "mlp" and "skips" in given:
        raise ValueError(f"--no-skips: the {args.network} network always has its skip connections.")
    if args.network != "conv" and "stages" in given:
        raise ValueError("--stages applies to --network conv only.")
    if args.network != "transformer":
        flags = [flag for name, flag in _TRANSFORMER_ONLY.items() if name in given]
        if flags:
            raise ValueError(f"{', '.join(flags)}: only for --network transformer.")


def config_from_args(args: argparse.Namespace):
    """The `RunConfig` the parsed flags describe (published activity lrs converted).

    **Raises:** `ValueError` for a flag that does not apply (`check_flags_apply`).
    """
    from .._inference import activity_lr_from_batch_mean

    check_flags_apply(args)
    defaults = _config.RunConfig()
    pc = args.method == "pc"
    epc = pc and args.inference == "epc"
    equilibrium = pc and args.inference == "epc-then-pc"
    refine = _refine_settings(args)
    if args.lr is not None:
        lr = args.lr
    elif epc:
        lr = _config.EPC_WEIGHT_LR
    elif equilibrium:
        lr = _config.EQUILIBRIUM_WEIGHT_LR
    else:
        lr = published.MUPC_WEIGHT_LR if pc else published.BP_WEIGHT_LR
    if args.activity_lr is not None:
        activity_lr = args.activity_lr
    elif epc and args.activity_lr_batch_mean is None:
        activity_lr = _config.EPC_ERROR_LR
    elif equilibrium and args.activity_lr_batch_mean is None:
        activity_lr = _config.EQUILIBRIUM_WARM_LR
    else:
        batch_mean = args.activity_lr_batch_mean or published.ACTIVITY_LR_BATCH_MEAN
        activity_lr = activity_lr_from_batch_mean(batch_mean, args.batch_size)
    epochs = None if args.steps is not None else (1.0 if args.epochs is None else args.epochs)
    return _config.RunConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        network=args.network,
        depth=args.depth,
        width=args.width,
        stages=defaults.stages if args.stages is None else args.stages,
        activation=args.activation,
        parameterisation=args.parameterisation,
        skips=args.skips is None,
        method=args.method,
        optimizer=args.optimizer,
        lr=lr,
        inference=args.inference or defaults.inference,
        activity_optimizer=args.activity_optimizer or defaults.activity_optimizer,
        activity_lr=activity_lr,
        inference_steps=args.inference_steps,
        weight_gradient=args.weight_gradient or defaults.weight_gradient,
        trainable_top=args.trainable_top,
        train_examples=args.train_examples,
        batch_size=args.batch_size,
        epochs=epochs,
        steps=args.steps,
        seed=args.seed,
        float64=args.float64,
        eval_every=args.eval_every,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        loss=args.loss or ("cross-entropy" if args.dataset in _config.CORPORA else "mse"),
        head_dim=args.head_dim or defaults.head_dim,
        context=args.context or defaults.context,
        patch_size=args.patch_size or defaults.patch_size,
        activity=args.activity or defaults.activity,
        devices=_devices(args),
        parallel=getattr(args, "parallel", None) or "data",
        divergence_threshold=args.divergence_threshold,
        **refine,
    )


def _stopped(error: KeyboardInterrupt, out: str | None):
    """The one-line `Interrupted` for a stopped run: what was kept, how to go on."""
    import signal

    import numpy as np

    from ..experiments._interrupt import Interrupted, as_interrupted

    signum = as_interrupted(error).signum
    name = signal.Signals(signum).name
    if out is None:
        return Interrupted(signum, f"stopped by {name}; nothing was saved (no --out)")
    try:
        with np.load(Path(out) / "checkpoint.npz") as stored:
            step = int(stored["step"])
    except (OSError, ValueError, KeyError):
        return Interrupted(
            signum, f"stopped by {name} before the first checkpoint; run the command again"
        )
    return Interrupted(
        signum,
        f"stopped by {name}; the checkpoint at step {step} is in {out}/: add --resume to the "
        "same command to continue from it",
    )


def _say_what_was_kept_if_stuck(out: str | None) -> None:
    """If a stop arrives during a computation the run cannot leave (a long compiled step),
    the process ends without it, saying which checkpoint was kept."""
    from ..experiments._interrupt import Interrupted, set_stuck_message

    def message(signum: int) -> str:
        stopped = _stopped(Interrupted(signum), out)
        return f"mupc train: {stopped} (the step in progress was abandoned, not saved)"

    set_stuck_message(message)


def _tracker(logdir: str | None, config):
    """The `--tensorboard DIR` tracker (None without the flag)."""
    if logdir is None:
        return None
    from ..experiments._tracking import TensorBoardTracker

    try:
        return TensorBoardTracker(logdir, config=config.to_dict())
    except ImportError as error:
        raise ValueError(str(error)) from None


def _distributed(args: argparse.Namespace) -> bool:
    """Whether the flags ask for several processes (`jax.distributed`)."""
    flags = ("coordinator", "num_processes", "process_id")
    return bool(getattr(args, "distributed", False)) or any(
        getattr(args, flag, None) is not None for flag in flags
    )


# The environment variable that sets `--devices`' default (`auto` when unset).
DEVICES_ENV = "MUPC_DEVICES"


def device_count(text: str) -> int | Literal["auto"]:
    """`--devices`: ``auto`` or an integer ≥ 1."""
    if text == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a positive integer, got {text!r}"
        ) from None


def requested_devices(args: argparse.Namespace) -> int | Literal["auto"]:
    """`--devices`, else ``$MUPC_DEVICES``, else ``"auto"``.

    **Raises:** `ValueError` naming ``MUPC_DEVICES`` when it is neither ``auto`` nor a
    positive integer.
    """
    devices = getattr(args, "devices", None)
    if devices is not None:
        return devices
    text = os.environ.get(DEVICES_ENV, "").strip() or "auto"
    try:
        return device_count(text)
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"${DEVICES_ENV}: {error}") from None


def _devices(args: argparse.Namespace) -> int | Literal["auto"]:
    """K: `--devices` (or ``$MUPC_DEVICES``), else every device of every process with
    `jax.distributed`, else ``"auto"`` (one device or one per core, measured:
    `mupc.experiments._placement`)."""
    given = getattr(args, "devices", None)
    if given is not None and given != "auto":
        return given
    if _distributed(args):  # not $MUPC_DEVICES: several processes use all their devices
        import jax

        return jax.device_count()
    return "auto" if given == "auto" else requested_devices(args)


def _run(args) -> int:
    from ..experiments import describe, run_experiment
    from ..experiments._interrupt import stop_behind

    if args.resume and not args.out:
        raise ValueError("--resume needs --out DIR, the folder of the run to continue.")
    if _distributed(args):
        from .._parallel import initialize

        initialize(args.coordinator, args.num_processes, args.process_id)
    config = config_from_args(args)
    _say_what_was_kept_if_stuck(args.out)
    tracker = _tracker(args.tensorboard, config)
    try:
        summary = run_experiment(
            config,
            args.out,
            resume=args.resume,
            progress=not args.quiet,
            provenance={"command": sys.argv},
            tracking=tracker,
        )
    except KeyboardInterrupt as error:
        raise _stopped(error, args.out) from None
    except Exception as error:
        # A stop that came out as another error (it landed inside a library's `except`) still
        # says which checkpoint was kept.
        stop = stop_behind(error)
        if stop is None:
            raise
        raise _stopped(stop, args.out) from None
    finally:
        if tracker is not None:
            tracker.close()
    print(describe(summary))
    if args.out:
        names = ("summary.json", "metrics.jsonl", "checkpoint.npz")
        kept = ", ".join(name for name in names if (Path(args.out) / name).exists())
        print(f"results in {args.out}/ ({kept})")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one network (μPC, standard PC or BP)",
        description="Train one residual network with predictive coding or backprop. "
        "Example: mupc train --dataset mnist --depth 128 --width 128 --out runs/h128",
    )
    add_network_arguments(parser)
    scale = parser.add_argument_group("devices")
    scale.add_argument(
        "--devices",
        type=device_count,
        metavar="K",
        help="train on K devices; on CPU mupc simulates K host devices (K / P per process). "
        "Default auto: on a CPU, one device or one per core, whichever a few timed steps "
        "find faster (cached per machine and network; docs/tutorials/parallel.md); with "
        "several processes, all of their devices. $MUPC_DEVICES sets the default",
    )
    scale.add_argument(
        "--parallel",
        choices=_config.PARALLEL_MODES,
        help="split the batch (data), the hidden layers (layers, PC only) or both over the "
        "K devices (default data); see docs/tutorials/parallel.md",
    )
    hosts = parser.add_argument_group(
        "several processes (jax.distributed; process 0 writes --out, which every process must "
        "be able to read to --resume)"
    )
    hosts.add_argument(
        "--distributed",
        action="store_true",
        help="join the processes of a SLURM or MPI job found in the environment",
    )
    hosts.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
    hosts.add_argument("--num-processes", type=positive_int, metavar="P", help="processes")
    hosts.add_argument("--process-id", type=int, metavar="I", help="this process, 0..P-1")
    output = parser.add_argument_group("output")
    output.add_argument("--out", help="folder for config.json, metrics.jsonl, checkpoints and "
                        "summary.json")  # fmt: skip
    output.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")  # fmt: skip
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    output.add_argument("--tensorboard", metavar="DIR", help="also write the metrics as "
                        "TensorBoard events to DIR (needs mupc[tensorboard])")  # fmt: skip
    parser.set_defaults(run=_run)
