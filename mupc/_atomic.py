"""Atomic file writes: nothing a user computed is lost or left half-written.

Every result file (checkpoints, summaries, CSV tables, figures) is written to a temporary file
in the destination's folder, flushed to disk, then renamed over the destination with
`os.replace`, which is atomic on POSIX: a reader (or a resumed run after `kill -9`) sees the
old file or the new one, never a torn one.
"""

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file that replaces `path` when the `with` block ends without error
    (the temporary file is removed if it raises). `mode` is `"w"` or `"wb"`."""
    if mode not in ("w", "wb"):
        raise ValueError(f"`mode` must be 'w' or 'wb', got {mode!r}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace `path` with `text`, atomically."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Replace `path` with `data` as indented JSON (no NaN or inf), atomically."""
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")
