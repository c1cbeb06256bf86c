"""`mupc sweep depth|transfer`: the published experiments as resumable parallel sweeps.

This module only parses arguments; choices come from the registries (through
`mupc.experiments._config`) and the presets, the work is `mupc.experiments.run_sweep`.
"""

import argparse
import dataclasses
import sys
from pathlib import Path

from .._atomic import write_text_atomic
from ..experiments import _config
from ..experiments._presets import DEPTH_PRESETS, METHODS, OVER, TRANSFER_PRESETS
from ..experiments._sweep import BACKENDS
from ._arguments import (
    positive_float as _positive_float,
    positive_int as _positive_int,
    threshold as _threshold,
)


def _common(parser, presets: tuple[str, ...]) -> None:
    parser.add_argument(
        "--preset",
        default="quick",
        choices=presets,
        help="settings to start from (quick: minutes on 2 cores; paper: the published settings "
        "of docs/method.md)",
    )
    parser.add_argument("--out", help="output folder (default runs/<kind>-<preset>)")
    parser.add_argument(
        "--workers",
        type=_positive_int,
        help="parallel processes, one run each (default: number of cores)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local: a process pool (default); ray: one Ray task per run (pip install 'mupc[ray]')",
    )
    parser.add_argument(
        "--address",
        help="with --backend ray: an existing Ray cluster, HOST:PORT or 'auto' (default: start "
        "a local Ray instance); the --out folder must be shared by every node",
    )
    parser.add_argument("--dataset", choices=_config.DATASETS, help="override the preset's dataset")
    parser.add_argument("--data-dir", help="where dataset files are looked for")
    parser.add_argument("--seeds", type=_positive_int, help="number of seeds (0, 1, ...)")
    parser.add_argument("--activation", choices=_config.ACTIVATION_NAMES, default="relu")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=_positive_int, help="training steps per run")
    length.add_argument("--epochs", type=_positive_float, help="epochs per run")
    parser.add_argument("--batch-size", type=_positive_int)
    parser.add_argument(
        "--train-examples",
        type=_positive_int,
        help="use only the first n training examples (overrides the preset)",
    )
    parser.add_argument(
        "--divergence-threshold",
        type=_threshold,
        default=_config.DIVERGENCE_THRESHOLD,
        help="a run diverged once its loss or energy exceeds this multiple of its first value "
        f"(default {_config.DIVERGENCE_THRESHOLD:g}; 'none': only when no longer finite)",
    )


