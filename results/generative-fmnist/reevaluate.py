"""Evaluate a finished `mupc generative train` run again with other inference settings at
evaluation: the same protocol as the run's own evaluation (`evaluate_family`: the first
`eval_examples` test images; a decoder infers its latent with the training solver from the
training start, then decodes it), but with `--activity-lr` and `--eval-steps` of your choice.

Why: without a prior, PC training lets the weights grow until the training step on the
activities sits at the edge of stability (results in docs/tutorials/generative.md), so an
evaluation that runs many steps at the training step can oscillate; a smaller step with more
steps reaches the inference equilibrium.

Usage: python results/generative-fmnist/reevaluate.py RUN --activity-lr 0.01 --eval-steps 2000
[--out FILE.json]
"""

import argparse
import dataclasses
import json
import time

from mupc._atomic import write_json_atomic
from mupc.experiments._family import evaluate_family, load_family_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--activity-lr", type=float, required=True)
    parser.add_argument("--eval-steps", type=int, required=True)
    parser.add_argument("--out")
    args = parser.parse_args()
    config, data, model = load_family_run(args.run)
    config = dataclasses.replace(config, activity_lr=args.activity_lr, eval_steps=args.eval_steps)
    began = time.perf_counter()
    result = evaluate_family(config, model, data)
    result = {"run": args.run, "activity_lr": args.activity_lr, "eval_steps": args.eval_steps,
              "eval_examples": min(config.eval_examples, len(data.test_images)), **result,
              "eval_seconds": time.perf_counter() - began}  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.out:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
