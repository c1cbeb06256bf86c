"""Benchmark the training step of each method on the same μPC network: standard PC inference
(GD, T = H, the published setting), ePC (T = 1 and T = 5) and backprop.

Run: `python benchmarks/methods.py [--depths 8 32 128] [--width 128] [--repeats 10]`.
Prints one JSON line per (method, depth): the median seconds per step after the first
(compiling) step, the first step's seconds, and the machine (CPU model, cores, load average).
The methods of one depth are timed interleaved, so their ratios are measured in one run.
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


def trainers(epc_lr: float) -> dict:
    adam = optax.adam(mupc._published.MUPC_WEIGHT_LR)
    return {
        "pc (GD, T = H)": mupc.PCTrainer(optimiser=adam),
        "epc (T = 1)": mupc.PCTrainer(
            optimiser=adam, inference=mupc.ErrorInference.gradient_descent(epc_lr, 1)
        ),
        "epc (T = 5)": mupc.PCTrainer(
            optimiser=adam, inference=mupc.ErrorInference.gradient_descent(epc_lr, 5)
        ),
        "bp": mupc.BPTrainer(optimiser=optax.adam(mupc._published.BP_WEIGHT_LR)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--epc-lr", type=float, default=1e-3)
    args = parser.parse_args()
    x = jax.random.normal(jax.random.key(1), (args.batch, 784))
    y = jax.nn.one_hot(jnp.arange(args.batch) % 10, 10)
    for depth in args.depths:
        config = mupc.NetworkConfig(784, args.width, depth, 10, "relu", "mupc")
        network = mupc.ResNet(config, key=jax.random.key(0))
        methods = trainers(args.epc_lr)
        first, times = interleaved_step_times(methods, network, x, y, args.repeats)
        reference = statistics.median(times["bp"])
        for name in methods:
            step = statistics.median(times[name])
            print(
                json.dumps(
                    {
                        "method": name,
                        "depth": depth,
                        "width": args.width,
                        "batch": args.batch,
                        "step_s": round(step, 5),
                        "first_step_s": round(first[name], 3),
                        "relative_to_bp": round(step / reference, 2),
                        **machine(),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
