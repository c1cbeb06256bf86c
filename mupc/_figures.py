"""Matplotlib without a screen, and figures written atomically (shared by every plot)."""

import os

from ._atomic import atomic_open


def pyplot():
    """`matplotlib.pyplot` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | os.PathLike, dpi: int = 90) -> None:
    """Write `figure` as a PNG to `path` atomically, then close it."""
    plt = pyplot()
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, dpi=dpi, format="png")
    plt.close(figure)
