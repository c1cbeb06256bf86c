"""`mupc diagnose hessian | coords | theory | signal`: look inside inference.

- `hessian`: condition number of the activity Hessian across depth and width for `sp` and
  `mupc`, with and without skips, and over a short training run (`hessian.csv`, `hessian.png`).
- `coords`: per-layer RMS of activities, errors, activity and weight updates across width
  and depth, for each parameterisation (`coords.csv`, `coords.png`).
- `theory`: ratio of the MSE loss to the equilibrium energy of linear networks over (N, H),
  at initialisation and after training (`theory.csv`, `theory.png`).
- `signal`: per layer, the PC weight gradient against backprop's (norm ratio and cosine) for
  several inference settings side by side, on real digits (`signal.csv`, `signal.png`).

Data are synthetic (no download): inputs $x \\sim \\mathcal{N}(0, I_D)$ and one-hot labels of
a random linear teacher, $y = \\text{onehot}(\\arg\\max_k (T x)_k)$. With `--network conv`
(`hessian`, `coords`) the same inputs are reshaped to √D × √D × 1 images and each grid point
is the conv ResNet with `--stages` stages, the width as the first stage's channels and the
depth as the residual blocks per stage (always with skips).

Every random draw comes from `key = jax.random.key(--seed)`, so a run can be recomputed
independently (the tests do, with NumPy oracles): the network of every grid point from
`fold_in(key, 2)` (default float dtype), the trainer's state from `fold_in(key, 3)`, the probe
batch from `synthetic_task(fold_in(key, 1), D, C, size)` (`--examples` rows for `hessian`,
`--batch-size` rows for `coords` and `theory`) and training batch t = 0, 1, ... from
`synthetic_task(fold_in(key, 100 + t), D, C, --batch-size)`; the trainer is Adam
(`--weight-lr`) on the weights and T = H steps of gradient descent (`--activity-lr`).
"""

import csv
import math
import time
from pathlib import Path
from typing import Any

from .. import _published as published
from .._activation import ACTIVATIONS
from .._atomic import atomic_open
from .._parameterisation import PARAMETERISATIONS
from ._arguments import non_negative_int, positive_float, positive_int

_PARAMS = tuple(PARAMETERISATIONS)
_ACTIVATIONS = tuple(ACTIVATIONS)


