"""The `mupc` command line: `mupc <command> ...`.

Each command lives in its own module under `mupc._commands` and exposes
`register(subparsers)`, which adds its parser and sets `run=<function(args) -> int>`.
"""

import argparse
import importlib
import os
import sys

# One line per command module; each module defines `register(subparsers)`.
_COMMAND_MODULES = [
    "mupc._commands.info",
    "mupc._commands.diagnose",
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


def _simulate_cpu_devices(count: int) -> None:
    """Let `--devices K` use K CPU cores: ask XLA for K host devices, unless the user chose a
    number already. Effective only before JAX starts its backends (a fresh `mupc` process);
    GPU and TPU backends are unaffected."""
    flags = os.environ.get("XLA_FLAGS", "")
    if count > 1 and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def main(argv: list[str] | None = None) -> int:
    """Run the `mupc` command line on `argv` (default: `sys.argv[1:]`) in this process."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        print(f"mupc {args.command}: error: {error}", file=sys.stderr)
        return 2


def console_main() -> int:
    """Entry point of the `mupc` executable: a fresh process, so `--devices K` can still ask
    XLA for K CPU host devices before JAX starts (K / P with `--num-processes P`)."""
    args, _ = build_parser().parse_known_args()
    # `--devices K` counts the devices of all `--num-processes P` processes: K / P each.
    devices = getattr(args, "devices", None) or 1
    _simulate_cpu_devices(max(1, devices // (getattr(args, "num_processes", None) or 1)))
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
