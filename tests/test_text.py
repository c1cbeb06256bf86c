"""Text corpora: the R data reader and the Debian package path on files generated here (with an
independent R serialiser written below), the download path over file:// URLs, splits, windows,
batches and the n-gram floors against counts done by hand."""

import dataclasses
import gzip
import hashlib
import io
import math
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import mupc
from mupc._data import text as text_module
from mupc._data.base import DatasetError, RemoteFile
from mupc._data.rdata import read_lazy_load, unserialize

# ------------------------------------------------------------------ an R serialiser (XDR, v3)


def _int(value):
    return struct.pack(">i", value)


def _chars(value):
    data = value.encode()
    return _int(9 | (1 << 18)) + _int(len(data)) + data  # CHARSXP, UTF-8 flag


def _strings(values):
    return _int(16) + _int(len(values)) + b"".join(_chars(v) for v in values)


def _ints(values):
    return _int(13) + _int(len(values)) + b"".join(_int(v) for v in values)


def _named_list(items):
    """VECSXP with a names attribute: (flags with attributes) length items attrs."""
    body = _int(19 | (1 << 9)) + _int(len(items)) + b"".join(v for _, v in items)
    names = _strings([k for k, _ in items])
    attributes = _int(2 | (1 << 10)) + _int(1) + _chars("names") + names + _int(254)
    return body + attributes


def _serialise(item):
    return b"X\n" + _int(3) + _int(0x040201) + _int(0x030500) + _int(5) + b"UTF-8" + item


def _lazy_load(objects: dict[str, list[str]]) -> tuple[bytes, bytes]:
    """(rdb, rdx) bytes holding character vectors, as R's makeLazyLoadDB writes them."""
    rdb, where = b"", []
    for name, lines in objects.items():
        payload = _serialise(_strings(lines))
        chunk = struct.pack(">I", len(payload)) + zlib.compress(payload)
        where.append((name, _ints([len(rdb), len(chunk)])))
        rdb += chunk
    index = _named_list([("variables", _named_list(where)), ("compressed", _ints([1]))])
    return rdb, gzip.compress(_serialise(index))


NOVELS = {
    "first": ["A NOVEL", "", "It was a truth, universally known.", "The end."],
    "second": ["ANOTHER", "", "Quite so, said she; quite so!"],
}