# ----------------------------------------------------------------------------- helpers


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write `rows` (dicts) with a header of `columns`, atomically."""

    with atomic_open(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _save_figure(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, dpi=90, format="png")
    plt.close(figure)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def synthetic_task(key, input_dim: int, output_dim: int, batch_size: int, dtype=None):
    """A batch `(inputs, targets)`: Gaussian inputs, one-hot labels of a fixed random linear
    teacher (the teacher depends only on the dimensions, the batch on `key`)."""
    import jax
    import jax.numpy as jnp

    teacher = jax.random.normal(jax.random.key(12345), (output_dim, input_dim))
    inputs = jax.random.normal(key, (batch_size, input_dim))
    labels = jnp.argmax(inputs @ teacher.T, axis=-1)
    targets = jax.nn.one_hot(labels, output_dim)
    if dtype is not None:
        inputs, targets = inputs.astype(dtype), targets.astype(dtype)
    return inputs, targets


def _trainer(args):
    import optax

    from .._inference import DiscreteInference
    from .._training import PCTrainer

    return PCTrainer(
        optimiser=optax.adam(args.weight_lr),
        inference=DiscreteInference.gradient_descent(args.activity_lr),
    )


def _grid(args) -> list[tuple[str, int, int]]:
    """Every (parameterisation, width, depth) asked for on the command line."""
    return [(p, n, h) for p in args.params for n in args.widths for h in args.depths]


def _task(args, key, index: int):
    """The synthetic batch number `index` of the run seeded by `key` (`--batch-size` rows)."""
    import jax

    return _shaped(
        args,
        synthetic_task(
            jax.random.fold_in(key, index), args.input_dim, args.output_dim, args.batch_size
        ),
    )


def _image_side(args) -> int:
    """For `--network conv`: the side of the square one-channel images that `--input-dim` D
    pixels make (D must be a square)."""
    side = math.isqrt(args.input_dim)
    if side * side != args.input_dim:
        raise ValueError(
            f"--network conv needs --input-dim to be a square number of pixels (side × side "
            f"images), got {args.input_dim}."
        )
    return side


def _shaped(args, task):
    """A synthetic `(inputs, targets)` batch with the inputs as (B, side, side, 1) images for
    `--network conv` (the same numbers, reshaped), else unchanged."""
    inputs, targets = task
    if getattr(args, "network", "mlp") == "conv":
        side = _image_side(args)
        inputs = inputs.reshape(inputs.shape[0], side, side, 1)
    return inputs, targets


def _network(args, param, width, depth, skips, key):
    """The network of one grid point: the residual MLP, or with `--network conv` the conv
    ResNet with `--stages` stages of `depth` blocks, `width` channels in the first stage (the
    conv network always has skips)."""
    from .._network import NetworkConfig, ResNet
    from ..experiments._config import RunConfig

    if getattr(args, "network", "mlp") == "conv":
        config = RunConfig(
            network="conv", depth=depth, width=width, stages=args.stages,
            activation=args.activation, parameterisation=param,
        )  # fmt: skip
        side = _image_side(args)
        return config.build_network((side, side, 1), args.output_dim, key=key, dtype=None)
    config = NetworkConfig(
        args.input_dim, width, depth, args.output_dim, args.activation, param, skips
    )
    return ResNet(config, key=key)


def _progress(iterable, args, desc):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, disable=args.quiet, leave=False)


def _log_ticks(axis, values) -> None:
    """Label a log axis with the measured values themselves."""
    from matplotlib.ticker import NullFormatter

    axis.set_ticks(sorted(set(values)), [str(v) for v in sorted(set(values))])
    axis.set_minor_formatter(NullFormatter())


def _finite(value: float) -> float:
    return value if math.isfinite(value) else float("nan")


# ----------------------------------------------------------------------------- hessian

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


def _method(args, dim: int):
    from .._diagnostics.hessian import DenseSpectrum, LanczosSpectrum

    if args.method == "dense" or (args.method == "auto" and dim <= args.dense_max):
        return "dense", DenseSpectrum()
    return "lanczos", LanczosSpectrum(args.iterations)


def _spectrum_rows(args, network, probe, step, base):
    import jax

    from .._diagnostics.hessian import _activity_dim, hessian_spectrum

    name, method = _method(args, _activity_dim(network, probe[0]))
    start = time.perf_counter()
    spectrum = hessian_spectrum(network, *probe, method=method, key=jax.random.key(args.seed))
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


def _run_hessian(args) -> int:
    import jax

    from .._diagnostics.hessian import _activity_dim, track_hessian

    out = Path(args.out)
    key = jax.random.key(args.seed)
    probe = _shaped(
        args,
        synthetic_task(jax.random.fold_in(key, 1), args.input_dim, args.output_dim, args.examples),
    )
    skip_variants = (True,) if args.network == "conv" else (True, False)
    variants = [(p, s) for p in args.params for s in skip_variants]
    rows = []
    sweep = [(p, s, n, h) for p, s in variants for n in args.widths for h in args.depths]
    for param, skips, width, depth in _progress(sweep, args, "hessian sweep"):
        network = _network(args, param, width, depth, skips, jax.random.fold_in(key, 2))
        base = dict(param=param, skips=skips, activation=args.activation, width=width, depth=depth)
        rows += _spectrum_rows(args, network, probe, 0, base)
        write_csv(out / "hessian.csv", rows, HESSIAN_COLUMNS)
    tracked = []
    if args.train_steps > 0 and args.track_every > 0:
        width, depth = args.track_width, args.track_depth
        for param, skips in _progress(variants, args, "hessian tracking"):
            network = _network(args, param, width, depth, skips, jax.random.fold_in(key, 2))
            trainer = _trainer(args)
            state = trainer.init(network, jax.random.fold_in(key, 3))
            batches = (
                _shaped(
                    args,
                    synthetic_task(
                        jax.random.fold_in(key, 100 + t),
                        args.input_dim,
                        args.output_dim,
                        args.batch_size,
                    ),
                )
                for t in range(args.train_steps)
            )
            dim = _activity_dim(network, probe[0])
            base = dict(
                param=param, skips=skips, activation=args.activation, width=width, depth=depth
            )
            run_rows: list[dict[str, Any]] = []

            def record(step, spectrum, base=base, run_rows=run_rows, dim=dim):
                name, _ = _method(args, dim)
                for i in range(spectrum.condition_number.shape[0]):
                    run_rows.append(
                        {
                            **base,
                            "step": step,
                            "example": i,
                            "method": name,
                            "lambda_min": float(spectrum.lambda_min[i]),
                            "lambda_max": float(spectrum.lambda_max[i]),
                            "condition_number": _finite(float(spectrum.condition_number[i])),
                            "seconds": "",
                        }
                    )

            _, method = _method(args, dim)
            track_hessian(
                trainer,
                state,
                batches,
                *probe,
                every=args.track_every,
                method=method,
                callback=record,
            )
            tracked += run_rows
        rows += tracked
        write_csv(out / "hessian.csv", rows, HESSIAN_COLUMNS)
    _plot_hessian(args, rows, out / "hessian.png")
    _summarise(rows, ["param", "skips", "width", "depth", "step"], "condition_number")
    print(f"wrote {out / 'hessian.csv'} and {out / 'hessian.png'}")
    return 0


def _mean_by(rows, keys, value, where=None) -> dict[tuple, float]:
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        if where is not None and not where(row):
            continue
        groups.setdefault(tuple(row[k] for k in keys), []).append(float(row[value]))
    return {k: sum(v) / len(v) for k, v in groups.items()}


def _summarise(rows, keys, value):
    for k, v in sorted(_mean_by(rows, keys, value).items(), key=str):
        print(" ".join(f"{name}={x}" for name, x in zip(keys, k, strict=True)), f"{value}={v:.4g}")


def _plot_hessian(args, rows, path):
    plt = _pyplot()
    init = [r for r in rows if r["step"] == 0 and r["seconds"] != ""]
    trained = [r for r in rows if r["seconds"] == ""]
    panels = 3 if trained else 2
    figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), constrained_layout=True)
    width, depth = max(args.widths), max(args.depths)
    variants = [(p, s) for p in args.params for s in (True, False)]
    colours = {p: f"C{i}" for i, p in enumerate(args.params)}
    for param, skips in variants:
        label = f"{param}, {'skips' if skips else 'no skips'}"
        style = dict(color=colours[param], linestyle="-" if skips else "--")
        by_depth = _mean_by(
            init,
            ["depth"],
            "condition_number",
            lambda r, p=param, s=skips: (r["param"], r["skips"], r["width"]) == (p, s, width),
        )
        by_width = _mean_by(
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
            by_step = _mean_by(
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
            title=f"training, N = {args.track_width}, H = {args.track_depth}",
        )
    _log_ticks(axes[0].xaxis, args.depths)
    _log_ticks(axes[1].xaxis, args.widths)
    axes[0].legend(fontsize=7)
    figure.suptitle(f"activity Hessian at the feedforward pass ({args.activation})", fontsize=9)
    _save_figure(figure, path)


# ----------------------------------------------------------------------------- coords

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


def _run_coords(args) -> int:
    import jax
    import numpy as np

    from .._diagnostics.coords import QUANTITIES, coordinate_check

    out = Path(args.out)
    key = jax.random.key(args.seed)
    rows = []
    sweep = _grid(args)
    for param, width, depth in _progress(sweep, args, "coord check"):
        network = _network(args, param, width, depth, args.skips, jax.random.fold_in(key, 2))
        inputs, targets = _task(args, key, 1)
        trainer = _trainer(args)
        state = trainer.init(network, jax.random.fold_in(key, 3))
        _, record = coordinate_check(trainer, state, inputs, targets, args.steps)
        for name in QUANTITIES:
            values = np.asarray(getattr(record, name))
            for s, step in enumerate(np.asarray(record.step)):
                for layer, value in enumerate(values[s], start=1):
                    rows.append(
                        dict(
                            param=param,
                            skips=args.skips,
                            activation=args.activation,
                            width=width,
                            depth=depth,
                            step=int(step),
                            quantity=name,
                            layer=layer,
                            rms=_finite(float(value)),
                        )
                    )
        write_csv(out / "coords.csv", rows, COORD_COLUMNS)
    _plot_coords(args, rows, out / "coords.png")
    last = args.steps - 1
    _summarise(
        [r for r in rows if r["step"] in (0, last)],
        ["param", "quantity", "step", "width", "depth"],
        "rms",
    )
    print(f"wrote {out / 'coords.csv'} and {out / 'coords.png'}")
    return 0


def _plot_coords(args, rows, path):
    from .._diagnostics.coords import QUANTITIES

    plt = _pyplot()
    figure, axes = plt.subplots(
        len(QUANTITIES),
        len(args.params),
        figsize=(3.2 * len(args.params), 2.2 * len(QUANTITIES)),
        squeeze=False,
        sharex=True,
        constrained_layout=True,
    )
    colours = plt.cm.viridis([i / max(1, len(args.depths) - 1) for i in range(len(args.depths))])
    last = args.steps - 1
    for col, param in enumerate(args.params):
        for row, name in enumerate(QUANTITIES):
            ax = axes[row, col]
            for colour, depth in zip(colours, args.depths, strict=True):
                for step, style in ((0, "--"), (last, "-")):
                    means = _mean_by(
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
            _log_ticks(ax.xaxis, args.widths)
            if row == 0:
                ax.set_title(param, fontsize=9)
            if col == 0:
                ax.set_ylabel(f"rms {name}".replace("_", " "), fontsize=8)
            if row == len(QUANTITIES) - 1:
                ax.set_xlabel("width N")
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(
        f"PC coord check ({args.activation}, skips={args.skips}): mean over layers; "
        f"dashed step 0, solid step {last}",
        fontsize=9,
    )
    _save_figure(figure, path)


# ----------------------------------------------------------------------------- theory

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


def _run_theory(args) -> int:
    import jax
    import jax.numpy as jnp

    from .._diagnostics.theory import equilibrium_energy

    out = Path(args.out)
    key = jax.random.key(args.seed)
    rows = []
    measure_jit = jax.jit(equilibrium_energy)
    sweep = _grid(args)
    for param, width, depth in _progress(sweep, args, "theory"):
        network = _network(args, param, width, depth, True, jax.random.fold_in(key, 2))
        probe = _task(args, key, 1)
        trainer = _trainer(args)
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
                    loss=_finite(loss),
                    equilibrium_energy=_finite(energy),
                    ratio=_finite(loss / energy) if energy > 0 else float("nan"),
                    s_mean_eigenvalue=_finite(float(jnp.mean(eq.covariance_eigenvalues))),
                )
            )

        measure(state)
        for t in range(args.train_steps):
            batch = _task(args, key, 100 + t)
            state, _ = trainer.step(state, *batch)
            if (t + 1) % args.record_every == 0 or t + 1 == args.train_steps:
                measure(state)
        write_csv(out / "theory.csv", rows, THEORY_COLUMNS)
    _plot_theory(args, rows, out / "theory.png")
    for row in rows:
        if row["step"] in (0, args.train_steps):
            print(
                f"{row['param']} N={row['width']} H={row['depth']} step={row['step']} "
                f"loss/energy={row['ratio']:.4g} mean eig S={row['s_mean_eigenvalue']:.4g}"
            )
    print(f"wrote {out / 'theory.csv'} and {out / 'theory.png'}")
    return 0


def _plot_theory(args, rows, path):
    import numpy as np

    plt = _pyplot()
    steps = sorted({0, args.train_steps})
    logs = [np.log10(r["ratio"]) for r in rows if r["step"] in steps and r["ratio"] > 0]
    finite = [v for v in logs if math.isfinite(v)]
    # Saturate the colours at a ratio of 1e4 so that diverged runs do not hide the rest.
    low, high = (min(finite), min(max(finite), 4.0)) if finite else (0.0, 1.0)
    figure, axes = plt.subplots(
        len(args.params),
        len(steps),
        figsize=(3.6 * len(steps), 3.0 * len(args.params)),
        squeeze=False,
        constrained_layout=True,
    )
    for i, param in enumerate(args.params):
        for j, step in enumerate(steps):
            grid = np.full((len(args.depths), len(args.widths)), np.nan)
            for row in rows:
                if row["param"] == param and row["step"] == step:
                    grid[args.depths.index(row["depth"]), args.widths.index(row["width"])] = (
                        np.log10(row["ratio"])
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
            ax.set_xticks(range(len(args.widths)), args.widths, fontsize=7)
            ax.set_yticks(range(len(args.depths)), args.depths, fontsize=7)
            ax.set(xlabel="width N", ylabel="depth H", title=f"{param}, step {step}")
            figure.colorbar(image, ax=ax, label="log10(loss / F*)")
    figure.suptitle("linear network: MSE loss over equilibrium energy", fontsize=9)
    _save_figure(figure, path)


# ----------------------------------------------------------------------------- signal

# The published inference, a 20× larger step, and ePC near and far from equilibrium (spec §8).
DEFAULT_SIGNAL_SETTINGS = [
    f"gd:{published.ACTIVITY_LR_BATCH_MEAN}/{published.BATCH_SIZE}:H",
    f"gd:10/{published.BATCH_SIZE}:H",
    "epc:0.1:5",
    "epc:0.1:100",
]


def _run_signal(args) -> int:
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
    from ..experiments._config import RunConfig

    if args.checkpoint is not None:
        network = load_network(args.checkpoint)
        where = f"the network of {args.checkpoint}"
    else:
        config = RunConfig(
            network=args.network, depth=args.depth, width=args.width, stages=args.stages,
            activation=args.activation, parameterisation=args.param,
        )  # fmt: skip
        network = None
        where = f"{config.label.split(' ', 1)[1]}, {args.activation}, at initialisation"
    conv = network.kind == "conv-resnet" if network is not None else args.network == "conv"
    layout: Layout = "nhwc" if conv else "flat"
    data = load_dataset(args.dataset, data_dir=args.data_dir, layout=layout)
    if network is None:
        network = config.build_network(
            data.train_images.shape[1:], data.num_classes, key=jax.random.key(args.seed),
            dtype=None,
        )  # fmt: skip
    settings = [parse_setting(spec, network.num_layers) for spec in args.settings]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = data.train_images[: args.batch_size]
    targets = data.train_labels[: args.batch_size]
    rows: list[dict[str, Any]] = []
    print(f"{'setting':<28}{'cos ≥ 0.9':>10}   mean cosine by decile of depth (bottom → top)")
    for setting in settings:
        started = time.perf_counter()
        signal = learning_signal(setting.trainer, network, inputs, targets)
        rows.extend(signal_rows(network, setting.label, signal))
        summary = decile_summary(signal)
        deciles = " ".join(f"{value:5.2f}" for value in summary.mean)
        seconds = time.perf_counter() - started
        print(f"{setting.label:<28}{summary.fraction_aligned:>9.0%}   {deciles}  ({seconds:.1f} s)")
    write_csv(out / "signal.csv", rows, SIGNAL_COLUMNS)
    title = f"{where}: one batch of {args.batch_size} {args.dataset} examples"
    plot_signal(rows, out / "signal.png", title)
    print(f"wrote {out / 'signal.csv'} and {out / 'signal.png'}")
    return 0


# ----------------------------------------------------------------------------- parser


def _common(parser, widths, depths, params, activation, activations=_ACTIVATIONS):
    parser.add_argument("--out", required=True, help="output folder for the CSV and PNG")
    parser.add_argument("--widths", type=positive_int, nargs="+", default=widths, help="widths N")
    parser.add_argument("--depths", type=positive_int, nargs="+", default=depths, help="depths H")
    parser.add_argument(
        "--params", nargs="+", choices=_PARAMS, default=params, help="parameterisations"
    )
    parser.add_argument("--activation", default=activation, choices=activations)
    parser.add_argument("--input-dim", type=positive_int, default=784, help="D")
    parser.add_argument("--output-dim", type=positive_int, default=10, help="C")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument(
        "--weight-lr",
        type=positive_float,
        default=published.MUPC_WEIGHT_LR,
        help="Adam learning rate",
    )
    parser.add_argument(
        "--activity-lr",
        type=positive_float,
        default=published.ACTIVITY_LR,
        help=f"per-example activity step (published {published.ACTIVITY_LR_BATCH_MEAN:g} at "
        f"batch {published.BATCH_SIZE} = {published.ACTIVITY_LR:g})",
    )
    parser.add_argument("--batch-size", type=positive_int, default=published.BATCH_SIZE)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _network_arguments(parser) -> None:
    parser.add_argument(
        "--network", choices=("mlp", "conv"), default="mlp",
        help="mlp: the residual MLP (default); conv: the conv ResNet, on side × side one-channel "
        "images with side² = --input-dim (widths: channels of the first stage, depths: residual "
        "blocks per stage)",
    )  # fmt: skip
    parser.add_argument("--stages", type=positive_int, default=2, help="conv: stages")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "diagnose", help="activity-Hessian conditioning, coordinate checks, linear theory"
    )
    sub = parser.add_subparsers(dest="diagnostic", required=True, metavar="DIAGNOSTIC")

    hessian = sub.add_parser("hessian", help="condition number of the activity Hessian")
    _common(hessian, [16, 32, 64], [4, 8, 16], ["sp", "mupc"], "linear")
    _network_arguments(hessian)
    hessian.add_argument(
        "--method",
        choices=["auto", "dense", "lanczos"],
        default="auto",
        help="auto: dense when the activities of one example (H·N for the MLP) number at most "
        "--dense-max, else Lanczos",
    )
    hessian.add_argument("--dense-max", type=positive_int, default=2048)
    hessian.add_argument("--iterations", type=positive_int, default=256, help="Lanczos steps")
    hessian.add_argument(
        "--examples", type=positive_int, default=1, help="probe examples, each measured separately"
    )
    hessian.add_argument(
        "--train-steps",
        type=non_negative_int,
        default=60,
        help="training steps for tracking (0: no tracking)",
    )
    hessian.add_argument(
        "--track-every", type=positive_int, default=10, help="measure every k steps"
    )
    hessian.add_argument("--track-width", type=positive_int, default=32)
    hessian.add_argument("--track-depth", type=positive_int, default=8)
    hessian.set_defaults(run=_run_hessian)

    coords = sub.add_parser("coords", help="per-layer RMS coordinate check")
    _common(coords, [32, 64, 128, 256], [4, 32], ["sp", "mupc", "ntp"], "relu")
    _network_arguments(coords)
    coords.add_argument("--steps", type=positive_int, default=3, help="training steps recorded")
    coords.add_argument("--no-skips", dest="skips", action="store_false")
    coords.set_defaults(run=_run_coords)

    theory = sub.add_parser("theory", help="loss / equilibrium energy of linear networks")
    # The closed forms hold for linear networks only.
    _common(theory, [16, 32, 64, 128], [2, 8, 32], ["mupc", "sp"], "linear", ("linear",))
    theory.add_argument("--train-steps", type=non_negative_int, default=20)
    theory.add_argument("--record-every", type=positive_int, default=10)
    theory.set_defaults(run=_run_theory)

    signal = sub.add_parser(
        "signal", help="per-layer PC weight gradient against backprop's (ratio, cosine)"
    )
    signal.add_argument("--out", required=True, help="output folder for the CSV and PNG")
    signal.add_argument(
        "--settings",
        nargs="+",
        default=DEFAULT_SIGNAL_SETTINGS,
        metavar="KIND:LR[:T]",
        help="inference settings: KIND gd | epc | epc-reparameterised, LR the per-example "
        "step (0.5/64 allowed), T an integer or H (default: %(default)s)",
    )
    signal.add_argument(
        "--checkpoint", help="measure the network of this checkpoint (e.g. after training) "
        "instead of a fresh one; the network flags are then ignored",
    )  # fmt: skip
    signal.add_argument("--network", choices=("mlp", "conv"), default="mlp")
    signal.add_argument("--depth", "-H", type=positive_int, default=128,
                        help="hidden layers H (conv: residual blocks per stage)")  # fmt: skip
    signal.add_argument("--width", "-N", type=positive_int, default=128,
                        help="width N (conv: channels of the first stage)")  # fmt: skip
    signal.add_argument("--stages", type=positive_int, default=3, help="conv: stages")
    signal.add_argument("--param", choices=_PARAMS, default="mupc")
    signal.add_argument("--activation", choices=_ACTIVATIONS, default="relu")
    signal.add_argument("--dataset", default="mnist-sample")
    signal.add_argument("--data-dir", default=None)
    signal.add_argument("--batch-size", type=positive_int, default=64)
    signal.add_argument("--seed", type=int, default=0)
    signal.set_defaults(run=_run_signal)
