"""The coordinate-check experiment (`mupc diagnose coords`): per-layer RMS of activities,
errors, activity and weight updates across width and depth, for each parameterisation
(`coords.csv`, `coords.png`).

Seeding and data: `mupc.experiments._diagnose`.
"""

import dataclasses
from pathlib import Path
from typing import Any

from ._diagnose import (
    DiagnosticGrid,
    Echo,
    _positive,
    finite,
    grid_batch,
    grid_network,
    grid_trainer,
    log_ticks,
    mean_by,
    progress,
    pyplot,
    save_figure,
    summary_lines,
    write_csv,
)

COORD_COLUMNS = [
    "param",
    "skips",
    "activation",
    "width",
    "depth",
    "step",
    "quantity",
    "layer",
    "rms",
]


@dataclasses.dataclass(frozen=True)
class CoordsExperiment(DiagnosticGrid):
    """The grid and options of `diagnose_coords` (defaults: those of `mupc diagnose coords`).

    **Fields** (besides `DiagnosticGrid`'s): `steps` (training steps recorded), `skips`.
    """

    widths: tuple[int, ...] = (32, 64, 128, 256)
    depths: tuple[int, ...] = (4, 32)
    params: tuple[str, ...] = ("sp", "mupc", "ntp")
    activation: str = "relu"
    steps: int = 3
    skips: bool = True

    def __post_init__(self):
        super().__post_init__()
        _positive("steps", self.steps)


def diagnose_coords(
    experiment: CoordsExperiment, out: str | Path, *, echo: Echo | None = None
) -> list[dict[str, Any]]:
    """Run the coordinate check (`mupc.coordinate_check`) at every grid point; write
    `coords.csv` (`COORD_COLUMNS`, one row per grid point, step, quantity and layer) and
    `coords.png` to `out`.

    **Arguments:** `experiment`, the grid and options; `out`, the output folder (created);
    `echo`, called with each line of the text summary (e.g. `print`), or None.

    **Returns:** the rows of `coords.csv`.
    """
    import jax
    import numpy as np

    from .._diagnostics.coords import QUANTITIES, coordinate_check

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(experiment.seed)
    rows: list[dict[str, Any]] = []
    for param, width, depth in progress(experiment.points(), experiment, "coord check"):
        network = grid_network(
            experiment, param, width, depth, experiment.skips, jax.random.fold_in(key, 2)
        )
        inputs, targets = grid_batch(experiment, key, 1)
        trainer = grid_trainer(experiment)
        state = trainer.init(network, jax.random.fold_in(key, 3))
        _, record = coordinate_check(trainer, state, inputs, targets, experiment.steps)
        for name in QUANTITIES:
            values = np.asarray(getattr(record, name))
            for s, step in enumerate(np.asarray(record.step)):
                for layer, value in enumerate(values[s], start=1):
                    rows.append(
                        dict(
                            param=param,
                            skips=experiment.skips,
                            activation=experiment.activation,
                            width=width,
                            depth=depth,
                            step=int(step),
                            quantity=name,
                            layer=layer,
                            rms=finite(float(value)),
                        )
                    )
        write_csv(out / "coords.csv", rows, COORD_COLUMNS)
    plot_coords(experiment, rows, out / "coords.png")
    if echo is not None:
        last = experiment.steps - 1
        shown = [r for r in rows if r["step"] in (0, last)]
        for line in summary_lines(shown, ["param", "quantity", "step", "width", "depth"], "rms"):
            echo(line)
    return rows


def plot_coords(experiment: CoordsExperiment, rows: list[dict], path: Path) -> None:
    """`coords.png`: per quantity and parameterisation, the RMS (mean over layers) against
    width for each depth, at the first (dashed) and last (solid) step."""
    from .._diagnostics.coords import QUANTITIES

    plt = pyplot()
    params, widths, depths = experiment.params, experiment.widths, experiment.depths
    figure, axes = plt.subplots(
        len(QUANTITIES),
        len(params),
        figsize=(3.2 * len(params), 2.2 * len(QUANTITIES)),
        squeeze=False,
        sharex=True,
        constrained_layout=True,
    )
    colours = plt.cm.viridis([i / max(1, len(depths) - 1) for i in range(len(depths))])
    last = experiment.steps - 1
    for col, param in enumerate(params):
        for row, name in enumerate(QUANTITIES):
            ax = axes[row, col]
            for colour, depth in zip(colours, depths, strict=True):
                for step, style in ((0, "--"), (last, "-")):
                    means = mean_by(
                        rows,
                        ["width"],
                        "rms",
                        lambda r, p=param, q=name, h=depth, s=step: (
                            (r["param"], r["quantity"], r["depth"], r["step"]) == (p, q, h, s)
                        ),
                    )
                    if not means:
                        continue
                    xs, ys = zip(*sorted((k[0], v) for k, v in means.items()), strict=True)
                    label = f"H={depth}" if step == last else None
                    ax.plot(xs, ys, style, color=colour, marker=".", label=label)
            ax.set(xscale="log", yscale="log")
            log_ticks(ax.xaxis, widths)
            if row == 0:
                ax.set_title(param, fontsize=9)
            if col == 0:
                ax.set_ylabel(f"rms {name}".replace("_", " "), fontsize=8)
            if row == len(QUANTITIES) - 1:
                ax.set_xlabel("width N")
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(
        f"PC coord check ({experiment.activation}, skips={experiment.skips}): mean over layers; "
        f"dashed step 0, solid step {last}",
        fontsize=9,
    )
    save_figure(figure, path)
