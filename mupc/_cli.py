"""The `mupc` command line: `mupc <command> ...`.

Each command lives in its own module under `mupc._commands` and exposes
`register(subparsers)`, which adds its parser and sets `run=<function(args) -> int>`.
"""

import argparse
import importlib
import sys

# One line per command module; each module defines `register(subparsers)`.
_COMMAND_MODULES = [
    "mupc._commands.info",
    "mupc._commands.train",
    "mupc._commands.sweep",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mupc", description="Train and inspect very deep predictive coding networks (μPC)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mupc` executable."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        print(f"mupc {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
