"""The conv ResNet's training step and compile time against depth: PC, ePC and BP interleaved.

Run: `python benchmarks/conv_step.py [--blocks 1 2 4 8 16] [--channels 8 16 32]`.
Prints one JSON object per (blocks, method) with the machine's facts. The network is the μPC
conv ResNet of docs/method.md on 28×28×1 images (Fashion-MNIST's shape), ReLU, 3×3 kernels,
one stage per `--channels` entry, batch 64, synthetic data; PC runs T = L gradient-descent
steps on the activities (published 0.5 batch-mean step), ePC one error step of 0.001 (its
default), all with
Adam on the weights. `step_s` is the median of the timed steps, `first_step_s` the first
step (compilation included) and `compile_s` their difference (at 16 blocks PC's step alone
takes seconds); the issue-9 target is compile at 16 blocks per stage within 1.5× of 1 block.
"""

import argparse
import json
import statistics

import jax
import jax.numpy as jnp
import optax
from _machine import machine
from _timing import interleaved_step_times

import mupc


def trainers(num_layers: int) -> dict:
    adam = optax.adam(mupc._published.MUPC_WEIGHT_LR)
    gd = mupc.DiscreteInference.gradient_descent(mupc._published.ACTIVITY_LR, steps=num_layers)
    return {
        "pc (GD, T = L)": mupc.PCTrainer(optimiser=adam, inference=gd),
        "epc (T = 1)": mupc.PCTrainer(
            optimiser=adam, inference=mupc.ErrorInference.gradient_descent(1e-3, 1)
        ),
        "bp": mupc.BPTrainer(optimiser=optax.adam(mupc._published.BP_WEIGHT_LR)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    x = jax.random.normal(jax.random.key(1), (args.batch, 28, 28, 1))
    y = jax.nn.one_hot(jnp.arange(args.batch) % 10, 10)
    for blocks in args.blocks:
        config = mupc.ConvConfig((28, 28, 1), tuple(args.channels), blocks, 10)
        network = mupc.ConvResNet(config, key=jax.random.key(0))
        methods = trainers(network.num_layers)
        first, times = interleaved_step_times(methods, network, x, y, args.repeats)
        for name in methods:
            print(
                json.dumps(
                    {
                        "benchmark": "conv_train_step",
                        "blocks_per_stage": blocks,
                        "layers": network.num_layers,
                        "channels": args.channels,
                        "method": name,
                        "first_step_s": round(first[name], 3),
                        "compile_s": round(first[name] - statistics.median(times[name]), 3),
                        "step_s": round(statistics.median(times[name]), 4),
                        **machine(),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
