"""The data of a run: the dataset its configuration names, cut to `train_examples`."""

import math
import sys
from pathlib import Path

from .._data import Layout
from ._config import SYNTHETIC, RunConfig


def load_run_data(config: RunConfig, layout: Layout | None = None):
    """The dataset named by `config.dataset` (a `mupc.Dataset`) in `layout` (default: the one
    the configured network takes), keeping only the first `config.train_examples` training
    examples when that is set."""
    data = _load_data(config, layout or config.layout)  # type: ignore[arg-type]
    if config.train_examples is not None:
        if config.train_examples > data.train_images.shape[0]:
            raise ValueError(
                f"`train_examples` = {config.train_examples} exceeds the "
                f"{data.train_images.shape[0]} training examples of {config.dataset!r}."
            )
        count = config.train_examples
        data = data._replace(
            train_images=data.train_images[:count], train_labels=data.train_labels[:count]
        )
    return data


def _load_data(config: RunConfig, layout: Layout):
    from .._data import load_dataset, synthetic_dataset

    if config.is_text:
        return _text_windows(config)
    if config.dataset == "synthetic":
        if layout == "flat":
            return synthetic_dataset(seed=0, **SYNTHETIC)  # type: ignore[arg-type]
        side = int(math.isqrt(SYNTHETIC["input_dim"]))  # 64 = 8 x 8 x 1
        sizes = SYNTHETIC
        return synthetic_dataset(
            sizes["n_train"], sizes["n_test"], sizes["input_dim"], sizes["num_classes"],
            seed=0, image_shape=(1, side, side), layout=layout,
        )  # fmt: skip
    return load_dataset(config.dataset, data_dir=config.data_dir, seed=0, layout=layout)


def note_data_folder(config: RunConfig, data) -> None:
    """Say so when `data_dir` was given but the files were read from another folder."""
    if config.data_dir is None or data.directory is None:
        return
    asked = Path(config.data_dir).expanduser().resolve()
    if not Path(data.directory).resolve().is_relative_to(asked):
        print(
            f"mupc: {asked / data.name} holds no copy of {data.name!r}; read {data.directory} "
            "instead",
            file=sys.stderr,
        )


def _text_windows(config: RunConfig):
    """A text corpus as a `Dataset` of windows: inputs (n, T) character ids (float32, as every
    network's inputs), labels (n, T) int32 ids of the next characters (one-hot one batch at a
    time), `num_classes` the vocabulary size, `vocabulary` its characters."""
    import numpy as np

    from .._data import Dataset, load_corpus, text_windows

    corpus = load_corpus(config.dataset, data_dir=config.data_dir)
    train, test = (text_windows(ids, config.context) for ids in (corpus.train, corpus.test))
    return Dataset(
        train.inputs.astype(np.float32), train.targets, test.inputs.astype(np.float32),
        test.targets, corpus.name, corpus.vocab_size, (config.context,), "flat",
        corpus.directory, corpus.vocabulary,
    )  # fmt: skip