def _overrides(args, preset):
    changes = {}
    for name in ("dataset", "seeds", "batch_size", "train_examples"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.steps is not None:
        changes.update(steps=args.steps, epochs=None)
    if args.epochs is not None:
        changes.update(epochs=args.epochs, steps=None)
    return dataclasses.replace(preset, **changes)


def _placed(runs: list) -> list:
    """Every run on `$MUPC_DEVICES` devices, by default ``auto``: a worker with several cores
    to itself (one host device each) measures one device against them; a worker with one core
    has one device."""
    from .train import requested_devices

    devices = requested_devices(argparse.Namespace())
    return [
        dataclasses.replace(run, config=dataclasses.replace(run.config, devices=devices))
        for run in runs
    ]


def _backend(args) -> dict:
    return {"backend": args.backend, "address": args.address}


def _check_preset(name: str, presets: dict) -> None:
    if name not in presets:
        raise ValueError(f"Unknown --preset {name!r}: expected one of {sorted(presets)}.")


def _run_depth(args) -> int:
    from ..experiments._figures import depth_figure, depth_table
    from ..experiments._presets import depth_runs
    from ..experiments._sweep import run_sweep

    _check_preset(args.preset, DEPTH_PRESETS)
    preset = _overrides(args, DEPTH_PRESETS[args.preset])
    changes = {"activation": args.activation}
    for name in ("width", "depths", "methods", "network", "stages"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = tuple(value) if name in ("depths", "methods") else value
    preset = dataclasses.replace(preset, **changes)
    out = Path(args.out or f"runs/depth-{args.preset}-{args.activation}")
    runs = _placed(
        depth_runs(preset, data_dir=args.data_dir, divergence_threshold=args.divergence_threshold)
    )
    try:
        results = run_sweep(
            runs, out, kind="depth", workers=args.workers, argv=sys.argv, **_backend(args)
        )
    except RuntimeError as error:
        print(f"mupc sweep depth: {error}", file=sys.stderr)
        return 1
    network = preset.network
    depth_name, width_name = {
        "conv": ("residual blocks per stage", "conv c"),
        "transformer": ("transformer blocks", "transformer d"),
    }.get(network, ("hidden layers H", "N"))
    figure = depth_figure(
        results,
        out / "depth.png",
        depth_name=depth_name,
        title=f"{preset.dataset}"
        + (f" ({preset.train_examples} examples)" if preset.train_examples else "")
        + f", {width_name} = {preset.width}"
        + f", {preset.activation}, "
        + (f"{preset.steps} steps" if preset.steps else f"{preset.epochs:g} epoch(s)")
        + f", {preset.seeds} seed(s)",
    )
    print(depth_table(results))
    print(f"wrote {out / 'results.csv'} and {figure}")
    return 0


def _run_transfer(args) -> int:
    from ..experiments._figures import transfer_figure, transfer_report
    from ..experiments._presets import transfer_runs
    from ..experiments._sweep import run_sweep

    _check_preset(args.preset, TRANSFER_PRESETS)
    preset = _overrides(args, TRANSFER_PRESETS[args.preset])
    changes = {}
    if args.over is not None:
        changes["over"] = args.over
    for name in ("sizes", "weight_lrs", "activity_lrs"):
        if getattr(args, name) is not None:
            changes[name] = tuple(getattr(args, name))
    for name in ("width", "depth", "network"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    preset = dataclasses.replace(preset, **changes)
    out = Path(args.out or f"runs/transfer-{args.preset}-{args.param}-{args.activation}")
    runs = _placed(
        transfer_runs(
            preset,
            parameterisation=args.param,
            activation=args.activation,
            data_dir=args.data_dir,
            divergence_threshold=args.divergence_threshold,
        )
    )
    try:
        results = run_sweep(
            runs, out, kind="transfer", workers=args.workers, argv=sys.argv, **_backend(args)
        )
    except RuntimeError as error:
        print(f"mupc sweep transfer: {error}", file=sys.stderr)
        return 1
    transformer = preset.network == "transformer"
    depth_name, width_name = ("blocks", "d") if transformer else ("H", "N")
    size_name = width_name if preset.over == "width" else depth_name
    fixed = (
        f"{depth_name} = {preset.depth}"
        if preset.over == "width"
        else f"{width_name} = {preset.width}"
    )
    figure = transfer_figure(
        results,
        out / "transfer.png",
        size_name=size_name,
        title=f"{args.param}, {args.activation}, {preset.dataset}, {fixed}, "
        + (f"{preset.steps} steps" if preset.steps else f"{preset.epochs:g} epoch(s)"),
    )
    report = transfer_report(results, size_name)
    write_text_atomic(out / "transfer_report.txt", report + "\n")
    print(report)
    print(f"wrote {out / 'results.csv'}, {figure} and {out / 'transfer_report.txt'}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a published experiment: depth or transfer",
        description="Resumable parallel sweeps. Rerunning the same command after a crash "
        "finishes only the missing runs.",
    )  # fmt: skip
    kinds = parser.add_subparsers(dest="sweep", required=True, metavar="KIND")

    depth = kinds.add_parser(
        "depth", help="test accuracy vs depth for standard PC, μPC and BP",
        description="Test accuracy against the number of hidden layers H for standard PC, μPC "
        "and BP (Depth-μP) over seeds: results.csv and depth.png.",
    )  # fmt: skip
    _common(depth, tuple(DEPTH_PRESETS))
    depth.add_argument("--width", "-N", type=_positive_int,
                       help="width N (conv: channels of the first stage)")  # fmt: skip
    depth.add_argument("--depths", type=_positive_int, nargs="+",
                       help="hidden layers H (conv: residual blocks per stage)")  # fmt: skip
    depth.add_argument("--methods", nargs="+", choices=tuple(METHODS),
                       help="pc (standard PC), mupc, epc (μPC + ePC), bp (default: the "
                       "preset's)")  # fmt: skip
    depth.add_argument("--network", choices=_config.NETWORK_KINDS,
                       help="mlp or conv (default: the preset's)")  # fmt: skip
    depth.add_argument("--stages", type=_positive_int, help="conv: stages")
    depth.set_defaults(run=_run_depth)

    transfer = kinds.add_parser(
        "transfer", help="learning-rate transfer heatmaps across widths or depths",
        description="The (weight lr x activity lr) grid at every width or depth: results.csv, "
        "transfer.png (log10 min training loss per size) and a transfer report.",
    )  # fmt: skip
    _common(transfer, tuple(TRANSFER_PRESETS))
    transfer.add_argument("--over", choices=OVER, help="sweep widths or depths")
    transfer.add_argument("--sizes", type=_positive_int, nargs="+", help="widths or depths")
    transfer.add_argument("--width", "-N", type=_positive_int, help="fixed width (--over depth)")
    transfer.add_argument("--depth", "-H", type=_positive_int, help="fixed depth (--over width)")
    transfer.add_argument("--weight-lrs", type=_positive_float, nargs="+")
    transfer.add_argument(
        "--activity-lrs",
        type=_positive_float,
        nargs="+",
        help="activity lrs in the published batch-mean convention (ePC presets: error steps "
        "per example)",
    )
    transfer.add_argument("--param", choices=_config.PARAMETERISATION_NAMES, default="mupc")
    transfer.add_argument("--network", choices=_config.NETWORK_KINDS,
                          help="mlp or conv (default: the preset's; conv: widths are the first "
                          "stage's channels, depths the residual blocks per stage)")  # fmt: skip
    transfer.set_defaults(run=_run_transfer)
