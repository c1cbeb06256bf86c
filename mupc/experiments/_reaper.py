"""Reaper: ends every process a driver started, once the driver is gone (Linux).

Run as a script, `python _reaper.py DRIVER_PID` (it imports nothing from mupc, so it starts in
milliseconds). While the driver lives it records the driver's descendants every half second
(process id and start time, read from `/proc`); when the driver has died (this process is
reparented), it sends SIGTERM to each recorded process that still runs with the same start
time, waits two seconds, then SIGKILL. A local Ray instance needs this: after `kill -9` of the
process that started it, Ray's agent processes keep running otherwise.

When the driver stops it normally, it terminates the reaper first, which then does nothing.
"""

import os
import signal
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.5
GRACE_SECONDS = 2.0


def _stat(pid: int) -> tuple[int, int] | None:
    """`(parent pid, start time)` of a live (not zombie) process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Process id -> start time of every live descendant of `root`."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = _stat(int(entry.name))
        if found is not None:
            children.setdefault(found[0], []).append(int(entry.name))
            starts[int(entry.name)] = found[1]
    result, stack = {}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            result[child] = starts[child]
            stack.append(child)
    return result


def _signal_all(known: dict[int, int], sig: int) -> int:
    count = 0
    for pid, start in known.items():
        found = _stat(pid)
        if found is not None and found[1] == start:
            try:
                os.kill(pid, sig)
                count += 1
            except OSError:
                pass
    return count


def main(argv: list[str]) -> int:
    driver = int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the driver
    known: dict[int, int] = {}
    while os.getppid() == driver:
        known.update(descendants(driver))
        known.pop(os.getpid(), None)
        time.sleep(POLL_SECONDS)
    if _signal_all(known, signal.SIGTERM):
        time.sleep(GRACE_SECONDS)
        _signal_all(known, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
