"""`mupc redraw depth|transfer|signal|curves CSV --out PNG`: redraw a figure from the CSV it was
drawn from (a sweep's `results.csv`, `mupc diagnose signal`'s `signal.csv`, or a curves CSV of
(method, step, value) rows), e.g. the CSVs kept in the repository's `results/` folder. This
module only parses arguments."""

import csv
from pathlib import Path


def _run_depth(args) -> int:
    from ..experiments._figures import depth_figure, depth_table
    from ..experiments._results import read_results

    results = read_results(args.csv, "depth")
    depth_figure(results, args.out, title=args.title or "", depth_name=args.depth_name)
    print(depth_table(results))
    print(f"wrote {args.out}")
    return 0


def _run_transfer(args) -> int:
    from ..experiments._figures import transfer_figure, transfer_report
    from ..experiments._results import read_results

    results = read_results(args.csv, "transfer")
    transfer_figure(results, args.out, size_name=args.size_name, title=args.title or "")
    print(transfer_report(results, args.size_name))
    print(f"wrote {args.out}")
    return 0


def _run_signal(args) -> int:
    from .._diagnostics.signal import SIGNAL_COLUMNS, plot_signal

    with open(args.csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = sorted(set(SIGNAL_COLUMNS) - set(rows[0] if rows else {}))
    if rows and missing:
        raise ValueError(f"{args.csv!r} is not a signal.csv: no column(s) {missing}.")
    if not rows:
        raise ValueError(f"{args.csv!r} holds no rows (only a header, or nothing).")
    numbers = ("layer", "pc_norm", "bp_norm", "ratio", "cosine")
    for row in rows:
        for name in numbers:
            row[name] = float(row[name]) if name != "layer" else int(row[name])
    plot_signal(rows, Path(args.out), args.title or "")
    print(f"wrote {args.out}")
    return 0


def _run_curves(args) -> int:
    from ..experiments._figures import CURVE_COLUMNS, curves_figure

    with open(args.csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{args.csv!r} holds no rows (only a header, or nothing).")
    missing = sorted(set(CURVE_COLUMNS) - set(rows[0]))
    if missing:
        raise ValueError(f"{args.csv!r} is not a curves CSV: no column(s) {missing}.")
    floors = []
    for text in args.floor or []:
        label, _, value = text.rpartition("=")
        try:
            floors.append((label, float(value)))
        except ValueError:
            raise ValueError(f"--floor {text!r}: expected LABEL=NUMBER.") from None
    curves_figure(rows, args.out, ylabel=args.ylabel, title=args.title or "", floors=floors)
    print(f"wrote {args.out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "redraw", help="redraw a figure from its CSV (e.g. the results/ folder)",
        description="Redraw a sweep's or a diagnostic's figure from the CSV it was drawn from, "
        "without rerunning anything.",
    )  # fmt: skip
    kinds = parser.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    depth = kinds.add_parser("depth", help="test accuracy against depth (mupc sweep depth)")
    transfer = kinds.add_parser("transfer", help="transfer heatmaps (mupc sweep transfer)")
    signal = kinds.add_parser("signal", help="learning signal per layer (mupc diagnose signal)")
    curves = kinds.add_parser("curves", help="a value against training steps, one line a method")
    for sub in (depth, transfer, signal, curves):
        sub.add_argument("csv", help="results.csv (depth, transfer) or signal.csv")
        sub.add_argument("--out", required=True, help="the PNG to write")
        sub.add_argument("--title", help="figure title")
    depth.add_argument(
        "--depth-name", default="hidden layers H",
        help="x-axis label (e.g. 'residual blocks per stage' for conv networks)",
    )  # fmt: skip
    transfer.add_argument(
        "--size-name", default="N", help="what the sizes are: N, H (the MLP), d, blocks, ..."
    )
    curves.add_argument("--ylabel", default="value", help="y-axis label")
    curves.add_argument(
        "--floor", action="append", metavar="LABEL=NUMBER",
        help="a horizontal reference line (repeatable), e.g. 'bigram floor=2.447'",
    )  # fmt: skip
    depth.set_defaults(run=_run_depth)
    transfer.set_defaults(run=_run_transfer)
    signal.set_defaults(run=_run_signal)
    curves.set_defaults(run=_run_curves)
