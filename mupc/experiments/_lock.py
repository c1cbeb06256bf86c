"""One writer per output folder: an advisory `fcntl` lock on `FOLDER/.mupc.lock`.

`mupc train` (`run_experiment`) and `mupc sweep` (`run_sweep`) hold the lock of their output
folder while they write to it. A second writer is refused at once with one line naming the
folder and the process that holds it. The lock belongs to an open file, so the operating
system drops it when its process ends in any way (`kill -9` included): the lock file a dead
process leaves behind is taken over by the next writer, which writes its own PID into it. On
file systems without `flock` (some network mounts) the lock is skipped, as it cannot be had.
"""

import contextlib
import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".mupc.lock"


class FolderInUse(ValueError):
    """The output folder `folder` is being written by another process, `holder` (its PID, or
    None when it could not be read)."""

    def __init__(self, folder: Path, holder: int | None, host: str | None = None):
        who = "another process" if holder is None else f"process {holder}"
        if host is not None and host != socket.gethostname():
            who += f" on {host}"
        super().__init__(
            f"{str(folder)!r} is in use by {who} (a mupc run or sweep writing there); wait for "
            "it to finish or stop it, or choose another --out."
        )
        self.folder, self.holder = folder, holder


def _holder(path: Path) -> tuple[int | None, str | None]:
    """The PID and host written in the lock file `path` (None, None if unreadable)."""
    for _ in range(20):  # the holder writes its PID right after it takes the lock
        with contextlib.suppress(OSError, ValueError):
            fields = path.read_text().split()
            if fields:
                return int(fields[0]), (fields[1] if len(fields) > 1 else None)
        time.sleep(0.025)
    return None, None


def _acquire(path: Path) -> int | None:
    """An open descriptor holding the lock on `path`, or None where `flock` is unsupported.

    **Raises:** `FolderInUse` if another process holds it.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderInUse(path.parent, *_holder(path)) from None
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                return None  # no locks on this file system
            raise
        # The file we locked may have been removed by its previous holder as it finished
        # (after we opened it): then it guards nothing, so lock the new one instead.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the writer's lock of the existing folder `folder` within the block.

    **Raises:** `FolderInUse` (a `ValueError`) naming the folder and the PID of the process
    that holds it; `OSError` if the lock file cannot be created.
    """
    path = Path(folder) / LOCK_NAME
    fd = _acquire(path)
    try:
        if fd is not None:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still holding it: nobody else holds this file
            os.close(fd)
