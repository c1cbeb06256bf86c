"""Checks on user data, run eagerly before a compiled step (errors name the bad value)."""

import numpy as np


def check_targets(inputs, targets, num_classes: int, check_finite: bool = True) -> None:
    """Raise `ValueError` unless `targets` is (B, C) with the batch size of `inputs` (B ≥ 1),
    and (with `check_finite`) both are finite. Shared by every network's `check_batch`."""
    out_shape = np.shape(targets)
    if len(out_shape) != 2 or out_shape[1] != num_classes:
        raise ValueError(
            f"`targets` must have shape (batch, {num_classes}) for this network (output_dim="
            f"{num_classes}), got {out_shape}. Classification labels must be one-hot."
        )
    check_matching_batch(inputs, targets)
    if check_finite:
        check_finite_arrays(inputs=inputs, targets=targets)


def check_matching_batch(inputs, targets) -> None:
    """Raise `ValueError` unless `inputs` and `targets` have the same batch size B ≥ 1."""
    in_rows, out_rows = np.shape(inputs)[0], np.shape(targets)[0]
    if in_rows != out_rows:
        raise ValueError(
            f"`inputs` and `targets` must have the same batch size, got {in_rows} and {out_rows}."
        )
    if in_rows == 0:
        raise ValueError("Empty batch: `inputs` has 0 rows.")


def check_finite_arrays(**arrays) -> None:
    """Raise `ValueError` naming the first array (by keyword) that holds NaN or inf."""
    for name, value in arrays.items():
        finite = np.isfinite(np.asarray(value))
        if not finite.all():
            row = int(np.argwhere(~finite)[0][0])
            raise ValueError(
                f"`{name}` contains NaN or inf ({int((~finite).sum())} entries, first in "
                f"row {row}); clean the data before training."
            )


def check_instance(name: str, value, kind, expected: str) -> None:
    """**Raises:** `ValueError` naming the argument `name` unless `value` is a `kind` (a class
    or a tuple of classes), described to the user as `expected` (e.g. "a mupc.TrainState")."""
    if not isinstance(value, kind):
        raise ValueError(f"`{name}` must be {expected}, got {type(value).__name__}.")
