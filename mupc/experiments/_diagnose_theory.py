"""The linear-theory experiment (`mupc diagnose theory`): the ratio of the MSE loss to the
equilibrium energy of linear networks over (N, H), at initialisation and after training
(`theory.csv`, `theory.png`).

Seeding and data: `mupc.experiments._diagnose`.
"""

import dataclasses
import math
from pathlib import Path
from typing import Any

from ._diagnose import (
    DiagnosticGrid,
    Echo,
    _non_negative,
    _positive,
    finite,
    grid_batch,
    grid_network,
    grid_trainer,
    progress,
    pyplot,
    save_figure,
    write_csv,
)

THEORY_COLUMNS = [
    "param",
    "width",
    "depth",
    "h_over_n",
    "step",
    "loss",
    "equilibrium_energy",
    "ratio",
    "s_mean_eigenvalue",
]


@dataclasses.dataclass(frozen=True)
class TheoryExperiment(DiagnosticGrid):
    """The grid and options of `diagnose_theory` (defaults: those of `mupc diagnose theory`).
    The closed forms hold for linear MLPs only.

    **Fields** (besides `DiagnosticGrid`'s): `train_steps`, `record_every` (measure every
    this many steps and at the end).
    """

    widths: tuple[int, ...] = (16, 32, 64, 128)
    depths: tuple[int, ...] = (2, 8, 32)
    params: tuple[str, ...] = ("mupc", "sp")
    activation: str = "linear"
    train_steps: int = 20
    record_every: int = 10

    def __post_init__(self):
        super().__post_init__()
        if self.activation != "linear":
            raise ValueError(
                f"`activation` must be 'linear' (the closed forms hold for linear networks "
                f"only), got {self.activation!r}."
            )
        if self.network != "mlp":
            raise ValueError(f"`network` must be 'mlp' for the theory, got {self.network!r}.")
        _non_negative("train_steps", self.train_steps)
        _positive("record_every", self.record_every)


def diagnose_theory(
    experiment: TheoryExperiment, out: str | Path, *, echo: Echo | None = None
) -> list[dict[str, Any]]:
    """At every grid point, the MSE loss and the equilibrium energy $F^*$ of the linear
    network (`mupc.equilibrium_energy`) on the probe batch at initialisation, every
    `record_every` training steps and at the end; write `theory.csv` (`THEORY_COLUMNS`;
    `ratio` = loss / $F^*$, NaN when $F^* \\le 0$) and `theory.png` to `out`.

    **Arguments:** `experiment`, the grid and options; `out`, the output folder (created);
    `echo`, called with a line per grid point at steps 0 and `train_steps` (e.g. `print`).

    **Returns:** the rows of `theory.csv`.
    """
    import jax
    import jax.numpy as jnp

    from .._diagnostics.theory import equilibrium_energy

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(experiment.seed)
    rows: list[dict[str, Any]] = []
    measure_jit = jax.jit(equilibrium_energy)
    for param, width, depth in progress(experiment.points(), experiment, "theory"):
        network = grid_network(experiment, param, width, depth, True, jax.random.fold_in(key, 2))
        probe = grid_batch(experiment, key, 1)
        trainer = grid_trainer(experiment)
        state = trainer.init(network, jax.random.fold_in(key, 3))

        def measure(state, param=param, width=width, depth=depth, probe=probe):
            eq = measure_jit(state.network, *probe)
            loss, energy = float(jnp.mean(eq.loss)), float(jnp.mean(eq.energy))
            rows.append(
                dict(
                    param=param,
                    width=width,
                    depth=depth,
                    h_over_n=round(depth / width, 6),
                    step=int(state.step),
                    loss=finite(loss),
                    equilibrium_energy=finite(energy),
                    ratio=finite(loss / energy) if energy > 0 else float("nan"),
                    s_mean_eigenvalue=finite(float(jnp.mean(eq.covariance_eigenvalues))),
                )
            )

        measure(state)
        for t in range(experiment.train_steps):
            batch = grid_batch(experiment, key, 100 + t)
            state, _ = trainer.step(state, *batch)
            if (t + 1) % experiment.record_every == 0 or t + 1 == experiment.train_steps:
                measure(state)
        write_csv(out / "theory.csv", rows, THEORY_COLUMNS)
    plot_theory(experiment, rows, out / "theory.png")
    if echo is not None:
        for row in rows:
            if row["step"] in (0, experiment.train_steps):
                echo(
                    f"{row['param']} N={row['width']} H={row['depth']} step={row['step']} "
                    f"loss/energy={row['ratio']:.4g} mean eig S={row['s_mean_eigenvalue']:.4g}"
                )
    return rows


def plot_theory(experiment: TheoryExperiment, rows: list[dict], path: Path) -> None:
    """`theory.png`: heat maps of log10(loss / F*) over (N, H) per parameterisation, at
    initialisation and after training."""
    import numpy as np

    plt = pyplot()
    params, widths, depths = experiment.params, list(experiment.widths), list(experiment.depths)
    steps = sorted({0, experiment.train_steps})
    logs = [np.log10(r["ratio"]) for r in rows if r["step"] in steps and r["ratio"] > 0]
    finite_logs = [v for v in logs if math.isfinite(v)]
    # Saturate the colours at a ratio of 1e4 so that diverged runs do not hide the rest.
    low, high = (min(finite_logs), min(max(finite_logs), 4.0)) if finite_logs else (0.0, 1.0)
    figure, axes = plt.subplots(
        len(params),
        len(steps),
        figsize=(3.6 * len(steps), 3.0 * len(params)),
        squeeze=False,
        constrained_layout=True,
    )
    for i, param in enumerate(params):
        for j, step in enumerate(steps):
            grid = np.full((len(depths), len(widths)), np.nan)
            for row in rows:
                if row["param"] == param and row["step"] == step:
                    grid[depths.index(row["depth"]), widths.index(row["width"])] = np.log10(
                        row["ratio"]
                    )
            ax = axes[i, j]
            image = ax.imshow(
                grid, origin="lower", cmap="magma", aspect="auto", vmin=low, vmax=high
            )
            for (a, b), value in np.ndenumerate(grid):
                ax.text(
                    b,
                    a,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if not value > (low + high) / 2 else "black",
                )
            ax.set_xticks(range(len(widths)), widths, fontsize=7)
            ax.set_yticks(range(len(depths)), depths, fontsize=7)
            ax.set(xlabel="width N", ylabel="depth H", title=f"{param}, step {step}")
            figure.colorbar(image, ax=ax, label="log10(loss / F*)")
    figure.suptitle("linear network: MSE loss over equilibrium energy", fontsize=9)
    save_figure(figure, path)
