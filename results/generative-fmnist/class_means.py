"""The floor of generation from a label: every test image generated as its class's mean
training image (mean-centred [0, 1] pixels, as `mupc generative train`); the test MSE per
pixel on the first `--eval-examples` test images. No deterministic label → image map can do
much better: the best one is the test set's own class means.

Usage: python results/generative-fmnist/class_means.py [--eval-examples 2000] [--out FILE.json]
"""

import argparse
import json

import numpy as np

from mupc._atomic import write_json_atomic
from mupc.experiments._family import load_family_data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--eval-examples", type=int, default=2000)
    parser.add_argument("--out")
    args = parser.parse_args()
    data = load_family_data(args.dataset)
    classes = data.train_labels.argmax(1)
    means = np.stack([data.train_images[classes == c].mean(0) for c in range(data.num_classes)])
    images = data.test_images[: args.eval_examples].astype(np.float64)
    labels = data.test_labels[: args.eval_examples].argmax(1)
    result = {
        "dataset": args.dataset,
        "eval_examples": len(images),
        "class_mean_test_mse": float(np.mean((means[labels] - images) ** 2)),
        "mean_image_test_mse": float(np.mean(images**2)),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
