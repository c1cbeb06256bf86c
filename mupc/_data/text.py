"""Character-level text corpora for language models: lookup, download, splits, batches and
the n-gram floors a model must beat.

Built in:

- `"austen"`: Jane Austen's six novels (about 4.0 M characters, 81 distinct), from Debian's
  `r-cran-janeaustenr` package: read from an installed package, from its files unpacked into
  the data folder, or from the `.deb` itself (downloaded from Debian's mirrors and verified by
  its SHA-256); no R needed.
- `"tiny-shakespeare"`: the 1.1 M-character Tiny Shakespeare text (downloaded).

Splits: the last `test_fraction` (10 %) of every document is held out, so the test text is
unseen and spread over every document. Characters are numbered in sorted order over the whole
corpus (so the test text has no unknown characters).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from .base import DatasetError, RemoteFile
from .batching import iterate_batches
from .rdata import read_lazy_load


class TextCorpus(NamedTuple):
    """A character corpus split into training and test text.

    **Fields:** `train`, `test` (int32 character ids), `vocabulary` (the characters by id),
    `name`, `directory` (where it was read from; None for generated text).
    """

    train: np.ndarray
    test: np.ndarray
    vocabulary: str
    name: str
    directory: str | None = None

    @property
    def vocab_size(self) -> int:
        """V, the number of distinct characters."""
        return len(self.vocabulary)

    def encode(self, text: str) -> np.ndarray:
        """Character ids of `text`.

        **Raises:** `ValueError` naming a character outside the vocabulary.
        """
        index = {c: i for i, c in enumerate(self.vocabulary)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"characters {unknown!r} are not in the {self.name!r} vocabulary")
        return np.array([index[c] for c in text], np.int32)

    def decode(self, ids) -> str:
        """The text of character ids."""
        return "".join(self.vocabulary[int(i)] for i in np.asarray(ids).ravel())


class _TextFormat(Protocol):
    def is_complete(self, directory: Path) -> bool: ...

    def documents(self, directory: Path) -> list[str]: ...


_AUSTEN_PACKAGE = "r-cran-janeaustenr_1.0.0-1_all.deb"
_AUSTEN_DATA = Path("usr/lib/R/site-library/janeaustenr/data")


def _ar_member(archive: bytes, prefix: str, source: Path) -> tuple[str, bytes]:
    """The first member of a Unix `ar` archive (a `.deb`) whose name starts with `prefix`."""
    if archive[:8] != b"!<arch>\n":
        raise DatasetError(f"{source}: not a Debian package (no ar header)")
    position = 8
    while position + 60 <= len(archive):
        header = archive[position : position + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as error:
            raise DatasetError(f"{source}: corrupt ar member header") from error
        start = position + 60
        if name.startswith(prefix):
            return name, archive[start : start + size]
        position = start + size + (size % 2)
    raise DatasetError(f"{source}: no member {prefix}* in the package")


def _austen_from_package(path: Path) -> dict[str, bytes]:
    """The R data files of `r-cran-janeaustenr` from its `.deb`, read in memory."""
    name, payload = _ar_member(path.read_bytes(), "data.tar", path)
    mode = {"data.tar.xz": "r:xz", "data.tar.gz": "r:gz", "data.tar": "r:"}.get(name)
    if mode is None:
        raise DatasetError(f"{path}: unsupported package payload {name!r}")
    files = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode=mode) as tar:  # type: ignore[call-overload]
            for member in tar.getmembers():
                stem = Path(member.name).name
                if member.isfile() and stem in ("Rdata.rdb", "Rdata.rdx"):
                    handle = tar.extractfile(member)
                    assert handle is not None
                    files[stem] = handle.read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DatasetError(f"{path}: corrupt package payload ({error})") from error
    if len(files) != 2:
        raise DatasetError(f"{path}: the package holds no janeaustenr data files")
    return files


@dataclasses.dataclass(frozen=True)
class _AustenFormat:
    """Jane Austen's novels as R data: `Rdata.rdb` + `Rdata.rdx` in the folder (or in its
    `usr/lib/R/site-library/janeaustenr/data/`, as `dpkg-deb -x` unpacks it), or the `.deb`."""

    def _data_dir(self, directory: Path) -> Path | None:
        for candidate in (directory, directory / _AUSTEN_DATA):
            if (candidate / "Rdata.rdb").is_file() and (candidate / "Rdata.rdx").is_file():
                return candidate
        return None

    def is_complete(self, directory: Path) -> bool:
        return self._data_dir(directory) is not None or (directory / _AUSTEN_PACKAGE).is_file()

    def documents(self, directory: Path) -> list[str]:
        data_dir = self._data_dir(directory)
        if data_dir is None:
            import tempfile

            with tempfile.TemporaryDirectory() as unpacked:
                for stem, content in _austen_from_package(directory / _AUSTEN_PACKAGE).items():
                    (Path(unpacked) / stem).write_bytes(content)
                objects = read_lazy_load(Path(unpacked))
        else:
            objects = read_lazy_load(data_dir)
        novels = []
        for name, lines in objects.items():
            if not isinstance(lines, list) or not all(isinstance(x, str | None) for x in lines):
                raise DatasetError(f"{directory}: object {name!r} is not a character vector")
            novels.append("\n".join(line or "" for line in lines))
        if not novels:
            raise DatasetError(f"{directory}: the R data holds no novels")
        return novels


@dataclasses.dataclass(frozen=True)
class _PlainTextFormat:
    """One UTF-8 text file."""

    filename: str

    def is_complete(self, directory: Path) -> bool:
        return (directory / self.filename).is_file()

    def documents(self, directory: Path) -> list[str]:
        path = directory / self.filename
        try:
            return [path.read_text(encoding="utf-8")]
        except UnicodeDecodeError as error:
            raise DatasetError(f"{path}: not UTF-8 text ({error})") from error


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """Everything `load_corpus` needs to know about one corpus (as `DatasetSpec` for images).

    **Fields:** `name`, `format` (finds and reads the documents), `files` (what to download),
    `system_dirs` (searched after the user's folders), `test_fraction` (of every document,
    held out at its end), `source` (provenance and licence, one line).
    """

    name: str
    format: _TextFormat
    files: tuple[RemoteFile, ...]
    system_dirs: tuple[Path, ...] = ()
    test_fraction: float = 0.1
    source: str = ""


_DEBIAN_POOL = "pool/main/r/r-cran-janeaustenr/" + _AUSTEN_PACKAGE
_CORPORA: dict[str, CorpusSpec] = {
    spec.name: spec
    for spec in (
        CorpusSpec(
            name="austen",
            format=_AustenFormat(),
            files=(
                RemoteFile(
                    _AUSTEN_PACKAGE,
                    tuple(
                        mirror + _DEBIAN_POOL
                        for mirror in (
                            "http://deb.debian.org/debian/",
                            "http://ftp.debian.org/debian/",
                        )
                    ),
                    # As listed in Debian bookworm's Packages index (apt-cache show).
                    "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
                    1_626_392,
                ),
            ),
            system_dirs=(Path("/") / _AUSTEN_DATA,),
            source="Jane Austen's six novels (public domain), Debian package r-cran-janeaustenr "
            "(MIT, Julia Silge)",
        ),
        CorpusSpec(
            name="tiny-shakespeare",
            format=_PlainTextFormat("input.txt"),
            files=(
                RemoteFile(
                    "input.txt",
                    (
                        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                        "tinyshakespeare/input.txt",
                    ),
                    None,  # no published checksum: the size and UTF-8 decoding guard it
                    1_115_394,
                ),
            ),
            source="Tiny Shakespeare (Andrej Karpathy, char-rnn, MIT)",
        ),
    )
}


def corpus_names() -> tuple[str, ...]:
    """The names `load_corpus` accepts: `("austen", "tiny-shakespeare")`."""
    return tuple(_CORPORA)


def split_documents(documents: list[str], test_fraction: float) -> tuple[str, str]:
    """The training and test text: the last `test_fraction` of each document is test text;
    the documents' parts are joined with a newline."""
    train, test = [], []
    for document in documents:
        cut = len(document) - int(round(test_fraction * len(document)))
        train.append(document[:cut])
        test.append(document[cut:])
    return "\n".join(train), "\n".join(test)


