"""Classify by inference again with a finished supervised generative PC run (label → image),
under other evaluation protocols: the number of inference steps, the activity step and
optimiser, and where the free label starts.

Classification by inference clamps the image at the output end, frees the label at the input
end, minimises the energy and reads the argmax of the label. Label starts: `uniform` (1/C for
every class: the run's own evaluation), `zeros`, `normal` (N(0, σ²) with σ = --label-std). The
hidden activities start at the feedforward pass of the label's start.

`--energy` adds a second reading, not classification by inference: clamp each class's one-hot
label in turn, infer the hidden activities, and take the class of least energy (the network as
a Bayes classifier with equal class priors; C inferences per image).

Usage: python results/generative-fmnist/classify.py RUN --eval-steps 500 --activity-lr 0.03
[--activity-optimizer sgd] [--label-start uniform] [--energy] [--out FILE.json]
"""

import argparse
import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from mupc._activity_init import FeedforwardInit
from mupc._atomic import write_json_atomic
from mupc._by_inference import classify_by_inference
from mupc._clamp import Clamp
from mupc.experiments._family import build_trainer, load_family_run

STARTS = ("uniform", "zeros", "normal")


def label_start(name: str, classes: int, std: float) -> FeedforwardInit:
    """Where the free label starts."""
    if name == "uniform":
        return FeedforwardInit(latent_mean=1.0 / classes)
    if name == "zeros":
        return FeedforwardInit()
    return FeedforwardInit(latent_std=std)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--activity-lr", type=float, required=True)
    parser.add_argument("--eval-steps", type=int, required=True)
    parser.add_argument("--activity-optimizer", default="sgd")
    parser.add_argument("--label-start", choices=STARTS, default="uniform")
    parser.add_argument("--label-std", type=float, default=0.05)
    parser.add_argument("--energy", action="store_true", help="also the least-energy class")
    parser.add_argument("--eval-examples", type=int, help="default: the run's")
    parser.add_argument("--out")
    args = parser.parse_args()
    config, data, model = load_family_run(args.run)
    if config.variant != "supervised":
        raise SystemExit(f"{args.run} is a {config.variant} run, not a supervised one.")
    config = dataclasses.replace(
        config, activity_lr=args.activity_lr, eval_steps=args.eval_steps,
        activity_optimizer=args.activity_optimizer,
        eval_examples=args.eval_examples or config.eval_examples,
    )  # fmt: skip
    count = min(config.eval_examples, len(data.test_images))
    images, labels = data.test_images[:count], np.argmax(data.test_labels[:count], 1)
    trainer = build_trainer(config, data, config.evaluation_steps)
    trainer = dataclasses.replace(
        trainer, activity_init=label_start(args.label_start, data.num_classes, args.label_std)
    )
    key = jax.random.key(config.seed + 1)
    began = time.perf_counter()
    predicted = []
    for index, begin in enumerate(range(0, count, 500)):
        x = jnp.asarray(images[begin : begin + 500])
        scores = classify_by_inference(trainer, model, x, key=jax.random.fold_in(key, index))
        predicted.append(np.argmax(np.asarray(scores), 1))
    result = {
        "run": args.run, "activity_lr": args.activity_lr, "eval_steps": args.eval_steps,
        "activity_optimizer": args.activity_optimizer, "label_start": args.label_start,
        "label_std": args.label_std if args.label_start == "normal" else None,
        "eval_examples": count,
        "test_accuracy": float(np.mean(np.concatenate(predicted) == labels)),
        "eval_seconds": time.perf_counter() - began,
    }  # fmt: skip
    if args.energy:
        began = time.perf_counter()
        clamped = dataclasses.replace(trainer, clamp=Clamp(), activity_init=FeedforwardInit())
        eye = np.eye(data.num_classes, dtype=np.float32)
        energies = []
        for begin in range(0, count, 500):
            x = jnp.asarray(images[begin : begin + 500])
            per_class = [
                np.asarray(clamped.infer(model, jnp.tile(eye[c], (len(x), 1)), x).energy)
                for c in range(data.num_classes)
            ]
            energies.append(np.stack(per_class, 1))
        chosen = np.argmin(np.concatenate(energies), 1)
        result["energy_accuracy"] = float(np.mean(chosen == labels))
        result["energy_seconds"] = time.perf_counter() - began
    print(json.dumps(result, indent=1))
    if args.out:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
