"""Atomic file writes: nothing a user computed is lost or left half-written.

Every result file (checkpoints, summaries, CSV tables, figures) is written to a temporary file
in the destination's folder, flushed to disk, then renamed over the destination with
`os.replace`, which is atomic on POSIX: a reader (or a resumed run after `kill -9`) sees the
old file or the new one, never a torn one.

- **Permissions.** The finished file gets the permissions of any file the user creates,
  `0o666 & ~umask` (e.g. `rw-r--r--` under the usual umask 022), not the private `0o600` of a
  temporary file.
- **Stale temporaries.** A temporary file is named `.<name>~<host>~<pid>~<random>.tmp` after
  the process that writes it. One left behind by a process that was killed mid-write is
  removed by the next write of the same file (`atomic_open`) or by `remove_stale_temporaries`
  (called when a run or a sweep resumes); a temporary of a live process, or of another host,
  is never touched.
- **Errors.** An `OSError` while writing (a full disk, a read-only folder) names the
  destination file, so that the message says which file could not be written.
"""

import contextlib
import csv
import errno as errno_codes
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

_TEMPORARY = re.compile(r"^\.(?P<name>.+)~(?P<host>[^~]*)~(?P<pid>\d+)~[A-Za-z0-9_]+\.tmp$")


def _host() -> str:
    return socket.gethostname().replace("~", "-")


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then put it back at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The permissions a newly created file gets: `0o666 & ~umask`."""
    return 0o666 & ~_umask()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete temporary files left in `folder` by atomic writes whose process died.

    **Arguments:**

    - `folder`: the folder to clean (not recursive); a missing folder is left alone.
    - `name`: only the temporaries of this destination file name (default: all).

    **Returns:** the paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    host = _host()
    for candidate in folder.iterdir():
        match = _TEMPORARY.match(candidate.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        if match["host"] == host and not _alive(int(match["pid"])):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def temporary_prefix(name: str) -> str:
    """The prefix of this process's temporary files for the destination file `name` (with the
    suffix `.tmp`, `remove_stale_temporaries` recognises them)."""
    return f".{name}~{_host()}~{os.getpid()}~"


def _named(error: OSError, path: Path) -> OSError:
    """`error` naming `path`, the file the user asked for (a write error often names no
    file, or a temporary one)."""
    if error.errno is None:
        return error
    return OSError(error.errno, error.strerror or os.strerror(error.errno), str(path))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file that replaces `path` when the `with` block ends without error
    (the temporary file is removed if it raises). `mode` is `"w"` or `"wb"`.

    **Raises:** `ValueError` for another `mode`; `OSError` (naming `path`) if the file cannot
    be written.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb', got {mode!r}.")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, path.name)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=temporary_prefix(path.name), suffix=".tmp"
        )
    except OSError as error:
        raise _named(error, path) from error
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), file_mode())
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise _named(error, path) from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace `path` with `text`, atomically."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_csv_atomic(
    path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> None:
    """Replace `path` with a CSV file: a header of `columns`, then one line per row (a
    mapping from column to value), atomically."""
    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, list(columns))
        writer.writeheader()
        writer.writerows(rows)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Replace `path` with `data` as indented JSON (no NaN or inf), atomically."""
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")


def check_writable_folder(path: str | os.PathLike, what: str = "the output folder") -> Path:
    """Create the folder `path` if needed and check that files can be written in it.

    Run before any expensive work (loading data, building networks), so that a bad output
    folder fails at once.

    **Arguments:**

    - `path`: the folder.
    - `what`: how messages name it (e.g. `"--out"`).

    **Returns:** `path` as a `Path`.

    **Raises:** `OSError` naming the path and the problem: it is a file, it sits under a file,
    or it cannot be created or written (read-only, no permission, disk full).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            errno_codes.ENOTDIR, f"{what} is a file, not a folder; choose another", str(path)
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    errno_codes.ENOTDIR,
                    f"{what} cannot be created: {parent} is a file, not a folder",
                    str(path),
                )
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(
            dir=path, prefix=temporary_prefix("write-check"), suffix=".tmp"
        )
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise _named(error, path) from error
    return path
