"""Argument types shared by the commands: every number must be finite and in range.

`argparse` calls them on the text of a flag; a bad value is a usage error naming the flag.
"""

import argparse
import math


def positive_int(text: str) -> int:
    """An integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer ≥ 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (`inf`, `nan` and overflowing numbers such as `1e400` refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def positive_float_or_none(text: str) -> float | None:
    """A finite number > 0, or `none`."""
    if text.strip().lower() == "none":
        return None
    return positive_float(text)


def threshold(text: str) -> float | None:
    """A finite number > 1, or `none` (no threshold)."""
    if text.strip().lower() == "none":
        return None
    value = positive_float(text)
    if not value > 1:
        raise argparse.ArgumentTypeError(f"expected a number > 1 or 'none', got {text!r}")
    return value
