"""Checks on user data, run eagerly before a compiled step (errors name the bad value)."""

import numpy as np

from ._network import NetworkConfig


def check_batch(config: NetworkConfig, inputs, targets, *, check_finite: bool = True) -> None:
    """Raise `ValueError` unless `inputs` is (B, D) and `targets` is (B, C), both finite."""
    d, c = config.input_dim, config.output_dim
    in_shape, out_shape = np.shape(inputs), np.shape(targets)
    if len(in_shape) != 2 or in_shape[1] != d:
        raise ValueError(
            f"`inputs` must have shape (batch, {d}) for this network (input_dim={d}), got "
            f"{in_shape}. Flatten images to vectors first."
        )
    if len(out_shape) != 2 or out_shape[1] != c:
        raise ValueError(
            f"`targets` must have shape (batch, {c}) for this network (output_dim={c}), got "
            f"{out_shape}. Classification labels must be one-hot."
        )
    if in_shape[0] != out_shape[0]:
        raise ValueError(
            f"`inputs` and `targets` must have the same batch size, got {in_shape[0]} and "
            f"{out_shape[0]}."
        )
    if in_shape[0] == 0:
        raise ValueError("Empty batch: `inputs` has 0 rows.")
    if check_finite:
        for name, value in (("inputs", inputs), ("targets", targets)):
            finite = np.isfinite(np.asarray(value))
            if not finite.all():
                row = int(np.argwhere(~finite)[0][0])
                raise ValueError(
                    f"`{name}` contains NaN or inf ({int((~finite).sum())} entries, first in "
                    f"row {row}); clean the data before training."
                )
