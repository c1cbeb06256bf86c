"""The activity-Hessian experiment (`mupc diagnose hessian`): the condition number of the
activity Hessian across depth and width for each parameterisation, with and without skips,
and over a short training run (`hessian.csv`, `hessian.png`).

Seeding and data: `mupc.experiments._diagnose`.
"""

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal

from ._diagnose import (
    DiagnosticGrid,
    Echo,
    _non_negative,
    _positive,
    finite,
    grid_network,
    grid_trainer,
    log_ticks,
    mean_by,
    progress,
    pyplot,
    save_figure,
    shaped,
    summary_lines,
    synthetic_task,
    write_csv,
)

HESSIAN_COLUMNS = [
    "param",
    "skips",
    "activation",
    "width",
    "depth",
    "step",
    "example",
    "method",
    "lambda_min",
    "lambda_max",
    "condition_number",
    "seconds",
]


@dataclasses.dataclass(frozen=True)
class HessianExperiment(DiagnosticGrid):
    """The grid and options of `diagnose_hessian` (defaults: those of `mupc diagnose
    hessian`).

    **Fields** (besides `DiagnosticGrid`'s): `method` (`"auto"`: dense when the activities of
    one example number at most `dense_max`, else Lanczos with `iterations` steps),
    `examples` (probe examples, each measured separately), `train_steps` (0: no tracking),
    `track_every`, `track_width`, `track_depth` (the network tracked during training).
    """

    method: Literal["auto", "dense", "lanczos"] = "auto"
    dense_max: int = 2048
    iterations: int = 256
    examples: int = 1
    train_steps: int = 60
    track_every: int = 10
    track_width: int = 32
    track_depth: int = 8

    def __post_init__(self):
        super().__post_init__()
        if self.method not in ("auto", "dense", "lanczos"):
            raise ValueError(f"`method` must be auto, dense or lanczos, got {self.method!r}.")
        for name in ("dense_max", "iterations", "examples", "track_every"):
            _positive(name, getattr(self, name))
        for name in ("track_width", "track_depth"):
            _positive(name, getattr(self, name))
        _non_negative("train_steps", self.train_steps)


def _method(experiment: HessianExperiment, dim: int):
    from .._diagnostics.hessian import DenseSpectrum, LanczosSpectrum

    if experiment.method == "dense" or (
        experiment.method == "auto" and dim <= experiment.dense_max
    ):
        return "dense", DenseSpectrum()
    return "lanczos", LanczosSpectrum(experiment.iterations)


def _spectrum_rows(experiment: HessianExperiment, network, probe, step, base):
    import jax

    from .._diagnostics.hessian import _activity_dim, hessian_spectrum

    name, method = _method(experiment, _activity_dim(network, probe[0]))
    start = time.perf_counter()
    key = jax.random.key(experiment.seed)
    spectrum = hessian_spectrum(network, *probe, method=method, key=key)
    spectrum.condition_number.block_until_ready()
    seconds = time.perf_counter() - start
    rows = []
    for i in range(probe[0].shape[0]):
        rows.append(
            {
                **base,
                "step": step,
                "example": i,
                "method": name,
                "lambda_min": float(spectrum.lambda_min[i]),
                "lambda_max": float(spectrum.lambda_max[i]),
                "condition_number": float(spectrum.condition_number[i]),
                "seconds": round(seconds, 3),
            }
        )
    return rows


