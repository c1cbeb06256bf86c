"""Stopping on request: SIGINT (Ctrl-C) and SIGTERM become one exception, `Interrupted`.

A `KeyboardInterrupt` subclass, so code that already cleans up on Ctrl-C (the `finally`
blocks of a run, the removal of a half-written temporary file) does the same on SIGTERM.
The command line turns it into a one-line message and exit status 128 + the signal number
(130 for SIGINT, 143 for SIGTERM).

Two places where Python alone would lose or delay a stop are covered by `stop_on_signals`:

- A stop raised while a garbage-collection callback (such as JAX's) or a `__del__` runs
  cannot propagate: Python prints "Exception ignored" and goes on. It is delivered again
  instead, silently, as the same signal sent a moment later (after the callback), which the
  main thread handles at its next instruction.
- Python runs signal handlers only between the main thread's instructions, so a signal that
  arrives during a long compiled computation (an XLA compilation, a training step of a huge
  network) would wait for it to end, minutes perhaps. A watchdog thread sees every signal at
  once (`signal.set_wakeup_fd`); if the main thread has not taken it up within `grace`
  seconds, the watchdog prints the one-line message (`on_stuck`) and ends the process with
  128 + the signal number, without waiting for the computation. Files are written
  atomically, so the last checkpoint is intact.
"""

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Seconds the main thread has to take up a signal before the watchdog ends the process.
GRACE_SECONDS = 3.0


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


class _Taken:
    """How many signals the main thread's handler has taken up (compared by the watchdog
    with how many arrived)."""

    count = 0


def _raise(signum, frame):
    _Taken.count += 1
    raise Interrupted(signum)


def _deliver_again(previous_hook):
    def hook(unraisable) -> None:
        """`sys.unraisablehook`: a stop that could not propagate is sent again, silently."""
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # From another thread, a moment later: sent from here, the handler would raise
            # inside this hook, where the stop would be lost again.
            signum = as_interrupted(unraisable.exc_value).signum
            later = threading.Timer(0.05, os.kill, (os.getpid(), signum))
            later.daemon = True
            later.start()
            return
        previous_hook(unraisable)

    return hook


def _default_stuck_message(signum: int) -> str:
    name = signal.Signals(signum).name
    return f"mupc: stopped by {name} during a computation (ended without waiting for it)"


class _Watchdog:
    """Reads the signal numbers that Python's C-level handler writes to a pipe, in a thread
    of its own; ends the process if the main thread does not take one up within `grace`."""

    def __init__(self, grace: float, on_stuck: Callable[[int], str]):
        self.grace, self.on_stuck = grace, on_stuck
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.write_end, False)
        self.previous_fd = signal.set_wakeup_fd(self.write_end, warn_on_full_buffer=False)
        self.arrived = 0
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="mupc-signal-watchdog")
        self.thread.daemon = True
        self.thread.start()

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self.read_end, 64)
            except OSError:
                return
            if not data or self.closed.is_set():
                return
            for signum in data:
                if signum not in SIGNALS:
                    continue
                self.arrived += 1
                if self._taken_within(self.grace):
                    continue
                self._end(signum)

    def _taken_within(self, seconds: float) -> bool:
        waited, step = 0.0, 0.05
        while waited < seconds:
            if _Taken.count >= self.arrived or self.closed.is_set():
                return True
            self.closed.wait(step)
            waited += step
        return _Taken.count >= self.arrived or self.closed.is_set()

    def _end(self, signum: int) -> None:
        try:
            message = self.on_stuck(signum)
        except Exception:  # the message must not keep the process alive
            message = _default_stuck_message(signum)
        with contextlib.suppress(Exception):
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
        os._exit(128 + signum)

    def close(self) -> None:
        self.closed.set()
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.write_end)  # the thread's read returns b""
        self.thread.join(timeout=1)
        os.close(self.read_end)


@contextlib.contextmanager
def stop_on_signals(
    on_stuck: Callable[[int], str] | None = None, grace: float | None = None
) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted` in the main thread (elsewhere
    this does nothing: Python delivers signals to the main thread only).

    **Arguments:**

    - `on_stuck`: the one-line message (given the signal number) printed when the main thread
      does not take a signal up within `grace` seconds (default `GRACE_SECONDS`) and the
      process is ended without it; None: a generic line.
    - `grace`: see above.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in previous:
        signal.signal(sig, _raise)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _deliver_again(previous_hook)
    watchdog = _Watchdog(
        GRACE_SECONDS if grace is None else grace, on_stuck or _default_stuck_message
    )
    _ACTIVE.append(watchdog)
    try:
        yield
    finally:
        _ACTIVE.remove(watchdog)
        watchdog.close()
        sys.unraisablehook = previous_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def set_stuck_message(message: Callable[[int], str]) -> None:
    """Replace the message of the innermost `stop_on_signals` block's watchdog (the command
    line's commands say what they kept, e.g. the checkpoint of a run)."""
    for watchdog in _ACTIVE[-1:]:
        watchdog.on_stuck = message


_ACTIVE: list[_Watchdog] = []


def stop_behind(error: BaseException) -> Interrupted | None:
    """The stop (SIGINT or SIGTERM) that caused `error`, if any, as an `Interrupted`: a stop
    that lands inside an import or a library's `except` can come out as another error (NumPy
    turns it into an `ImportError`)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return as_interrupted(cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def as_interrupted(error: KeyboardInterrupt) -> Interrupted:
    """`error` as an `Interrupted` (a plain `KeyboardInterrupt` is SIGINT, unless it carries
    a `signum`, as the `mupc` executable's own stop does)."""
    if isinstance(error, Interrupted):
        return error
    return Interrupted(getattr(error, "signum", signal.SIGINT))
