"""`mupc train`: train one network from the command line (every core option is a flag)."""

import argparse
import sys

DATASETS = ("mnist", "fashion-mnist", "cifar10", "mnist-sample", "synthetic")
ACTIVATIONS = ("linear", "tanh", "relu", "gelu", "silu")
PARAMETERISATIONS = ("sp", "mupc", "ntp")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by `mupc train` and the sweeps: data, network, trainer, length."""
    from ..experiments._run import ACTIVITY_OPTIMIZERS, LOSSES, METHODS, WEIGHT_OPTIMIZERS

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=DATASETS,
        default="mnist-sample",
        help="dataset (default: mnist-sample, 4,000 + 1,000 real MNIST digits, offline)",
    )
    data.add_argument("--data-dir", help="where dataset files are looked for and downloaded")
    net = parser.add_argument_group("network")
    net.add_argument("--depth", "-H", type=_positive_int, default=8, help="hidden layers H")
    net.add_argument("--width", "-N", type=_positive_int, default=128, help="width N")
    net.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    net.add_argument(
        "--param",
        dest="parameterisation",
        choices=PARAMETERISATIONS,
        default="mupc",
        help="parameterisation: sp (standard PC), mupc, ntp",
    )
    net.add_argument(
        "--no-skips",
        dest="skips",
        action="store_false",
        help="remove the identity skip connections",
    )
    net.add_argument("--float64", action="store_true", help="train in double precision")
    train = parser.add_argument_group("training")
    train.add_argument(
        "--method",
        choices=METHODS,
        default="pc",
        help="pc (predictive coding) or bp (backprop on the same network)",
    )
    train.add_argument(
        "--optimizer",
        choices=WEIGHT_OPTIMIZERS,
        default="adam",
        help="weight optimiser (default adam)",
    )
    train.add_argument(
        "--lr", type=_positive_float, help="weight learning rate (default 0.1 for pc, 0.01 for bp)"
    )
    train.add_argument(
        "--activity-optimizer",
        choices=ACTIVITY_OPTIMIZERS,
        default="sgd",
        help="inference optimiser on the activities (default sgd)",
    )
    rate = train.add_mutually_exclusive_group()
    rate.add_argument(
        "--activity-lr",
        type=_positive_float,
        help="activity step PER EXAMPLE (this library's convention)",
    )
    rate.add_argument(
        "--activity-lr-batch-mean",
        type=_positive_float,
        help="activity step in the published batch-mean convention; divided by "
        "the batch size (default 0.5, i.e. 0.5/64 per example at batch 64)",
    )
    train.add_argument(
        "--inference-steps", "-T", type=int, help="inference steps T (default T = H)"
    )
    train.add_argument("--loss", choices=LOSSES, default="mse")
    train.add_argument("--batch-size", type=_positive_int, default=64)
    length = train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_float, help="epochs (default 1)")
    length.add_argument("--steps", type=_positive_int, help="training steps (instead of epochs)")
    train.add_argument("--seed", type=int, default=0, help="weights and data order")
    train.add_argument(
        "--eval-every",
        type=_positive_int,
        default=100,
        help="evaluate on the test set every this many steps (and at the end)",
    )
    train.add_argument(
        "--log-every",
        type=_positive_int,
        default=10,
        help="write a metrics line every this many steps",
    )
    train.add_argument("--checkpoint-every", type=_positive_int, default=100,
                       help="save a checkpoint every this many steps (and at the end)")  # fmt: skip


def config_from_args(args: argparse.Namespace):
    """The `RunConfig` the parsed flags describe (published activity lrs converted)."""
    from .._inference import activity_lr_from_batch_mean
    from ..experiments._run import RunConfig

    lr = args.lr if args.lr is not None else (0.1 if args.method == "pc" else 0.01)
    if args.activity_lr is not None:
        activity_lr = args.activity_lr
    else:
        batch_mean = 0.5 if args.activity_lr_batch_mean is None else args.activity_lr_batch_mean
        activity_lr = activity_lr_from_batch_mean(batch_mean, args.batch_size)
    epochs = None if args.steps is not None else (1.0 if args.epochs is None else args.epochs)
    return RunConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        depth=args.depth,
        width=args.width,
        activation=args.activation,
        parameterisation=args.parameterisation,
        skips=args.skips,
        method=args.method,
        optimizer=args.optimizer,
        lr=lr,
        activity_optimizer=args.activity_optimizer,
        activity_lr=activity_lr,
        inference_steps=args.inference_steps,
        batch_size=args.batch_size,
        epochs=epochs,
        steps=args.steps,
        seed=args.seed,
        float64=args.float64,
        eval_every=args.eval_every,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        loss=args.loss,
        devices=_devices(args),
        parallel=getattr(args, "parallel", "data"),
    )


def _distributed(args: argparse.Namespace) -> bool:
    """Whether the flags ask for several processes (`jax.distributed`)."""
    flags = ("coordinator", "num_processes", "process_id")
    return bool(getattr(args, "distributed", False)) or any(
        getattr(args, flag, None) is not None for flag in flags
    )


def _devices(args: argparse.Namespace) -> int:
    """K: `--devices`, else every device of every process with `jax.distributed`, else 1."""
    devices = getattr(args, "devices", None)
    if devices is not None:
        return devices
    if _distributed(args):
        import jax

        return jax.device_count()
    return 1


def _run(args) -> int:
    from ..experiments._run import describe, run_experiment

    if args.resume and not args.out:
        raise ValueError("--resume needs --out DIR, the folder of the run to continue.")
    if _distributed(args):
        from .._parallel import initialize

        initialize(args.coordinator, args.num_processes, args.process_id)
    config = config_from_args(args)
    summary = run_experiment(
        config,
        args.out,
        resume=args.resume,
        progress=not args.quiet,
        provenance={"command": sys.argv},
    )
    print(describe(summary))
    if args.out:
        print(f"results in {args.out}/ (summary.json, metrics.jsonl, checkpoint.npz)")
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
        type=_positive_int,
        help="train on K devices (default 1, or with several processes all of their devices); "
        "on CPU mupc simulates K host devices (K / P per process)",
    )
    scale.add_argument(
        "--parallel",
        choices=("data", "layers", "both"),
        default="data",
        help="split the batch (data), the hidden layers (layers, PC only) or both over the "
        "K devices (default data); see docs/parallel.md",
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
    hosts.add_argument("--num-processes", type=_positive_int, metavar="P", help="processes")
    hosts.add_argument("--process-id", type=int, metavar="I", help="this process, 0..P-1")
    output = parser.add_argument_group("output")
    output.add_argument("--out", help="folder for config.json, metrics.jsonl, checkpoints and "
                        "summary.json")  # fmt: skip
    output.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")  # fmt: skip
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run)
