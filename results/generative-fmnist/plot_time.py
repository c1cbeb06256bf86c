"""Draw incremental PC against PC at equal wall time: test MSE against training seconds, one
curve per run of `time-curves.csv` (written by collect.py); a run repeated (`NAME-run2`) is
drawn dashed in its colour.

Usage: python results/generative-fmnist/plot_time.py results/generative-fmnist/time-curves.csv
docs/figures/generative-ipc-vs-pc.png
"""

import csv
import sys
from collections import defaultdict

from mupc._figures import pyplot, save_figure

LABELS = {
    "time-pc-H2": "PC (weights after T = 20 steps), Adam 1e-3",
    "time-ipc-H2": "iPC (weights at every step), Adam 1e-3",
    "time-ipc-lr1e-4-H2": "iPC (weights at every step), Adam 1e-4",
}


def main(table: str, out: str) -> None:
    curves = defaultdict(list)
    with open(table) as handle:
        for row in csv.DictReader(handle):
            curves[row["name"]].append((float(row["train_seconds"]), float(row["test_mse"])))
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7.0, 4.4))
    colours = {}
    for name, points in sorted(curves.items()):
        seconds, mse = zip(*sorted(points), strict=True)
        base = name.removesuffix("-run2")  # the same command run again: same colour, dashed
        again = base != name
        line = axes.plot(
            seconds, mse, marker=".", linestyle="--" if again else "-", color=colours.get(base),
            label=LABELS.get(base, base) + (" (run 2)" if again else ""),
        )  # fmt: skip
        colours.setdefault(base, line[0].get_color())
    axes.set_xlabel("training seconds (2-core AMD EPYC, shared; evaluation not counted)")
    axes.set_ylabel("test MSE per pixel (500 test images)")
    axes.set_yscale("log")
    axes.set_title("iPC against PC at equal wall time (decoder H = 2, N = 128)", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
