"""`mupc diagnose hessian | coords | theory | signal`: look inside inference.

This module only parses arguments: the experiments (grids, CSV rows, figures) are
`mupc.experiments.diagnose_hessian`, `diagnose_coords`, `diagnose_theory` and
`diagnose_signal`, callable from Python; their docstrings and the method page of the docs say
what each measures and how every random draw is seeded.

- `hessian`: condition number of the activity Hessian across depth and width for `sp` and
  `mupc`, with and without skips, and over a short training run (`hessian.csv`, `hessian.png`).
- `coords`: per-layer RMS of activities, errors, activity and weight updates across width
  and depth, for each parameterisation (`coords.csv`, `coords.png`).
- `theory`: ratio of the MSE loss to the equilibrium energy of linear networks over (N, H),
  at initialisation and after training (`theory.csv`, `theory.png`).
- `signal`: per layer, the PC weight gradient against backprop's (norm ratio and cosine) for
  several inference settings side by side, on real digits (`signal.csv`, `signal.png`).
"""

from pathlib import Path

from .. import _published as published
from .._activation import ACTIVATIONS
from .._parameterisation import PARAMETERISATIONS
from ..experiments._diagnose_signal import DEFAULT_SIGNAL_SETTINGS
from ._arguments import non_negative_int, positive_float, positive_int

_PARAMS = tuple(PARAMETERISATIONS)
_ACTIVATIONS = tuple(ACTIVATIONS)


def _experiment(cls, args):
    from ..experiments._diagnose import fields_from

    return cls(**fields_from(cls, args))


def _run_hessian(args) -> int:
    from ..experiments._diagnose_hessian import HessianExperiment, diagnose_hessian

    diagnose_hessian(_experiment(HessianExperiment, args), args.out, echo=print)
    out = Path(args.out)
    print(f"wrote {out / 'hessian.csv'} and {out / 'hessian.png'}")
    return 0


def _run_coords(args) -> int:
    from ..experiments._diagnose_coords import CoordsExperiment, diagnose_coords

    diagnose_coords(_experiment(CoordsExperiment, args), args.out, echo=print)
    out = Path(args.out)
    print(f"wrote {out / 'coords.csv'} and {out / 'coords.png'}")
    return 0


def _run_theory(args) -> int:
    from ..experiments._diagnose_theory import TheoryExperiment, diagnose_theory

    diagnose_theory(_experiment(TheoryExperiment, args), args.out, echo=print)
    out = Path(args.out)
    print(f"wrote {out / 'theory.csv'} and {out / 'theory.png'}")
    return 0


def _run_signal(args) -> int:
    from ..experiments._diagnose_signal import SignalExperiment, diagnose_signal

    diagnose_signal(_experiment(SignalExperiment, args), args.out, echo=print)
    out = Path(args.out)
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
        default=list(DEFAULT_SIGNAL_SETTINGS),
        metavar="KIND:LR[:T]",
        help="inference settings: KIND gd | epc | epc-reparameterised, LR the per-example "
        "step (0.5/64 allowed), T an integer or H; learning at PC's equilibrium: "
        "epc-then-gd:LR:T:REFINE_LR:R[:TOL] (ePC's T steps, then at most R activity steps) "
        "(default: %(default)s)",
    )
    signal.add_argument(
        "--checkpoint", help="measure the network of this checkpoint (e.g. after training) "
        "instead of a fresh one; the network flags are then ignored",
    )  # fmt: skip
    signal.add_argument(
        "--network", choices=("mlp", "conv", "transformer"), default="mlp",
        help="transformer: a ViT on images, a causal language model on a text corpus "
        "(--dataset austen), measured under cross-entropy; -H is then its blocks",
    )  # fmt: skip
    signal.add_argument("--depth", "-H", type=positive_int, default=128,
                        help="hidden layers H (conv: residual blocks per stage)")  # fmt: skip
    signal.add_argument("--width", "-N", type=positive_int, default=128,
                        help="width N (conv: channels of the first stage)")  # fmt: skip
    signal.add_argument("--stages", type=positive_int, default=3, help="conv: stages")
    signal.add_argument("--head-dim", type=positive_int, default=16, help="transformer: d_head")
    signal.add_argument(
        "--context", type=positive_int, default=64, help="transformer on text: the context T"
    )
    signal.add_argument("--param", choices=_PARAMS, default="mupc")
    signal.add_argument("--activation", choices=_ACTIVATIONS, default="relu")
    signal.add_argument("--dataset", default="mnist-sample")
    signal.add_argument("--data-dir", default=None)
    signal.add_argument("--batch-size", type=positive_int, default=64)
    signal.add_argument("--seed", type=int, default=0)
    signal.set_defaults(run=_run_signal)
