"""Compile time of the training step against depth, timed on its own.

Run: `python benchmarks/compile_depth.py [--depths 8 1024] [--rounds 3]`. Prints one JSON
object per (round, method, depth) and then one summary line per method with the range of the
compile-time ratio of each depth to the first, over the rounds. Each measurement lowers and
compiles the training step ahead of time (`jax.jit(...).lower(...).compile()`), so no step is
run and the time is the compiler's alone: subtracting a step from a first step, as
`train_step.py` does, is too noisy at H = 1,024, where one step takes seconds. The rounds
interleave the depths so that a change of load hits both. μPC network, N = 128, batch 64,
ReLU; PC is gradient descent on the activities with T = H (the published inference), ePC one
error step, BP Depth-μP backprop, each with Adam on the weights.
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import optax
from _machine import machine

import mupc
from mupc._training.base import _compiled_step


def trainers() -> dict:
    adam = optax.adam(1e-3)
    return {
        "pc": mupc.PCTrainer(optimiser=adam),
        "epc": mupc.PCTrainer(optimiser=adam, inference=mupc.ErrorInference.gradient_descent(1e-3)),
        "bp": mupc.BPTrainer(optimiser=adam),
    }


def compile_seconds(trainer, depth: int, width: int, batch: int) -> float:
    """Wall seconds to lower and compile one training step (nothing is cached between calls:
    every call builds a new network, and `jax.clear_caches` runs first)."""
    jax.clear_caches()
    config = mupc.NetworkConfig(784, width, depth, 10, "relu", "mupc")
    state = trainer.init(mupc.ResNet(config, key=jax.random.key(0)), key=jax.random.key(1))
    x = jnp.zeros((batch, 784), jnp.float32)
    y = jax.nn.one_hot(jnp.zeros((batch,), jnp.int32), 10)
    start = time.perf_counter()
    _compiled_step.lower(trainer, state, x, y).compile()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 1024])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["pc", "epc", "bp"])
    args = parser.parse_args()
    found: dict = {}
    for round_ in range(args.rounds):
        for name in args.methods:
            for depth in args.depths:
                seconds = compile_seconds(trainers()[name], depth, args.width, args.batch)
                found.setdefault(name, {}).setdefault(depth, []).append(seconds)
                row = {"round": round_, "method": name, "depth": depth, "compile_s": seconds}
                print(json.dumps({**row, **machine()}), flush=True)
    first = args.depths[0]
    for name, by_depth in found.items():
        for depth in args.depths[1:]:
            ratios = [a / b for a, b in zip(by_depth[depth], by_depth[first], strict=True)]
            summary = {
                "method": name,
                "depth": depth,
                "vs_depth": first,
                "compile_s": [min(by_depth[depth]), max(by_depth[depth])],
                "ratio_range": [min(ratios), max(ratios)],
            }
            print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
