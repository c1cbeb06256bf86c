"""The learning-signal experiment (`mupc diagnose signal`): per layer, the PC weight gradient
against backprop's (norm ratio and cosine, `mupc.learning_signal`) for several inference
settings side by side, on one batch of real digits (`signal.csv`, `signal.png`).

The equations are on the method page of the docs ("The learning signal").
"""

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal

from .. import _published as published
from ._diagnose import ACTIVATION_NAMES, PARAMETERISATION_NAMES, Echo, _positive, write_csv

# The published inference, a 20× larger step, and ePC near and far from equilibrium.
DEFAULT_SIGNAL_SETTINGS = (
    f"gd:{published.ACTIVITY_LR_BATCH_MEAN}/{published.BATCH_SIZE}:H",
    f"gd:10/{published.BATCH_SIZE}:H",
    "epc:0.1:5",
    "epc:0.1:100",
)


@dataclasses.dataclass(frozen=True)
class SignalExperiment:
    """The network, data and settings of `diagnose_signal` (defaults: those of `mupc diagnose
    signal`).

    **Fields:** `settings` (`KIND:LR[:T]` strings, see `parse_setting`), `checkpoint` (measure
    the network of this checkpoint instead of a fresh one; the network fields must then keep
    their defaults), `network` (`"mlp"` or `"conv"`), `depth` H, `width` N, `stages` (conv),
    `param`, `activation`, `dataset`, `data_dir`, `batch_size` (the first rows of the training
    set), `seed` (the fresh network's weights).
    """

    settings: tuple[str, ...] = DEFAULT_SIGNAL_SETTINGS
    checkpoint: str | None = None
    network: Literal["mlp", "conv"] = "mlp"
    depth: int = 128
    width: int = 128
    stages: int = 3
    param: str = "mupc"
    activation: str = "relu"
    dataset: str = "mnist-sample"
    data_dir: str | None = None
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "settings", tuple(self.settings))
        if not self.settings:
            raise ValueError("`settings` must hold at least one KIND:LR[:T] setting.")
        for name in ("depth", "width", "stages", "batch_size"):
            _positive(name, getattr(self, name))
        if self.network not in ("mlp", "conv"):
            raise ValueError(f"`network` must be 'mlp' or 'conv', got {self.network!r}.")
        if self.param not in PARAMETERISATION_NAMES:
            raise ValueError(
                f"`param` {self.param!r} is not one of {', '.join(PARAMETERISATION_NAMES)}."
            )
        if self.activation not in ACTIVATION_NAMES:
            raise ValueError(
                f"`activation` {self.activation!r} is not one of {', '.join(ACTIVATION_NAMES)}."
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"`seed` must be an integer, got {self.seed!r}.")


def diagnose_signal(
    experiment: SignalExperiment, out: str | Path, *, echo: Echo | None = None
) -> list[dict[str, Any]]:
    """Measure the learning signal of every setting on the first `batch_size` training
    examples; write `signal.csv` (`SIGNAL_COLUMNS`: one row per setting and weight layer) and
    `signal.png` to `out`.

    **Arguments:** `experiment`, the network, data and settings; `out`, the output folder
    (created); `echo`, called with a header and one line per setting (the fraction of layers
    with cosine ≥ 0.9 and the mean cosine by decile of depth), e.g. `print`.

    **Returns:** the rows of `signal.csv`.

    **Raises:** `ValueError` for a bad setting or a checkpoint that cannot be read.
    """
    from .._checkpoint import stored_precision

    with stored_precision(experiment.checkpoint):  # a --float64 run's network is float64
        return _diagnose_signal(experiment, Path(out), echo)


def _diagnose_signal(experiment: SignalExperiment, out: Path, echo: Echo | None):
    import jax

    from .._checkpoint import load_network
    from .._data import Layout, load_dataset
    from .._diagnostics.signal import (
        SIGNAL_COLUMNS,
        decile_summary,
        learning_signal,
        parse_setting,
        plot_signal,
        signal_rows,
    )
    from ._config import RunConfig

    say = echo if echo is not None else (lambda line: None)
    if experiment.checkpoint is not None:
        network = load_network(experiment.checkpoint)
        where = f"the network of {experiment.checkpoint}"
    else:
        config = RunConfig(
            network=experiment.network, depth=experiment.depth, width=experiment.width,
            stages=experiment.stages, activation=experiment.activation,
            parameterisation=experiment.param,
        )  # fmt: skip
        network = None
        where = f"{config.label.split(' ', 1)[1]}, {experiment.activation}, at initialisation"
    conv = network.kind == "conv-resnet" if network is not None else experiment.network == "conv"
    layout: Layout = "nhwc" if conv else "flat"
    data = load_dataset(experiment.dataset, data_dir=experiment.data_dir, layout=layout)
    if network is None:
        network = config.build_network(
            data.train_images.shape[1:], data.num_classes, key=jax.random.key(experiment.seed),
            dtype=None,
        )  # fmt: skip
    settings = [parse_setting(spec, network.num_layers) for spec in experiment.settings]
    out.mkdir(parents=True, exist_ok=True)
    inputs = data.train_images[: experiment.batch_size]
    targets = data.train_labels[: experiment.batch_size]
    rows: list[dict[str, Any]] = []
    say(f"{'setting':<28}{'cos ≥ 0.9':>10}   mean cosine by decile of depth (bottom → top)")
    for setting in settings:
        started = time.perf_counter()
        signal = learning_signal(setting.trainer, network, inputs, targets)
        rows.extend(signal_rows(network, setting.label, signal))
        summary = decile_summary(signal)
        deciles = " ".join(f"{value:5.2f}" for value in summary.mean)
        seconds = time.perf_counter() - started
        say(f"{setting.label:<28}{summary.fraction_aligned:>9.0%}   {deciles}  ({seconds:.1f} s)")
    write_csv(out / "signal.csv", rows, SIGNAL_COLUMNS)
    title = f"{where}: one batch of {experiment.batch_size} {experiment.dataset} examples"
    plot_signal(rows, out / "signal.png", title)
    return rows
