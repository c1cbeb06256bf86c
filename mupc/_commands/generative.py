"""`mupc generative`: the PC family on images: train a decoder, supervised generative PC, bPC,
hybrid PC (and the discriminative network and backprop autoencoder they are compared with),
compute the PCA baseline, draw the pictures. This module only parses arguments; the work is
in `mupc.experiments._family` and `_family_figures`."""

import json
from pathlib import Path
from typing import Any

from ._arguments import non_negative_int, positive_float, positive_int


def _prior(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    return positive_float(text)


def _config(args):
    from ..experiments._family import FamilyConfig

    return FamilyConfig(
        variant=args.variant, dataset=args.dataset, train_examples=args.train_examples,
        batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
        time_budget=args.time_budget, depth=args.depth, width=args.width, latent=args.latent,
        activation=args.activation, parameterisation=args.parameterisation, loss=args.loss,
        prior_std=args.prior, latent_std=args.latent_std, alpha_f=args.alpha_f,
        alpha_b=args.alpha_b, inference=args.inference, steps=args.steps,
        activity_lr=args.activity_lr, activity_optimizer=args.activity_optimizer,
        temperature=args.temperature, optimizer=args.optimizer, lr=args.lr, update=args.update,
        eval_examples=args.eval_examples, eval_steps=args.eval_steps,
        eval_every=args.eval_every, log_every=args.log_every, seed=args.seed,
    )  # fmt: skip


def _run_train(args) -> int:
    from ..experiments._family import run_family

    config = _config(args)
    log = (lambda _: None) if args.quiet else print
    summary = run_family(config, args.out, resume=args.resume, log=log)
    shown = {k: v for k, v in summary.items() if k not in ("config",)}
    print(json.dumps(shown, indent=1))
    if not args.no_pictures:
        _draw(Path(args.out), None, Path(args.out))
    return 0


def _run_pca(args) -> int:
    from ..experiments._family import pca_test_mse

    values = {
        k: pca_test_mse(args.dataset, k, eval_examples=args.eval_examples) for k in args.latent
    }
    for k, value in values.items():
        print(f"PCA, {k} components, {args.dataset}: test MSE per pixel {value:.5f}")
    if args.out:
        from .._atomic import write_json_atomic

        write_json_atomic(args.out, {"dataset": args.dataset, "test_mse": values,
                                     "eval_examples": args.eval_examples})  # fmt: skip
    return 0


def _draw(run: Path, pictures: list[Any] | None, out_dir: Path) -> list[Path]:
    from ..experiments._family import load_family_run
    from ..experiments._family_figures import PICTURES, NoSuchPicture, draw_picture

    config, data, model = load_family_run(run)
    drawn = []
    for picture in pictures or PICTURES:
        try:
            path = draw_picture(picture, config, data, model, out_dir / f"{picture}.png",
                                title=f"{run.name}: {picture}")  # fmt: skip
        except NoSuchPicture:
            if pictures:  # asked for by name: say why not
                raise
            continue
        print(f"wrote {path}")
        drawn.append(path)
    return drawn


def _run_draw(args) -> int:
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    _draw(Path(args.folder), args.pictures, out_dir)
    return 0


def _run_signal(args) -> int:
    import csv

    import jax.numpy as jnp

    from .._atomic import atomic_open
    from .._diagnostics.signal import SIGNAL_COLUMNS, learning_signal, plot_signal, signal_rows
    from .._training import PCTrainer
    from ..experiments._family import build_trainer, ends, initial_state, load_family_run

    if args.labels and len(args.labels) != len(args.runs):
        raise ValueError(f"Got {len(args.labels)} labels for {len(args.runs)} runs: give one each.")
    rows = []
    for index, run in enumerate(args.runs):
        config, data, model = load_family_run(run)
        if args.at == "init":
            model = initial_state(config, data)[1].network
        trainer = build_trainer(config, data)
        if not isinstance(trainer, PCTrainer):
            raise ValueError(
                f"{run}: the learning signal compares a PC run with backprop; "
                f"{config.variant!r} is trained by backprop itself."
            )
        images, labels = data.test_images[: args.batch_size], data.test_labels[: args.batch_size]
        inputs, targets = ends(config, jnp.asarray(images), jnp.asarray(labels))
        signal = learning_signal(trainer, model, inputs, targets)
        label = args.labels[index] if args.labels else Path(run).name
        rows.extend(signal_rows(model, label, signal))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "signal.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SIGNAL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    plot_signal(rows, out / "signal.png", args.title)
    print(f"wrote {out / 'signal.csv'} and {out / 'signal.png'}")
    return 0


def register(subparsers) -> None:
    from .._data import dataset_names
    from .._optimisers import OPTIMISERS
    from ..experiments._config import ACTIVATION_NAMES, PARAMETERISATION_NAMES
    from ..experiments._family import INFERENCE_KINDS, VARIANTS, FamilyConfig
    from ..experiments._family_figures import PICTURES

    defaults = FamilyConfig()
    parser = subparsers.add_parser(
        "generative",
        help="the PC family on images: decoders, supervised generative PC, bPC, hybrid PC",
        description="Train members of the PC family on an image dataset and draw them. "
        "Example: mupc generative train decoder --dataset fashion-mnist -H 2 -N 256 --latent 64 "
        "--out runs/decoder",
    )
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = commands.add_parser(
        "train", help="train and evaluate one run (resumable; summary.json, pictures)",
        description="Pixels in [0, 1], mean-centred by the training mean image; errors per "
        "pixel on the first --eval-examples test images. A decoder's reconstruction infers its "
        "latent with --eval-steps steps, then decodes it with the feedforward pass.",
    )  # fmt: skip
    train.add_argument("variant", choices=VARIANTS, help="decoder (unsupervised generative PC), "
                       "supervised (label → image, classify by inference), discriminative "
                       "(image → label, the comparison), bpc, hybrid, autoencoder (backprop "
                       "baseline: the decoder with a mirrored encoder)")  # fmt: skip
    train.add_argument("--out", required=True, help="the run folder")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--quiet", action="store_true", help="print only the summary")
    train.add_argument("--no-pictures", action="store_true", help="do not draw the pictures")
    data = train.add_argument_group("data")
    data.add_argument("--dataset", choices=dataset_names(), default=defaults.dataset)
    data.add_argument("--train-examples", type=positive_int, help="the first n training images")
    data.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    data.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    data.add_argument("--max-steps", type=positive_int, help="stop after this many steps")
    data.add_argument(
        "--time-budget",
        type=positive_float,
        help="stop after this many seconds of training (equal-time comparisons)",
    )
    net = train.add_argument_group("network")
    net.add_argument(
        "--depth",
        "-H",
        type=non_negative_int,
        default=defaults.depth,
        help="hidden layers H (0: a decoder made of one dense map)",
    )
    net.add_argument("--width", "-N", type=positive_int, default=defaults.width)
    net.add_argument(
        "--latent",
        type=positive_int,
        default=defaults.latent,
        help="latent size of a decoder or autoencoder",
    )
    net.add_argument("--activation", choices=ACTIVATION_NAMES, default=defaults.activation)
    net.add_argument(
        "--param",
        dest="parameterisation",
        choices=PARAMETERISATION_NAMES,
        default=defaults.parameterisation,
    )
    energy = train.add_argument_group("energy")
    energy.add_argument(
        "--loss",
        choices=("mse", "bernoulli"),
        default=defaults.loss,
        help="the images' output term",
    )
    energy.add_argument(
        "--prior",
        type=_prior,
        default=defaults.prior_std,
        metavar="STD",
        help="std of a Gaussian prior on a decoder's latent, or none",
    )
    energy.add_argument(
        "--latent-std",
        type=float,
        default=defaults.latent_std,
        help="a decoder's latent starts at N(0, s²) (0: at the prior's mean)",
    )
    energy.add_argument("--alpha-f", type=float, default=defaults.alpha_f, help="bPC's α_f")
    energy.add_argument("--alpha-b", type=float, default=defaults.alpha_b, help="bPC's α_b")
    solver = train.add_argument_group("inference and learning")
    solver.add_argument(
        "--inference",
        choices=INFERENCE_KINDS,
        default=defaults.inference,
        help="gd (on the activities), epc (on the errors), langevin (MCPC)",
    )
    solver.add_argument("--steps", "-T", type=non_negative_int, default=defaults.steps)
    solver.add_argument(
        "--activity-lr",
        type=positive_float,
        default=defaults.activity_lr,
        help="inference step per example (Langevin: η)",
    )
    solver.add_argument(
        "--activity-optimizer", choices=sorted(OPTIMISERS), default=defaults.activity_optimizer
    )
    solver.add_argument(
        "--temperature", type=float, default=defaults.temperature, help="Langevin temperature"
    )
    solver.add_argument("--optimizer", choices=sorted(OPTIMISERS), default=defaults.optimizer)
    solver.add_argument("--lr", type=positive_float, default=defaults.lr, help="weight rate")
    solver.add_argument(
        "--update",
        choices=("after-inference", "every-step"),
        default=defaults.update,
        help="every-step: incremental PC",
    )
    evaluation = train.add_argument_group("evaluation")
    evaluation.add_argument("--eval-examples", type=positive_int, default=defaults.eval_examples)
    evaluation.add_argument(
        "--eval-steps",
        type=non_negative_int,
        help="inference steps at evaluation (default: --steps)",
    )
    evaluation.add_argument(
        "--eval-every",
        type=non_negative_int,
        default=0,
        help="evaluate every n steps (0: at the end)",
    )
    evaluation.add_argument("--log-every", type=positive_int, default=defaults.log_every)
    evaluation.add_argument("--seed", type=non_negative_int, default=0)
    train.set_defaults(run=_run_train)

    pca = commands.add_parser("pca", help="the mean-centred PCA baseline's test MSE per pixel")
    pca.add_argument("--dataset", choices=dataset_names(), default=defaults.dataset)
    pca.add_argument("--latent", type=positive_int, nargs="+", default=[64])
    pca.add_argument("--eval-examples", type=positive_int, help="the first n test images")
    pca.add_argument("--out", help="a JSON file for the numbers")
    pca.set_defaults(run=_run_pca)

    draw = commands.add_parser("draw", help="draw a run's pictures (PNG) from its checkpoint")
    draw.add_argument("folder", metavar="RUN_DIR", help="a `mupc generative train --out` folder")
    draw.add_argument("--pictures", nargs="+", choices=PICTURES,
                      help="which pictures (default: all the run has)")  # fmt: skip
    draw.add_argument("--out-dir", help="where to write them (default: the run folder)")
    draw.set_defaults(run=_run_draw)

    signal = commands.add_parser(
        "signal", help="per layer, the PC weight gradient against backprop's (signal.csv, PNG)",
        description="For each run, its trainer's PC weight gradient on one batch of test "
        "images against backprop's gradient of the same objective (for a decoder: the output "
        "term at the latent PC inferred), per weight layer: norm ratio and cosine.",
    )  # fmt: skip
    signal.add_argument("runs", nargs="+", help="`mupc generative train --out` folders")
    signal.add_argument(
        "--at",
        choices=("init", "trained"),
        default="trained",
        help="the network at initialisation or at its checkpoint",
    )
    signal.add_argument("--labels", nargs="+", help="one label per run (default: folder names)")
    signal.add_argument("--batch-size", type=positive_int, default=64)
    signal.add_argument("--title", default="")
    signal.add_argument("--out", required=True, help="the folder for signal.csv and signal.png")
    signal.set_defaults(run=_run_signal)
