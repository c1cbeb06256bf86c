"""The `mupc` executable.

A module of its own, outside the `mupc` package, so that its first line runs before the
library's imports (JAX, several seconds on a slow machine): SIGINT (Ctrl-C) and SIGTERM are
honoured from that first line to the last, each with one line on stderr saying what happened,
and exit status 128 + the signal number (130, 143).

Before the command starts (imports, parsing) and after it has ended, nothing of the user's is
open, so a stop ends the process at once (`os._exit`): raising an exception there could land
inside a C extension's initialisation, which cannot unwind it. While the command runs,
`mupc._cli.run_command` handles stops itself (the command's own clean-up, then one line).
"""

import os
import signal
import sys

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _say_and_exit(message: str, status: int) -> None:
    """Print `message` on stderr and end at once."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing more can be said
            pass
    try:
        os.write(2, (message + "\n").encode())
    except OSError:
        pass
    os._exit(status)


def _stop_outside_the_command(signum, frame) -> None:
    name = signal.Signals(signum).name
    cli = sys.modules.get("mupc._cli")
    if getattr(cli, "COMMAND_ENDED", False):
        what = "as it was exiting; the command had ended"
    else:
        what = "while starting; nothing was done"
    _say_and_exit(f"mupc: stopped by {name} {what}", 128 + signum)


def main() -> None:
    """Run the `mupc` command line; never returns."""
    for signum in _SIGNALS:
        signal.signal(signum, _stop_outside_the_command)
    from mupc import _cli

    status = _cli.console_main()
    if status in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        # Stopped, and said so: end without waiting for computations still running in JAX's
        # threads (the files are written and flushed).
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    main()
