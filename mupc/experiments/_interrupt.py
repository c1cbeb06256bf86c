"""Stopping on request: SIGINT (Ctrl-C) and SIGTERM become one exception, `Interrupted`.

A `KeyboardInterrupt` subclass, so code that already cleans up on Ctrl-C (the `finally`
blocks of a run, the removal of a half-written temporary file) does the same on SIGTERM.
The command line turns it into a one-line message and exit status 128 + the signal number
(130 for SIGINT, 143 for SIGTERM).
"""

import contextlib
import signal
import threading
from collections.abc import Iterator


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by signal `signum` (SIGINT or SIGTERM); `message` says
    what was kept and how to go on."""

    def __init__(self, signum: int = signal.SIGINT, message: str | None = None):
        name = signal.Signals(signum).name
        super().__init__(message or f"stopped by {name}")
        self.signum = int(signum)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def exit_status(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal."""
        return 128 + self.signum


def _raise(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted` in the main thread (elsewhere
    this does nothing: Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def as_interrupted(error: KeyboardInterrupt) -> Interrupted:
    """`error` as an `Interrupted` (a plain `KeyboardInterrupt` is SIGINT)."""
    return error if isinstance(error, Interrupted) else Interrupted(signal.SIGINT)
