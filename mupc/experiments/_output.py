"""The output folder of a run: its files, the checks made before anything expensive happens,
`config.json`, and `metrics.jsonl`.

Files written to the output folder (all but `metrics.jsonl` atomically, by write-then-rename,
with the permissions the umask gives):

- `config.json`: the `RunConfig`, the folder the data was read from, the command line and
  library versions.
- `metrics.jsonl`: one JSON line per logged step (training loss, energies, evaluations).
- `checkpoint.npz`: the `TrainState` every `checkpoint_every` steps and at the end
  (`mupc.save_checkpoint`), with the run's configuration and running statistics in its
  metadata.
- `summary.json`: the outcome (`RunSummary.to_dict()`).
- `.mupc.lock`: held by the process writing the folder while it runs (removed at the end).
"""

import contextlib
import dataclasses
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._atomic import (
    check_writable_folder,
    remove_stale_temporaries,
    write_json_atomic,
    write_text_atomic,
)
from ._config import RESUMABLE_CHANGES, RunConfig
from ._lock import folder_lock


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """The files of a run in its output `folder`; only a process that `writes` (process 0 of
    a multi-process run, the only process otherwise) changes them, every process reads them."""

    folder: Path
    writes: bool = True

    @property
    def config(self) -> Path:
        return self.folder / "config.json"

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.npz"

    @property
    def summary(self) -> Path:
        return self.folder / "summary.json"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.jsonl"


def holds_run(out: str | os.PathLike) -> bool:
    """Whether the folder `out` holds (part of) a run: a config, a checkpoint or a summary."""
    files = RunFiles(Path(out))
    return any(path.exists() for path in (files.config, files.checkpoint, files.summary))


def read_json(path: Path) -> Any:
    """The JSON in `path`.

    **Raises:** `ValueError` naming the file if it is not valid JSON (cut short or edited).
    """
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); it was cut short or edited: delete it or "
            "choose another output folder"
        ) from error


def check_same_run(stored: dict, config: RunConfig, out: Path) -> None:
    """**Raises:** `ValueError` if the stored run configuration `stored` differs from
    `config` in a field that changes the trajectory (naming every such field)."""
    try:
        previous = RunConfig.from_dict(stored).to_dict()  # older files: fill in the defaults
    except (ValueError, TypeError):
        previous = stored
    current = config.to_dict()
    diffs = [
        f"{key}: stored {previous.get(key)!r} vs requested {current.get(key)!r}"
        for key in sorted(set(previous) | set(current))
        if key not in RESUMABLE_CHANGES and previous.get(key) != current.get(key)
    ]
    if diffs:
        raise ValueError(
            f"{str(out)!r} holds a different run ({'; '.join(diffs)}); use another --out or the "
            "same settings to resume it."
        )


def _check_existing(files: RunFiles, config: RunConfig, resume: bool) -> None:
    """**Raises:** `ValueError` if the folder holds a run and not `resume`, or another run."""
    out = files.folder
    if not resume and (files.checkpoint.exists() or files.summary.exists()):
        raise ValueError(
            f"{str(out)!r} already holds a run; pass --resume to continue it or choose another "
            "--out folder."
        )
    if files.config.exists():
        check_same_run(read_json(files.config)["run"], config, out)
    if resume and files.checkpoint.exists():
        from .._checkpoint import read_checkpoint_config

        stored = read_checkpoint_config(files.checkpoint)["metadata"].get("run")
        if stored is not None:
            check_same_run(stored, config, out)


@contextlib.contextmanager
def claim_output(out: Path, config: RunConfig, resume: bool) -> Iterator[RunFiles]:
    """Check the output folder before anything expensive happens, and hold its writer's lock
    (`mupc.experiments._lock`) within the block.

    A folder this call created is removed again if the block fails before anything was
    written in it (a refused dataset leaves no empty `--out` behind).

    **Raises:** `ValueError` if `resume` and the folder holds no run, if it holds a run and
    not `resume`, if it holds another run, or if another process writes to it
    (`FolderInUse`, naming its PID); `OSError` (naming the path) if the folder cannot be
    created or written.
    """
    from .._parallel import is_main_process

    files = RunFiles(out, writes=is_main_process())
    if resume and not (out.is_dir() and holds_run(out)):
        raise ValueError(
            f"--resume: {str(out)!r} holds no run (no config.json, checkpoint.npz or "
            "summary.json); check the folder name, or drop --resume to start a new run there."
        )
    if not files.writes:  # another process of a multi-process run writes (and locks) it
        _check_existing(files, config, resume)
        yield files
        return
    created = not out.exists()
    check_writable_folder(out, "--out")
    try:
        with folder_lock(out):
            remove_stale_temporaries(out)  # left by a write that was killed
            _check_existing(files, config, resume)
            yield files
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty
        raise


def write_config(files: RunFiles, config: RunConfig, data, provenance: dict | None) -> None:
    from .._version import versions

    record = {
        "run": config.to_dict(),
        "data": {"dataset": data.name, "directory": data.directory},
        "versions": versions(),
        **(provenance or {}),
    }
    write_json_atomic(files.config, record)


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop lines logged after the checkpoint we resume from (they will be redone)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        if record.get("step", 0) <= last_step:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))


class MetricsLog:
    """`metrics.jsonl`, appended line by line (None: no file)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.handle = open(path, "a") if path is not None else None  # noqa: SIM115

    def write(self, record: dict) -> None:
        """Append `record`.

        **Raises:** `OSError` naming the file if it cannot be written, or if it was deleted
        while the run wrote to it (its output folder removed: the lines would go nowhere).
        """
        if self.handle is None:
            return
        if os.fstat(self.handle.fileno()).st_nlink == 0:
            raise OSError(
                errno.ENOENT,
                "deleted while the run was writing to it (was the output folder removed?); "
                "the run stopped, as nothing more it computed could be kept: start it again",
                str(self.path),
            )
        try:
            self.handle.write(json.dumps(record, allow_nan=False) + "\n")
            self.handle.flush()
        except OSError as error:
            if error.filename is None and error.errno is not None:
                raise OSError(error.errno, error.strerror, str(self.path)) from error
            raise

    def close(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(OSError):  # a full disk: the error was raised already
                self.handle.close()
