"""The conv ResNet's training step and compile time against depth: PC, ePC and BP interleaved.

Run: `python benchmarks/conv_step.py [--blocks 1 2 4 8 16] [--channels 8 16 32]`.
Prints one JSON object per (blocks, method) with the machine's facts. The network is the μPC conv
ResNet (docs/method.md) on 28×28×1 images (Fashion-MNIST's shape), ReLU, 3×3 kernels, one stage per
`--channels` entry, batch 64, synthetic data; PC runs T = L gradient-descent steps on the activities
(published 0.5 batch-mean step), ePC one error step of 0.001 (its default), all with Adam on the
weights; PC is also timed without skipping unmoved layers. The methods take turns step by step, in
`--rounds` rounds; `step_s` is a round's median step, `relative_to_epc` and `relative_to_bp` its
ratio to ePC's and BP's in the same round, `compile_s` the first step (compilation included) minus
the median step. Targets: compile at 16 blocks per stage within 1.5× of 1 block; PC's step (T = L)
within 3× ePC's at 16 blocks per stage.
"""

import argparse
import json
import statistics

import equinox as eqx
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
        "pc (GD, T = L, no skipping)": mupc.PCTrainer(
            optimiser=adam, inference=eqx.tree_at(lambda s: s.skip_inactive, gd, False)
        ),
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
    parser.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds (ratios are given per round)"
    )
    parser.add_argument(
        "--methods", nargs="+", help="a subset of the methods (names as printed; default all)"
    )
    args = parser.parse_args()
    x = jax.random.normal(jax.random.key(1), (args.batch, 28, 28, 1))
    y = jax.nn.one_hot(jnp.arange(args.batch) % 10, 10)
    for blocks in args.blocks:
        config = mupc.ConvConfig((28, 28, 1), tuple(args.channels), blocks, 10)
        network = mupc.ConvResNet(config, key=jax.random.key(0))
        methods = trainers(network.num_layers)
        if args.methods:
            methods = {name: methods[name] for name in args.methods}
        compile_s = {}
        for round_ in range(1, args.rounds + 1):
            # Round 1's first steps compile; later rounds reuse the compiled steps.
            first, times = interleaved_step_times(methods, network, x, y, args.repeats)
            steps = {name: statistics.median(times[name]) for name in methods}
            for name in methods:
                compile_s.setdefault(name, first[name] - steps[name])
                print(
                    json.dumps(
                        {
                            "benchmark": "conv_train_step",
                            "round": round_,
                            "blocks_per_stage": blocks,
                            "layers": network.num_layers,
                            "channels": args.channels,
                            "method": name,
                            "compile_s": round(compile_s[name], 3),
                            "step_s": round(steps[name], 4),
                            **{
                                f"relative_to_{base}": round(steps[name] / steps[full], 2)
                                for base, full in (("epc", "epc (T = 1)"), ("bp", "bp"))
                                if full in steps
                            },
                            **machine(),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
