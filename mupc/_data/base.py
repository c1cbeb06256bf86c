"""The data types of the dataset layer: `Dataset`, `DatasetSpec`, `RemoteFile`, `DatasetError`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, get_args

import numpy as np


class DatasetError(ValueError):
    """A dataset file exists but its contents are wrong: bad checksum, truncated or corrupt
    file, wrong IDX magic number, or shapes/counts that do not match the dataset's description.
    The message names the file and what was expected.
    """


Layout = Literal["flat", "nchw", "nhwc"]
"""How images are laid out: `"flat"` `(n, D)` vectors in channel-first order (fully connected
networks), `"nchw"` `(n, channels, height, width)`, `"nhwc"` `(n, height, width, channels)`
(convolutional networks, JAX's default convolution layout)."""
LAYOUTS: tuple[str, ...] = get_args(Layout)


def check_layout(layout: object) -> None:
    """**Raises:** `ValueError` unless `layout` is one of `LAYOUTS`."""
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {list(LAYOUTS)}, got {layout!r}.")


class Dataset(NamedTuple):
    """A classification dataset, normalised and ready for training.

    **Fields:**

    - `train_images`: float32, shape `(n_train, D)` with `D = prod(input_shape)` in the
      `"flat"` layout, else `(n_train, *input_shape)`.
    - `train_labels`: one-hot float32, shape `(n_train, num_classes)`.
    - `test_images`, `test_labels`: the same for the test split.
    - `name`: the dataset name, e.g. `"mnist"`.
    - `num_classes`: number of classes `C`.
    - `input_shape`: shape of one example before flattening: `(channels, height, width)` in
      the `"flat"` and `"nchw"` layouts, `(height, width, channels)` in `"nhwc"`.
    - `layout`: `"flat"`, `"nchw"` or `"nhwc"`.
    - `directory`: the folder the files were read from (None for generated data).
    - `vocabulary`: for a text corpus cut into windows (`mupc.experiments`), the characters by
      id; its labels are then integer ids (n, T) of the next characters. None for images.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    name: str
    num_classes: int
    input_shape: tuple[int, ...]
    layout: Layout = "flat"
    directory: str | None = None
    vocabulary: str | None = None

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
