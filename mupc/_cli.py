"""The `mupc` command line: `mupc <command> ...`.

Each command lives in its own module under `mupc._commands` and exposes
`register(subparsers)`, which adds its parser and sets `run=<function(args) -> int>`.

Exit status: 0 done; 1 a run of a sweep failed, or a file-system error (one line naming the
path and the problem: a full disk, a read-only folder, a file in the way, a failed download);
2 bad input (a usage error, settings that contradict a stored run, data that is missing or
corrupt); 130 stopped by SIGINT (Ctrl-C), 143 by SIGTERM (one line saying what was kept and
how to resume). Nothing prints a traceback for these.
"""

import argparse
import errno
import importlib
import os
import sys

# One line per command module; each module defines `register(subparsers)`.
_COMMAND_MODULES = [
    "mupc._commands.info",
    "mupc._commands.diagnose",
    "mupc._commands.train",
    "mupc._commands.sweep",
    "mupc._commands.plot",
    "mupc._commands.evaluate",
    "mupc._commands.generate",
    "mupc._commands.redraw",
    "mupc._commands.generative",
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


# What to do about an `OSError`, by errno.
_HINTS = {
    errno.ENOSPC: "free some space, then run the same command again (mupc train: with "
    "--resume) to continue from the last checkpoint",
    errno.EDQUOT: "free some space, then run the same command again to continue",
    errno.EROFS: "choose a writable --out",
    errno.EACCES: "choose another --out or change the folder's permissions",
    errno.EPERM: "choose another --out or change the folder's permissions",
    errno.ENOTDIR: "a file is in the way of a folder",
    errno.EEXIST: "a file is in the way of a folder",
}


def one_line(text: str) -> str:
    """`text` on one line (a library's message may span several)."""
    return " ".join(text.split())


def describe_os_error(error: OSError) -> str:
    """One line: the path, the problem, and what to do."""
    if error.filename is None:
        return one_line(str(error))
    problem = one_line(error.strerror or str(error))
    hint = _HINTS.get(error.errno) if error.errno is not None else None
    if hint and error.errno is not None and problem == os.strerror(error.errno):
        problem = f"{problem}; {hint}"  # the system's words only: our own messages say more
    return f"{error.filename}: {problem}"


# Set once a command has run (its messages printed): a stop after that says so.
COMMAND_ENDED = False


def run_command(command: str, run, *args) -> int:
    """`run(*args)` with the command line's error handling: one line on stderr and the exit
    status of the module docstring for interrupts, bad input and file-system errors."""
    global COMMAND_ENDED
    try:
        return _run_command(command, run, *args)
    finally:
        COMMAND_ENDED = True


def _run_command(command: str, run, *args) -> int:
    from .experiments._interrupt import Interrupted, stop_behind, stop_on_signals

    try:
        try:
            with stop_on_signals(on_stuck=lambda signum: f"{command}: {stuck_message(signum)}"):
                return int(run(*args) or 0)
        except Exception as error:
            stop = stop_behind(error)  # a stop that came out as another error
            if stop is None:
                raise
            raise Interrupted(stop.signum) from None
    except KeyboardInterrupt as error:
        stopped = stop_behind(error)
        assert stopped is not None
        print(f"{command}: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    except FileNotFoundError as error:
        print(f"{command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"{command}: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 1


def stuck_message(signum: int) -> str:
    """What a command says when a signal ends it during a computation that it could not leave
    (the default; `mupc train` says which checkpoint was kept)."""
    import signal

    name = signal.Signals(signum).name
    return f"stopped by {name} during a computation, ended without waiting for it"


def main(argv: list[str] | None = None) -> int:
    """Run the `mupc` command line on `argv` (default: `sys.argv[1:]`) in this process."""
    args = build_parser().parse_args(argv)
    return run_command(f"mupc {args.command}", args.run, args)


def host_devices(args: argparse.Namespace) -> int:
    """The CPU host devices a command's process asks XLA for: `--devices K` (K / P with
    `--num-processes P`; or ``$MUPC_DEVICES``); for `mupc train` without it (``auto``), and
    for `mupc sweep --workers 1` (its runs train in this process), one per usable core, so
    that a run can measure one device against all of them; else 1.

    **Raises:** `ValueError` for a malformed ``$MUPC_DEVICES``."""
    from ._commands.train import requested_devices
    from ._parallel.placement import usable_cores

    in_process_sweep = args.command == "sweep" and getattr(args, "workers", None) == 1
    if args.command != "train" and not in_process_sweep:
        return 1
    devices = getattr(args, "devices", None)
    processes = getattr(args, "num_processes", None) or 1
    if isinstance(devices, int):
        return max(1, devices // processes)
    several = getattr(args, "distributed", False) or getattr(args, "coordinator", None)
    if several or processes > 1:
        return 1
    devices = devices or requested_devices(args)
    return devices if isinstance(devices, int) else usable_cores()


def console_main() -> int:
    """Entry point of the `mupc` executable: a fresh process, so `--devices K` (or `auto`,
    one per core) can still ask XLA for CPU host devices before JAX starts."""
    args, _ = build_parser().parse_known_args()
    try:
        _simulate_cpu_devices(host_devices(args))
    except ValueError as error:
        print(f"mupc {args.command}: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