def diagnose_hessian(
    experiment: HessianExperiment, out: str | Path, *, echo: Echo | None = None
) -> list[dict[str, Any]]:
    """Measure the activity Hessian's spectrum at every grid point (at initialisation) and
    over training; write `hessian.csv` (`HESSIAN_COLUMNS`) and `hessian.png` to `out`.

    **Arguments:** `experiment`, the grid and options; `out`, the output folder (created);
    `echo`, called with each line of the text summary (e.g. `print`), or None.

    **Returns:** the rows of `hessian.csv` (one per probe example, grid point and step; the
    rows of the training run have `seconds` = "").
    """
    import jax

    from .._diagnostics.hessian import _activity_dim, track_hessian

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(experiment.seed)
    size = (experiment.input_dim, experiment.output_dim, experiment.examples)
    probe = shaped(experiment, synthetic_task(jax.random.fold_in(key, 1), *size))
    skip_variants = (True,) if experiment.network == "conv" else (True, False)
    variants = [(p, s) for p in experiment.params for s in skip_variants]
    rows: list[dict[str, Any]] = []
    sweep = [
        (p, s, n, h) for p, s in variants for n in experiment.widths for h in experiment.depths
    ]
    activation = experiment.activation
    for param, skips, width, depth in progress(sweep, experiment, "hessian sweep"):
        network = grid_network(experiment, param, width, depth, skips, jax.random.fold_in(key, 2))
        base = dict(param=param, skips=skips, activation=activation, width=width, depth=depth)
        rows += _spectrum_rows(experiment, network, probe, 0, base)
        write_csv(out / "hessian.csv", rows, HESSIAN_COLUMNS)
    tracked = []
    if experiment.train_steps > 0 and experiment.track_every > 0:
        width, depth = experiment.track_width, experiment.track_depth
        for param, skips in progress(variants, experiment, "hessian tracking"):
            network = grid_network(
                experiment, param, width, depth, skips, jax.random.fold_in(key, 2)
            )
            trainer = grid_trainer(experiment)
            state = trainer.init(network, jax.random.fold_in(key, 3))
            batches = (
                shaped(
                    experiment,
                    synthetic_task(
                        jax.random.fold_in(key, 100 + t),
                        experiment.input_dim,
                        experiment.output_dim,
                        experiment.batch_size,
                    ),
                )
                for t in range(experiment.train_steps)
            )
            dim = _activity_dim(network, probe[0])
            base = dict(param=param, skips=skips, activation=activation, width=width, depth=depth)
            run_rows: list[dict[str, Any]] = []

            def record(step, spectrum, base=base, run_rows=run_rows, dim=dim):
                name, _ = _method(experiment, dim)
                for i in range(spectrum.condition_number.shape[0]):
                    run_rows.append(
                        {
                            **base,
                            "step": step,
                            "example": i,
                            "method": name,
                            "lambda_min": float(spectrum.lambda_min[i]),
                            "lambda_max": float(spectrum.lambda_max[i]),
                            "condition_number": finite(float(spectrum.condition_number[i])),
                            "seconds": "",
                        }
                    )

            _, method = _method(experiment, dim)
            track_hessian(
                trainer,
                state,
                batches,
                *probe,
                every=experiment.track_every,
                method=method,
                callback=record,
            )
            tracked += run_rows
        rows += tracked
        write_csv(out / "hessian.csv", rows, HESSIAN_COLUMNS)
    plot_hessian(experiment, rows, out / "hessian.png")
    if echo is not None:
        keys = ["param", "skips", "width", "depth", "step"]
        for line in summary_lines(rows, keys, "condition_number"):
            echo(line)
    return rows


def plot_hessian(experiment: HessianExperiment, rows: list[dict], path: Path) -> None:
    """`hessian.png`: the mean condition number against depth (at the largest width) and
    width (at the largest depth) at initialisation, and over training."""
    plt = pyplot()
    init = [r for r in rows if r["step"] == 0 and r["seconds"] != ""]
    trained = [r for r in rows if r["seconds"] == ""]
    panels = 3 if trained else 2
    figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), constrained_layout=True)
    width, depth = max(experiment.widths), max(experiment.depths)
    variants = [(p, s) for p in experiment.params for s in (True, False)]
    colours = {p: f"C{i}" for i, p in enumerate(experiment.params)}
    for param, skips in variants:
        label = f"{param}, {'skips' if skips else 'no skips'}"
        style = dict(color=colours[param], linestyle="-" if skips else "--")
        by_depth = mean_by(
            init,
            ["depth"],
            "condition_number",
            lambda r, p=param, s=skips: (r["param"], r["skips"], r["width"]) == (p, s, width),
        )
        by_width = mean_by(
            init,
            ["width"],
            "condition_number",
            lambda r, p=param, s=skips: (r["param"], r["skips"], r["depth"]) == (p, s, depth),
        )
        axes[0].plot(
            *zip(*sorted((k[0], v) for k, v in by_depth.items()), strict=True),
            **style,
            marker="o",
            label=label,
        )
        axes[1].plot(
            *zip(*sorted((k[0], v) for k, v in by_width.items()), strict=True),
            **style,
            marker="o",
            label=label,
        )
        if trained:
            by_step = mean_by(
                trained,
                ["step"],
                "condition_number",
                lambda r, p=param, s=skips: (r["param"], r["skips"]) == (p, s),
            )
            if by_step:
                axes[2].plot(
                    *zip(*sorted((k[0], v) for k, v in by_step.items()), strict=True),
                    **style,
                    marker=".",
                    label=label,
                )
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="depth H",
        ylabel="condition number κ",
        title=f"at init, N = {width}",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="width N",
        ylabel="condition number κ",
        title=f"at init, H = {depth}",
    )
    if trained:
        axes[2].set(
            yscale="log",
            xlabel="training step",
            ylabel="condition number κ",
            title=f"training, N = {experiment.track_width}, H = {experiment.track_depth}",
        )
    log_ticks(axes[0].xaxis, experiment.depths)
    log_ticks(axes[1].xaxis, experiment.widths)
    axes[0].legend(fontsize=7)
    title = f"activity Hessian at the feedforward pass ({experiment.activation})"
    figure.suptitle(title, fontsize=9)
    save_figure(figure, path)
