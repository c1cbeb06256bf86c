"""Tests of mupc._data on tiny files generated here (no network, no large downloads)."""

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mupc import _data
from mupc._data import (
    Dataset,
    DatasetError,
    RemoteFile,
    dataset_names,
    iterate_batches,
    load_dataset,
    num_batches,
    synthetic_dataset,
)

N_TRAIN, N_TEST = 6, 4
IDX_MEMBERS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# ------------------------------------------------------------------------------------------------
# Helpers: write tiny dataset files with known contents
# ------------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = struct.pack(">HBB", 0, code, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(">u1").tobytes()


def known_pixels(n: int, shape: tuple[int, ...], offset: int) -> np.ndarray:
    """Deterministic uint8 pixels covering 0..255."""
    return (
        ((np.arange(n * int(np.prod(shape))) * 7 + offset) % 256)
        .astype(np.uint8)
        .reshape(n, *shape)
    )


def idx_arrays(offset: int = 0) -> dict[str, np.ndarray]:
    return {
        "train-images-idx3-ubyte": known_pixels(N_TRAIN, (28, 28), offset),
        "train-labels-idx1-ubyte": (np.arange(N_TRAIN) * 3 + offset) % 10,
        "t10k-images-idx3-ubyte": known_pixels(N_TEST, (28, 28), offset + 1),
        "t10k-labels-idx1-ubyte": (np.arange(N_TEST) + offset) % 10,
    }


def write_idx_dir(directory: Path, *, gz: bool, offset: int = 0) -> dict[str, np.ndarray]:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = idx_arrays(offset)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


@pytest.fixture
def tiny_registry(monkeypatch, tmp_path):
    """Point the registry at tiny split sizes and no system folders; isolate env and cache."""
    monkeypatch.delenv("MUPC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("mnist", "fashion-mnist"):
        spec = _data._REGISTRY[name]
        monkeypatch.setitem(
            _data._REGISTRY,
            name,
            dataclasses.replace(spec, num_train=N_TRAIN, num_test=N_TEST, system_dirs=()),
        )
    spec = _data._REGISTRY["cifar10"]
    monkeypatch.setitem(
        _data._REGISTRY, "cifar10", dataclasses.replace(spec, num_train=4, num_test=2)
    )


def expected_normalised(pixels: np.ndarray, mean, std) -> np.ndarray:
    """Independent float64 reference: per-channel (p / 255 - mean) / std, flattened CHW."""
    x = pixels.astype(np.float64) / 255.0
    x = (x - np.asarray(mean).reshape(1, -1, 1, 1)) / np.asarray(std).reshape(1, -1, 1, 1)
    return x.reshape(len(x), -1)


# ------------------------------------------------------------------------------------------------
# IDX
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_values_shapes_and_normalisation(tmp_path, tiny_registry, gz):
    arrays = write_idx_dir(tmp_path / "d" / "mnist", gz=gz)
    ds = load_dataset("mnist", data_dir=tmp_path / "d", download=False)
    assert isinstance(ds, Dataset)
    assert ds.name == "mnist" and ds.num_classes == 10 and ds.input_shape == (1, 28, 28)
    assert ds.input_dim == 784
    assert ds.train_images.shape == (N_TRAIN, 784) and ds.train_images.dtype == np.float32
    assert ds.test_images.shape == (N_TEST, 784)
    expected = expected_normalised(arrays["train-images-idx3-ubyte"][:, None], 0.1307, 0.3081)
    np.testing.assert_allclose(ds.train_images, expected, rtol=0, atol=1e-5)
    # Spot values: pixel 0 -> -0.1307 / 0.3081, pixel 255 -> (1 - 0.1307) / 0.3081.
    assert ds.train_images.min() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    assert ds.train_images.max() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-6)
    expected = expected_normalised(arrays["t10k-images-idx3-ubyte"][:, None], 0.1307, 0.3081)
    np.testing.assert_allclose(ds.test_images, expected, rtol=0, atol=1e-5)
    # One-hot float32 labels.
    assert ds.train_labels.dtype == np.float32 and ds.train_labels.shape == (N_TRAIN, 10)
    np.testing.assert_array_equal(ds.train_labels.sum(1), 1.0)
    np.testing.assert_array_equal(ds.train_labels.argmax(1), arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.test_labels.argmax(1), arrays["t10k-labels-idx1-ubyte"])


