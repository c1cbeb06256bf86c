"""Image layouts of `load_dataset` for convolutional networks: `(n, height, width, channels)`
float32, normalised per channel, checked against float64 references computed here from the
raw pixels (tiny generated files; no network)."""

import dataclasses

import numpy as np
import pytest
from test_data import (
    N_TEST,
    N_TRAIN,
    cifar_batches,
    cifar_pickle,
    tiny_registry,  # noqa: F401 (a fixture)
    write_idx_dir,
)

from mupc import _data
from mupc._data import DatasetError, load_dataset, synthetic_dataset

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def nhwc_reference(pixels_nchw: np.ndarray, mean, std) -> np.ndarray:
    """float64: x[i, h, w, c] = (p[i, c, h, w] / 255 - mean_c) / std_c, by explicit loops over
    channels (independent of the library's broadcasting and transposes)."""
    n, channels, height, width = pixels_nchw.shape
    out = np.empty((n, height, width, channels))
    for c in range(channels):
        out[..., c] = (pixels_nchw[:, c].astype(np.float64) / 255.0 - mean[c]) / std[c]
    return out


@pytest.mark.parametrize(
    "name, mean, std", [("mnist", 0.1307, 0.3081), ("fashion-mnist", 0.5, 0.5)]
)
def test_idx_datasets_as_nhwc(tmp_path, tiny_registry, name, mean, std):  # noqa: F811
    arrays = write_idx_dir(tmp_path / name, gz=True)
    ds = load_dataset(name, data_dir=tmp_path, download=False, layout="nhwc")
    assert ds.layout == "nhwc" and ds.input_shape == (28, 28, 1) and ds.input_dim == 784
    assert ds.train_images.shape == (N_TRAIN, 28, 28, 1) and ds.train_images.dtype == np.float32
    assert ds.test_images.shape == (N_TEST, 28, 28, 1)
    expected = nhwc_reference(arrays["train-images-idx3-ubyte"][:, None], [mean], [std])
    np.testing.assert_allclose(ds.train_images, expected, rtol=0, atol=1e-5)
    expected = nhwc_reference(arrays["t10k-images-idx3-ubyte"][:, None], [mean], [std])
    np.testing.assert_allclose(ds.test_images, expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ds.train_labels.argmax(1), arrays["train-labels-idx1-ubyte"])
    assert ds.directory == str(tmp_path / name)
    # The same numbers as the flat layout, arranged differently.
    flat = load_dataset(name, data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(ds.train_images.reshape(N_TRAIN, -1), flat.train_images)


def test_cifar10_as_nhwc(tmp_path, tiny_registry, monkeypatch):  # noqa: F811
    spec = dataclasses.replace(_data._REGISTRY["cifar10"], num_train=5, num_test=2)
    monkeypatch.setitem(_data._REGISTRY, "cifar10", spec)
    batches = cifar_batches()
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(cifar_pickle(*batch))
    ds = load_dataset("cifar10", data_dir=tmp_path, download=False, layout="nhwc")
    assert ds.train_images.shape == (5, 32, 32, 3) and ds.test_images.shape == (2, 32, 32, 3)
    assert ds.input_shape == (32, 32, 3) and ds.train_images.flags["C_CONTIGUOUS"]
    raw = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    # A CIFAR row is the red plane, then green, then blue, each row-major.
    expected = nhwc_reference(raw.reshape(-1, 3, 32, 32), CIFAR_MEAN, CIFAR_STD)
    np.testing.assert_allclose(ds.train_images, expected, rtol=0, atol=1e-5)
    # Spot value: example 0, row 2, column 5, blue = raw column 2 * 1024 + 2 * 32 + 5.
    value = raw[0, 2 * 1024 + 2 * 32 + 5] / 255.0
    assert ds.train_images[0, 2, 5, 2] == pytest.approx((value - 0.4465) / 0.2616, abs=1e-5)
    # Per-channel normalisation: channel c of the normalised images, mapped back, is the raw
    # channel c.
    back = ds.train_images * np.float32(CIFAR_STD) + np.float32(CIFAR_MEAN)
    np.testing.assert_allclose(
        back * 255, raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), atol=2e-3
    )


def test_mnist_sample_as_nhwc_and_nchw(monkeypatch, tmp_path):
    monkeypatch.delenv("MUPC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    flat = load_dataset("mnist-sample")
    nhwc = load_dataset("mnist-sample", layout="nhwc")
    nchw = load_dataset("mnist-sample", layout="nchw")
    assert nhwc.train_images.shape == (4000, 28, 28, 1) and nhwc.test_images.shape == (
        1000,
        28,
        28,
        1,
    )
    assert nchw.train_images.shape == (4000, 1, 28, 28) and nchw.input_shape == (1, 28, 28)
    np.testing.assert_array_equal(nhwc.train_images[..., 0], nchw.train_images[:, 0])
    np.testing.assert_array_equal(nhwc.test_images.reshape(1000, -1), flat.test_images)
    np.testing.assert_array_equal(nhwc.train_labels, flat.train_labels)


def test_synthetic_images():
    flat = synthetic_dataset(6, 3, 48, 4, seed=1)
    images = synthetic_dataset(6, 3, 48, 4, seed=1, image_shape=(3, 4, 4), layout="nhwc")
    assert images.train_images.shape == (6, 4, 4, 3) and images.input_shape == (4, 4, 3)
    # The flat vector is read channel-first, as for real images.
    np.testing.assert_array_equal(
        images.train_images, flat.train_images.reshape(6, 3, 4, 4).transpose(0, 2, 3, 1)
    )
    np.testing.assert_array_equal(images.test_labels, flat.test_labels)
    with pytest.raises(ValueError, match="needs an `image_shape`"):
        synthetic_dataset(6, 3, 48, 4, layout="nhwc")
    with pytest.raises(ValueError, match="product input_dim=48"):
        synthetic_dataset(6, 3, 48, 4, image_shape=(3, 4, 5), layout="nhwc")


def test_layout_is_checked(tmp_path, tiny_registry):  # noqa: F811
    write_idx_dir(tmp_path / "mnist", gz=False)
    with pytest.raises(ValueError, match=r"`layout` must be one of \['flat', 'nchw', 'nhwc'\]"):
        load_dataset("mnist", data_dir=tmp_path, download=False, layout="NHWC")
    with pytest.raises(ValueError, match="contradicts `layout='nhwc'`"):
        load_dataset("mnist", data_dir=tmp_path, download=False, layout="nhwc", flatten=True)
    # Clear errors and offline behaviour hold in every layout.
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte: truncated IDX file"):
        load_dataset("mnist", data_dir=tmp_path, download=False, layout="nhwc")
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False, layout="nhwc")