def corpus_from_documents(
    documents: list[str], name: str, test_fraction: float = 0.1, directory: str | None = None
) -> TextCorpus:
    """A `TextCorpus` from raw documents (the vocabulary is every character that occurs)."""
    train, test = split_documents(documents, test_fraction)
    vocabulary = "".join(sorted(set(train) | set(test)))
    corpus = TextCorpus(np.zeros(0, np.int32), np.zeros(0, np.int32), vocabulary, name, directory)
    return corpus._replace(train=corpus.encode(train), test=corpus.encode(test))


def locate_corpus(
    name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True
) -> Path:
    """The folder `load_corpus(name, data_dir=data_dir)` reads, downloading it if needed.

    **Raises:** as `load_corpus` (without parsing the files).
    """
    from .download import _locate

    if name not in _CORPORA:
        raise ValueError(f"unknown corpus name={name!r}; expected one of {list(_CORPORA)}")
    return _locate(_CORPORA[name], data_dir, download)  # type: ignore[arg-type]


def load_corpus(
    name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True
) -> TextCorpus:
    """Load a character corpus by name, downloading it (verified) if no local copy is found.

    Folders searched, in order: `data_dir/<name>/`, `$MUPC_DATA/<name>/`,
    `~/.cache/mupc/<name>/`, then the corpus's system folders (for `"austen"`, an installed
    `r-cran-janeaustenr`).

    **Raises:** `ValueError` for an unknown name; `FileNotFoundError` or
    `mupc._data.download.DownloadError` when it is missing and cannot be fetched;
    `DatasetError` naming the file when a file is corrupt.
    """
    directory = locate_corpus(name, data_dir=data_dir, download=download)
    spec = _CORPORA[name]
    documents = spec.format.documents(directory)
    return corpus_from_documents(documents, name, spec.test_fraction, str(directory))


