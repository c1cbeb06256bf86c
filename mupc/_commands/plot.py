"""`mupc plot`: training curves of one or more runs from their `metrics.jsonl`, to a PNG."""

from pathlib import Path


def _run(args) -> int:
    from ..experiments._report import plot_runs

    out = args.out
    if out is None:
        out = Path(args.runs[0]) / "curves.png" if len(args.runs) == 1 else Path("curves.png")
    path = plot_runs(args.runs, out, labels=args.labels, panels=args.panels, title=args.title)
    print(f"wrote {path}")
    return 0


def register(subparsers) -> None:
    from ..experiments._report import PANELS

    parser = subparsers.add_parser(
        "plot",
        help="draw training curves of runs (loss, test accuracy, energies) to a PNG",
        description="Draw the training curves in RUN_DIR/metrics.jsonl against the step, one "
        "colour per run: training loss, test accuracy, the energy before and after inference, "
        "and per-layer energies when logged. A sweep folder stands for all its runs. "
        "Example: mupc plot runs/pc runs/mupc --labels PC μPC --out compare.png",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="a `mupc train --out` folder or a sweep folder")  # fmt: skip
    parser.add_argument("--out", help="the PNG to write (default: RUN_DIR/curves.png for one "
                        "folder, ./curves.png for several)")  # fmt: skip
    parser.add_argument("--labels", nargs="+", help="legend labels, one per run "
                        "(default: the folder names)")  # fmt: skip
    parser.add_argument("--panels", nargs="+", choices=PANELS, default=list(PANELS),
                        help="which panels to draw (default: all that have data)")  # fmt: skip
    parser.add_argument("--title", default="", help="a title over the panels")
    parser.set_defaults(run=_run)
