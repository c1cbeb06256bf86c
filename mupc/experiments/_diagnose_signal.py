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
    their defaults), `network` (`"mlp"`, `"conv"` or `"transformer"`), `depth` H (the
    transformer: blocks), `width` N, `stages` (conv), `head_dim` and `context` (the
    transformer's $d_{\text{head}}$ and, on a text corpus, its context), `param`,
    `activation`, `dataset` (a text corpus too, for the transformer), `data_dir`, `batch_size`
    (the first rows of the training set), `seed` (the fresh network's weights). A transformer
    is measured under cross-entropy, the other networks under the squared error.
    """

    settings: tuple[str, ...] = DEFAULT_SIGNAL_SETTINGS
    checkpoint: str | None = None
    network: Literal["mlp", "conv", "transformer"] = "mlp"
    depth: int = 128
    width: int = 128
    stages: int = 3
    head_dim: int = 16
    context: int = 64
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
        for name in ("depth", "width", "stages", "head_dim", "context", "batch_size"):
            _positive(name, getattr(self, name))
        if self.network not in ("mlp", "conv", "transformer"):
            raise ValueError(
                f"`network` must be 'mlp', 'conv' or 'transformer', got {self.network!r}."
            )
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
    import numpy as np

    from .._checkpoint import load_network
    from .._diagnostics.signal import (
        SIGNAL_COLUMNS,
        decile_summary,
        learning_signal,
        parse_setting,
        plot_signal,
        signal_rows,
    )
    from .._loss import MSE, CrossEntropy
    from ._config import NetworkKind, RunConfig
    from ._run_data import load_run_data

    say = echo if echo is not None else (lambda line: None)
    network = None
    if experiment.checkpoint is not None:
        network = load_network(experiment.checkpoint)
        where = f"the network of {experiment.checkpoint}"
    kinds: dict[str, NetworkKind] = {"conv-resnet": "conv", "transformer": "transformer"}
    kind = kinds.get(network.kind if network is not None else "", experiment.network)
    if network is not None and kind == "transformer" and network.config.vocab_size:
        context = network.config.input_shape[0]  # a language model's window
    else:
        context = experiment.context
    config = RunConfig(
        dataset=experiment.dataset, data_dir=experiment.data_dir, network=kind,
        depth=experiment.depth, width=experiment.width, stages=experiment.stages,
        head_dim=experiment.head_dim, context=context, activation=experiment.activation,
        parameterisation=experiment.param,
    )  # fmt: skip
    if network is None:
        where = f"{config.label.split(' ', 1)[1]}, {experiment.activation}, at initialisation"
    data = load_run_data(config)
    if network is None:
        network = config.build_network(
            data.train_images.shape[1:], data.num_classes, key=jax.random.key(experiment.seed),
            dtype=None,
        )  # fmt: skip
    loss = CrossEntropy() if kind == "transformer" else MSE()
    inputs = data.train_images[: experiment.batch_size]
    targets = np.asarray(data.train_labels[: experiment.batch_size])
    if np.issubdtype(targets.dtype, np.integer):  # class ids (a text corpus): one-hot
        targets = np.eye(data.num_classes, dtype=np.float32)[targets]
    settings = [parse_setting(spec, network.num_layers, loss) for spec in experiment.settings]
    out.mkdir(parents=True, exist_ok=True)
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