class TextWindows(NamedTuple):
    """Non-overlapping windows of a text: `inputs` (n, T) character ids and `targets` (n, T)
    the next character of each position."""

    inputs: np.ndarray
    targets: np.ndarray


def text_windows(ids: np.ndarray, context: int) -> TextWindows:
    """Cut `ids` into n = ⌊(len - 1) / T⌋ windows of T inputs, each with its T next-character
    targets (window k covers characters kT .. kT + T).

    **Raises:** `ValueError` if the text is shorter than one window.
    """
    ids = np.asarray(ids, np.int32)
    count = (len(ids) - 1) // context
    if count < 1:
        raise ValueError(f"a text of {len(ids)} characters holds no window of {context} + 1")
    starts = np.arange(count)[:, None] * context + np.arange(context)[None, :]
    return TextWindows(ids[starts], ids[starts + 1])


def iterate_text_batches(
    windows: TextWindows, batch_size: int, *, seed: int, epoch: int, start: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled batches of windows, `(inputs (B, T), targets (B, T))` int32, in the order of
    `mupc.iterate_batches` (reproducible and resumable by `(seed, epoch, start)`)."""
    return iterate_batches(
        windows.inputs, windows.targets, batch_size, seed=seed, epoch=epoch, start=start
    )


def one_hot_tokens(ids: np.ndarray, vocab_size: int, dtype=np.float32) -> np.ndarray:
    """(..., ) ids → (..., V) one-hot."""
    return np.eye(vocab_size, dtype=dtype)[np.asarray(ids)]


def ngram_cross_entropy(
    train: np.ndarray, test: np.ndarray, vocab_size: int, order: int, smoothing: float = 1.0
) -> float:
    """Held-out cross-entropy (nats per character) of an add-`smoothing` n-gram model of
    `order` (1: unigram, 2: bigram) fitted on `train`, evaluated on `test`:

    $$-\\frac{1}{|t|}\\sum_i \\log \\frac{c(h_i, t_i) + \\alpha}{c(h_i) + \\alpha V},$$

    $h_i$ the previous `order` - 1 characters. The floor a language model must beat."""
    if order < 1:
        raise ValueError(f"`order` must be ≥ 1, got {order!r}")
    train, test = np.asarray(train, np.int64), np.asarray(test, np.int64)
    context = order - 1

    def codes(ids):
        code = np.zeros(len(ids) - context, np.int64)
        for k in range(order):
            code = code * vocab_size + ids[k : len(ids) - context + k]
        return code

    grams = np.bincount(codes(train), minlength=vocab_size**order).astype(np.float64)
    histories = grams.reshape(-1, vocab_size).sum(axis=1)
    test_codes = codes(test)
    numerator = grams[test_codes] + smoothing
    denominator = histories[test_codes // vocab_size] + smoothing * vocab_size
    return float(-np.mean(np.log(numerator / denominator)))


def perplexity(nats_per_character: float) -> float:
    """$e^{H}$ for a cross-entropy H in nats per character."""
    return math.exp(nats_per_character)