def test_fashion_mnist_normalisation_and_unflattened(tmp_path, tiny_registry):
    arrays = write_idx_dir(tmp_path / "fashion-mnist", gz=True)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path, download=False, flatten=False)
    assert ds.train_images.shape == (N_TRAIN, 1, 28, 28)
    expected = arrays["train-images-idx3-ubyte"] / 255.0 * 2.0 - 1.0  # (p/255 - 0.5) / 0.5
    np.testing.assert_allclose(ds.train_images[:, 0], expected, rtol=0, atol=1e-6)


def test_truncated_idx_names_the_file(tmp_path, tiny_registry):
    write_idx_dir(tmp_path / "mnist", gz=False)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: truncated IDX file"):
        load_dataset("mnist", data_dir=tmp_path, download=False)
    path.write_bytes(path.read_bytes()[:9])  # inside the header
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: truncated IDX file"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_trailing_bytes_are_a_size_mismatch(tmp_path, tiny_registry):
    write_idx_dir(tmp_path / "mnist", gz=False)
    path = tmp_path / "mnist" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte: IDX size mismatch"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_wrong_magic_names_the_file(tmp_path, tiny_registry):
    write_idx_dir(tmp_path / "mnist", gz=False)
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte: wrong IDX magic number"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_wrong_image_size_and_count(tmp_path, tiny_registry, monkeypatch):
    directory = tmp_path / "mnist"
    write_idx_dir(directory, gz=False)
    (directory / "train-images-idx3-ubyte").write_bytes(
        idx_bytes(known_pixels(N_TRAIN, (27, 28), 0))
    )
    with pytest.raises(DatasetError, match=r"expected \(n, 28, 28\)"):
        load_dataset("mnist", data_dir=tmp_path, download=False)
    write_idx_dir(directory, gz=False)
    spec = dataclasses.replace(_data._REGISTRY["mnist"], num_train=60_000)
    monkeypatch.setitem(_data._REGISTRY, "mnist", spec)
    with pytest.raises(DatasetError, match=r"train split has 6 examples; expected 60000"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_corrupt_gzip_names_the_file(tmp_path, tiny_registry):
    write_idx_dir(tmp_path / "mnist", gz=True)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz: corrupt gzip"):
        load_dataset("mnist", data_dir=tmp_path, download=False)
    data[20:30] = b"\xff" * 10
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz: corrupt gzip"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


def test_out_of_range_label(tmp_path, tiny_registry):
    write_idx_dir(tmp_path / "mnist", gz=False)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([0, 1, 2, 10])))
    with pytest.raises(DatasetError, match=r"expected integers in \[0, 9\]"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


# ------------------------------------------------------------------------------------------------
# CIFAR-10
# ------------------------------------------------------------------------------------------------


def cifar_batches() -> dict[str, tuple[np.ndarray, list[int]]]:
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        n = 1 if name != "test_batch" else 2  # 5 train batches of 1 -> 5 train; 2 test
        pixels = known_pixels(n, (3072,), 11 * i)
        batches[name] = (pixels, [(i + j) % 10 for j in range(n)])
    return batches


def cifar_pickle(pixels: np.ndarray, labels: list[int]) -> bytes:
    batch = {b"batch_label": b"tiny", b"labels": labels, b"data": pixels, b"filenames": []}
    return pickle.dumps(batch, protocol=2)


@pytest.mark.parametrize("layout", ["extracted", "tarball"])
def test_cifar_batches(tmp_path, tiny_registry, monkeypatch, layout):
    spec = dataclasses.replace(_data._REGISTRY["cifar10"], num_train=5, num_test=2)
    monkeypatch.setitem(_data._REGISTRY, "cifar10", spec)
    batches = cifar_batches()
    directory = tmp_path / "cifar10"
    directory.mkdir()
    if layout == "extracted":
        (directory / "cifar-10-batches-py").mkdir()
        for name, batch in batches.items():
            (directory / "cifar-10-batches-py" / name).write_bytes(cifar_pickle(*batch))
    else:
        with tarfile.open(directory / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, batch in batches.items():
                data = cifar_pickle(*batch)
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    ds = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert ds.train_images.shape == (5, 3072) and ds.test_images.shape == (2, 3072)
    assert ds.input_shape == (3, 32, 32)
    train_pixels = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    # The pickle rows are R plane, G plane, B plane: channel-first, as flattened by load_dataset.
    expected = expected_normalised(
        train_pixels.reshape(-1, 3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    )
    np.testing.assert_allclose(ds.train_images, expected, rtol=0, atol=1e-5)
    # Channel 1 (green) of pixel 0 of example 0 is column 1024 of the raw row.
    raw = train_pixels[0, 1024] / 255.0
    assert ds.train_images[0, 1024] == pytest.approx((raw - 0.4822) / 0.2435, abs=1e-5)
    labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    np.testing.assert_array_equal(ds.train_labels.argmax(1), labels)
    np.testing.assert_array_equal(ds.test_labels.argmax(1), batches["test_batch"][1])
    unflat = load_dataset("cifar10", data_dir=tmp_path, download=False, flatten=False)
    assert unflat.train_images.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(unflat.train_images.reshape(5, -1), ds.train_images)


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path, tiny_registry, monkeypatch):
    spec = dataclasses.replace(_data._REGISTRY["cifar10"], num_train=5, num_test=2)
    monkeypatch.setitem(_data._REGISTRY, "cifar10", spec)
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in cifar_batches().items():
        (folder / name).write_bytes(cifar_pickle(*batch))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": os.getcwd}))
    with pytest.raises(DatasetError, match=r"test_batch: not a CIFAR batch.*not allowed"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


def test_corrupt_cifar_tarball(tmp_path, tiny_registry):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(gzip.compress(b"x" * 100)[:30])
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz: corrupt or truncated"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


# ------------------------------------------------------------------------------------------------
# Lookup order and download
# ------------------------------------------------------------------------------------------------


def train_label_ids(ds: Dataset) -> list[int]:
    return ds.train_labels.argmax(1).tolist()


def test_lookup_order(tmp_path, tiny_registry, monkeypatch):
    # Four copies that differ in their labels (offset), one per location.
    roots = {k: tmp_path / k for k in ("arg", "env", "cache", "system")}
    write_idx_dir(roots["arg"] / "mnist", gz=True, offset=1)
    write_idx_dir(roots["env"] / "mnist", gz=False, offset=2)
    write_idx_dir(roots["cache"] / "mupc" / "mnist", gz=True, offset=3)
    write_idx_dir(roots["system"], gz=True, offset=4)
    monkeypatch.setenv("MUPC_DATA", str(roots["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(roots["cache"]))
    spec = dataclasses.replace(_data._REGISTRY["mnist"], system_dirs=(roots["system"],))
    monkeypatch.setitem(_data._REGISTRY, "mnist", spec)

    def labels_of(offset: int) -> list[int]:
        return idx_arrays(offset)["train-labels-idx1-ubyte"].tolist()

    load = lambda **kw: train_label_ids(load_dataset("mnist", download=False, **kw))
    assert load(data_dir=roots["arg"]) == labels_of(1)
    assert load() == labels_of(2)
    # An incomplete copy is skipped.
    (roots["env"] / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    assert load() == labels_of(3)
    monkeypatch.delenv("MUPC_DATA")
    assert load(data_dir=tmp_path / "empty") == labels_of(3)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "nowhere"))
    assert load() == labels_of(4)
    monkeypatch.setitem(_data._REGISTRY, "mnist", dataclasses.replace(spec, system_dirs=()))
    with pytest.raises(FileNotFoundError, match=r"'mnist' not found and download=False"):
        load()


def test_cache_defaults_to_home(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _data._cache_root() == tmp_path / ".cache" / "mupc"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _data._cache_root() == tmp_path / "xdg" / "mupc"


def serve_idx_files(tmp_path: Path, monkeypatch, *, corrupt: str | None = None) -> Path:
    """Put gzip IDX files in a 'mirror' folder and point the mnist spec at them via file://."""
    mirror = tmp_path / "mirror"
    write_idx_dir(mirror, gz=True)
    files = []
    for name in IDX_MEMBERS:
        path = mirror / f"{name}.gz"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if name == corrupt:
            digest = "0" * 64
        files.append(RemoteFile(path.name, (path.as_uri(),), digest, path.stat().st_size))
    spec = dataclasses.replace(_data._REGISTRY["mnist"], files=tuple(files))
    monkeypatch.setitem(_data._REGISTRY, "mnist", spec)
    return mirror


def test_download_verifies_and_caches(tmp_path, tiny_registry, monkeypatch):
    mirror = serve_idx_files(tmp_path, monkeypatch)
    ds = load_dataset("mnist")
    cached = tmp_path / "cache" / "mupc" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{m}.gz" for m in IDX_MEMBERS)
    assert train_label_ids(ds) == idx_arrays(0)["train-labels-idx1-ubyte"].tolist()
    # The second load uses the cache: the mirror is gone.
    for p in mirror.iterdir():
        p.unlink()
    assert train_label_ids(load_dataset("mnist")) == train_label_ids(ds)


def test_download_into_data_dir(tmp_path, tiny_registry, monkeypatch):
    serve_idx_files(tmp_path, monkeypatch)
    load_dataset("mnist", data_dir=tmp_path / "mine")
    assert (tmp_path / "mine" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert not (tmp_path / "cache").exists()


def test_download_checksum_mismatch_deletes_file(tmp_path, tiny_registry, monkeypatch):
    serve_idx_files(tmp_path, monkeypatch, corrupt="t10k-images-idx3-ubyte")
    actual = hashlib.sha256((tmp_path / "mirror" / "t10k-images-idx3-ubyte.gz").read_bytes())
    pattern = (
        rf"checksum mismatch for t10k-images-idx3-ubyte.gz: expected sha256 0{{64}}, "
        rf"got {actual.hexdigest()}"
    )
    with pytest.raises(DatasetError, match=pattern):
        load_dataset("mnist")
    cached = tmp_path / "cache" / "mupc" / "mnist"
    assert not (cached / "t10k-images-idx3-ubyte.gz").exists()
    assert not [p for p in cached.iterdir() if p.name.endswith(".part")]


def test_download_falls_back_to_next_mirror(tmp_path, monkeypatch):
    source = tmp_path / "file.bin"
    source.write_bytes(b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    file = RemoteFile("file.bin", ((tmp_path / "missing").as_uri(), source.as_uri()), digest, 5)
    dest = _data._download(file, tmp_path / "out")
    assert dest.read_bytes() == b"hello"
    file = RemoteFile("file.bin", ((tmp_path / "missing").as_uri(),), digest, 5)
    with pytest.raises(OSError, match=r"(?s)could not download file.bin.*missing"):
        _data._download(file, tmp_path / "out2")
    assert list((tmp_path / "out2").iterdir()) == []


def test_unknown_name():
    with pytest.raises(ValueError, match=r"name='mnsit'.*'mnist', 'fashion-mnist', 'cifar10'"):
        load_dataset("mnsit")
    assert dataset_names() == ("mnist", "fashion-mnist", "cifar10", "mnist-sample")


# ------------------------------------------------------------------------------------------------
# mnist-sample and synthetic data
# ------------------------------------------------------------------------------------------------


def test_mnist_sample_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("MUPC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ds = load_dataset("mnist-sample", download=False, seed=0)
    assert ds.train_images.shape == (4000, 784) and ds.test_images.shape == (1000, 784)
    assert ds.train_labels.shape == (4000, 10)
    # Stratified: the file holds 500 of each digit; 400 train, 100 test each, interleaved.
    np.testing.assert_array_equal(ds.train_labels.sum(0), 400)
    np.testing.assert_array_equal(ds.test_labels.sum(0), 100)
    np.testing.assert_array_equal(ds.test_labels[:20].argmax(1), np.tile(np.arange(10), 2))
    assert np.isfinite(ds.train_images).all()
    # Normalised with MNIST's statistics: 0 maps to -mean/sd, the minimum.
    assert ds.train_images.min() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    again = load_dataset("mnist-sample", seed=123)
    np.testing.assert_array_equal(again.test_images, ds.test_images)
    np.testing.assert_array_equal(again.train_labels, ds.train_labels)
    # Train and test are disjoint.
    train_rows = {row.tobytes() for row in ds.train_images}
    assert not any(row.tobytes() in train_rows for row in ds.test_images)


def test_synthetic_dataset_is_learnable_and_deterministic():
    ds = synthetic_dataset(2000, 500, 20, 5, seed=3)
    assert ds.train_images.shape == (2000, 20) and ds.train_images.dtype == np.float32
    assert ds.test_labels.shape == (500, 5) and ds.num_classes == 5 and ds.input_shape == (20,)
    # Oracle: nearest class mean fitted on train classifies test almost perfectly.
    y = ds.train_labels.argmax(1)
    means = np.stack([ds.train_images[y == c].mean(0) for c in range(5)])
    dist = ((ds.test_images[:, None, :] - means[None]) ** 2).sum(-1)
    assert (dist.argmin(1) == ds.test_labels.argmax(1)).mean() > 0.9
    same = synthetic_dataset(2000, 500, 20, 5, seed=3)
    np.testing.assert_array_equal(same.test_images, ds.test_images)
    other = synthetic_dataset(2000, 500, 20, 5, seed=4)
    assert not np.array_equal(other.train_images, ds.train_images)
    with pytest.raises(ValueError, match=r"num_classes=1; expected an integer >= 2"):
        synthetic_dataset(10, 10, 3, 1)


# ------------------------------------------------------------------------------------------------
# Batching
# ------------------------------------------------------------------------------------------------


def batch_ids(n=103, batch_size=10, **kw) -> list[list[int]]:
    x = np.arange(n)
    y = -np.arange(n)
    out = []
    for bx, by in iterate_batches(x, y, batch_size, **kw):
        np.testing.assert_array_equal(by, -bx)  # images and labels stay paired
        out.append(bx.tolist())
    return out


def test_num_batches():
    assert num_batches(103, 10) == 10
    assert num_batches(103, 10, drop_last=False) == 11
    assert num_batches(100, 10, drop_last=False) == 10
    assert num_batches(0, 10) == 0
    with pytest.raises(ValueError, match=r"batch_size=0; expected a positive integer"):
        num_batches(10, 0)


def test_iterate_batches_deterministic_per_seed_and_epoch():
    assert batch_ids(seed=1, epoch=0) == batch_ids(seed=1, epoch=0)
    assert batch_ids(seed=1, epoch=0) != batch_ids(seed=1, epoch=1)
    assert batch_ids(seed=1, epoch=0) != batch_ids(seed=2, epoch=0)


def test_iterate_batches_covers_each_example_once():
    batches = batch_ids(seed=0, epoch=5, drop_last=False)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert sorted(sum(batches, [])) == list(range(103))
    dropped = batch_ids(seed=0, epoch=5)
    assert len(dropped) == 10 and dropped == batches[:10]
    flat = sum(dropped, [])
    assert len(set(flat)) == len(flat) == 100


def test_iterate_batches_resumes_at_start():
    full = batch_ids(seed=7, epoch=2, drop_last=False)
    for start in (0, 1, 6, 11):
        assert batch_ids(seed=7, epoch=2, start=start, drop_last=False) == full[start:]
    with pytest.raises(ValueError, match=r"start=12; expected an integer in \[0, 11\]"):
        iterate_batches(
            np.zeros(103), np.zeros(103), 10, seed=7, epoch=2, start=12, drop_last=False
        )


def test_iterate_batches_validates_arguments():
    with pytest.raises(ValueError, match=r"images has 3 examples but labels has 2"):
        iterate_batches(np.zeros(3), np.zeros(2), 1, seed=0, epoch=0)
    with pytest.raises(ValueError, match=r"epoch=-1; expected a non-negative integer"):
        iterate_batches(np.zeros(3), np.zeros(3), 1, seed=0, epoch=-1)


# ------------------------------------------------------------------------------------------------
# Real data (slow; only where Debian's dataset-fashion-mnist is installed)
# ------------------------------------------------------------------------------------------------

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.delenv("MUPC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.train_images.shape == (60000, 784) and ds.test_images.shape == (10000, 784)
    np.testing.assert_array_equal(ds.train_labels.sum(0), 6000)
    np.testing.assert_array_equal(ds.test_labels.sum(0), 1000)
    assert ds.train_images.min() == pytest.approx(-1.0) and ds.train_images.max() == pytest.approx(
        1.0
    )


def test_batch_order_is_the_documented_permutation():
    images = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = np.eye(10, dtype=np.float32)
    batches = list(_data.iterate_batches(images, labels, 3, seed=7, epoch=2))
    order = np.random.default_rng([7, 2]).permutation(10)
    assert len(batches) == 3  # the last, partial batch is dropped
    for index, (x, y) in enumerate(batches):
        np.testing.assert_array_equal(x, images[order[3 * index : 3 * index + 3]])
        np.testing.assert_array_equal(y, labels[order[3 * index : 3 * index + 3]])