def _write_r_data(folder: Path, objects=NOVELS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rdb, rdx = _lazy_load(objects)
    (folder / "Rdata.rdb").write_bytes(rdb)
    (folder / "Rdata.rdx").write_bytes(rdx)


def _deb(objects=NOVELS) -> bytes:
    """A minimal .deb (ar archive) whose data.tar.xz holds the package's R data files."""
    rdb, rdx = _lazy_load(objects)
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:xz") as tar:
        for stem, content in (("Rdata.rdb", rdb), ("Rdata.rdx", rdx)):
            info = tarfile.TarInfo(f"./usr/lib/R/site-library/janeaustenr/data/{stem}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    archive = b"!<arch>\n"
    for name, content in (("debian-binary", b"2.0\n"), ("data.tar.xz", payload.getvalue())):
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}`\n"
        archive += header.encode() + content + (b"\n" if len(content) % 2 else b"")
    return archive


def _expected_text(objects=NOVELS, fraction=0.1):
    documents = ["\n".join(lines) for lines in objects.values()]
    cuts = [len(d) - int(round(fraction * len(d))) for d in documents]
    train = "\n".join(d[:c] for d, c in zip(documents, cuts, strict=True))
    test = "\n".join(d[c:] for d, c in zip(documents, cuts, strict=True))
    return train, test


@pytest.fixture
def quiet_roots(monkeypatch, tmp_path):
    monkeypatch.delenv("MUPC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = text_module._CORPORA["austen"]
    monkeypatch.setitem(text_module._CORPORA, "austen", dataclasses.replace(spec, system_dirs=()))


# ------------------------------------------------------------------------------------- tests


def test_the_r_reader_reads_what_the_independent_serialiser_wrote(tmp_path):
    _write_r_data(tmp_path)
    assert read_lazy_load(tmp_path) == NOVELS
    assert unserialize(_serialise(_ints([3, -4]))) == [3, -4]


@pytest.mark.parametrize("layout", ["flat", "unpacked-package", "deb"])
def test_austen_from_every_local_layout(tmp_path, quiet_roots, layout):
    folder = tmp_path / "data" / "austen"
    if layout == "flat":
        _write_r_data(folder)
    elif layout == "unpacked-package":
        _write_r_data(folder / "usr/lib/R/site-library/janeaustenr/data")
    else:
        folder.mkdir(parents=True)
        (folder / text_module._AUSTEN_PACKAGE).write_bytes(_deb())
    corpus = mupc.load_corpus("austen", data_dir=tmp_path / "data", download=False)
    train, test = _expected_text()
    assert corpus.decode(corpus.train) == train and corpus.decode(corpus.test) == test
    assert corpus.vocabulary == "".join(sorted(set(train + test)))
    assert corpus.train.dtype == np.int32


def test_corrupt_r_data_names_the_file(tmp_path, quiet_roots):
    folder = tmp_path / "austen"
    _write_r_data(folder)
    data = (folder / "Rdata.rdb").read_bytes()
    (folder / "Rdata.rdb").write_bytes(data[:10] + b"\x00" * 20 + data[30:])
    with pytest.raises(DatasetError, match="Rdata.rdb"):
        mupc.load_corpus("austen", data_dir=tmp_path, download=False)
    (folder / "Rdata.rdb").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="beyond the end"):
        mupc.load_corpus("austen", data_dir=tmp_path, download=False)


def test_a_missing_corpus_without_download_says_where_to_put_it(tmp_path, quiet_roots):
    with pytest.raises(FileNotFoundError, match="austen"):
        mupc.load_corpus("austen", data_dir=tmp_path, download=False)
    with pytest.raises(ValueError, match="unknown corpus"):
        mupc.load_corpus("enwik9")


def _serve(tmp_path, monkeypatch, content: bytes, *, sha: str | None, name="tiny-shakespeare"):
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    (mirror / "input.txt").write_bytes(content)
    spec = text_module._CORPORA[name]
    file = RemoteFile("input.txt", ((mirror / "input.txt").as_uri(),), sha, len(content))
    monkeypatch.setitem(text_module._CORPORA, name, dataclasses.replace(spec, files=(file,)))


def test_download_verifies_and_then_reads_offline(tmp_path, quiet_roots, monkeypatch):
    content = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20
    data = content.encode()
    _serve(tmp_path, monkeypatch, data, sha=hashlib.sha256(data).hexdigest())
    corpus = mupc.load_corpus("tiny-shakespeare", data_dir=tmp_path / "d")
    assert (tmp_path / "d" / "tiny-shakespeare" / "input.txt").read_bytes() == data
    assert corpus.decode(corpus.train) + corpus.decode(corpus.test) == content
    (tmp_path / "mirror" / "input.txt").unlink()  # now offline: the copy is used
    again = mupc.load_corpus("tiny-shakespeare", data_dir=tmp_path / "d")
    np.testing.assert_array_equal(again.train, corpus.train)


def test_download_with_a_bad_checksum_keeps_nothing(tmp_path, quiet_roots, monkeypatch):
    _serve(tmp_path, monkeypatch, b"some text\n", sha="0" * 64)
    with pytest.raises(DatasetError, match="checksum mismatch"):
        mupc.load_corpus("tiny-shakespeare", data_dir=tmp_path / "d")
    assert not (tmp_path / "d" / "tiny-shakespeare" / "input.txt").exists()


def test_the_austen_package_is_downloaded_and_read(tmp_path, quiet_roots, monkeypatch):
    deb = _deb()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / text_module._AUSTEN_PACKAGE).write_bytes(deb)
    spec = text_module._CORPORA["austen"]
    remote = dataclasses.replace(
        spec.files[0],
        urls=((mirror / text_module._AUSTEN_PACKAGE).as_uri(),),
        sha256=hashlib.sha256(deb).hexdigest(),
        size=len(deb),
    )
    monkeypatch.setitem(text_module._CORPORA, "austen", dataclasses.replace(spec, files=(remote,)))
    corpus = mupc.load_corpus("austen", data_dir=tmp_path / "d")
    assert corpus.decode(corpus.train) == _expected_text()[0]


def test_windows_batches_and_one_hot_targets():
    ids = np.arange(23, dtype=np.int32)
    windows = mupc.text_windows(ids, 5)
    assert windows.inputs.shape == (4, 5)
    np.testing.assert_array_equal(windows.inputs[1], [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(windows.targets[1], [6, 7, 8, 9, 10])
    batches = list(mupc.iterate_text_batches(windows, 2, seed=0, epoch=0))
    seen = np.concatenate([x for x, _ in batches])
    assert sorted(seen[:, 0].tolist()) == [0, 5, 10, 15]
    for x, y in batches:
        np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(ValueError, match="no window"):
        mupc.text_windows(ids[:3], 5)


def test_ngram_floors_equal_counts_done_by_hand():
    train = np.array([0, 1, 0, 1, 1, 2])
    test = np.array([1, 0, 2])
    vocab = 3
    # unigram with add-one: counts (2, 3, 1), total 6
    unigram = -np.mean([math.log((c + 1) / 9) for c in (3, 2, 1)])
    assert mupc.ngram_cross_entropy(train, test, vocab, 1) == pytest.approx(unigram)
    # bigram: pairs 01, 10, 01, 11, 12; test pairs 10, 02
    p10 = (1 + 1) / (3 + 3)  # history 1 seen 3 times, 1→0 once
    p02 = (0 + 1) / (2 + 3)  # history 0 seen twice, 0→2 never
    bigram = -np.mean([math.log(p10), math.log(p02)])
    assert mupc.ngram_cross_entropy(train, test, vocab, 2) == pytest.approx(bigram)
