"""Batching: deterministic, resumable shuffled mini-batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


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

    - `ValueError`: mismatched lengths, `batch_size`, `seed`, `epoch`, `start` out of range,
      or a `batch_size` larger than `n` with `drop_last=True` (no batch at all); raised when
      the generator is created, not on first use.
    """
    n = len(images)
    if len(labels) != n:
        raise ValueError(
            f"iterate_batches: images has {n} examples but labels has {len(labels)}; expected "
            "the same number"
        )
    total = num_batches(n, batch_size, drop_last)
    if total == 0 and n > 0:
        raise ValueError(
            f"iterate_batches: batch_size={batch_size} is larger than the {n} examples and "
            "drop_last=True, so there would be no batch; use a batch of at most "
            f"{n} examples or drop_last=False"
        )
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
