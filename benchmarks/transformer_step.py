"""Benchmark the PC transformer's training step against backprop on the same network: the
character language model (tokens, causal) and the ViT (Fashion-MNIST-shaped patches), at
several depths (blocks).

Run: `python benchmarks/transformer_step.py [--task lm vit] [--blocks 1 1 4 16] [--repeats 10]`.
Prints one JSON line per (task, blocks, method): the median seconds per step after the first
step, the first step's seconds, `compile_s` (the first step minus the median step: the
compilation), the step and compile time relative to backprop's, peak memory and the machine.
The methods of one network are timed interleaved, so their ratios are measured in one run;
`compile_vs_first_blocks` compares a method's compile time with its compile time at the
smallest depth of the run, its last measurement there (the first network timed also pays
JAX's one-off start-up: the default `--blocks 1 1 4 16` measures 1 block twice).
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


def trainers(loss) -> dict:
    adam = optax.adam(1e-3)
    return {
        "pc (GD, T = H)": mupc.PCTrainer(
            optimiser=adam, inference=mupc.DiscreteInference.gradient_descent(0.1), loss=loss
        ),
        "epc (T = 1)": mupc.PCTrainer(
            optimiser=adam, inference=mupc.ErrorInference.gradient_descent(1e-3), loss=loss
        ),
        "bp": mupc.BPTrainer(optimiser=adam, loss=loss),
    }


def task(name: str, blocks: int, batch: int, heads: int, head_dim: int):
    """The network and a batch of the task: `lm` (context 64, 81 characters) or `vit`."""
    key = jax.random.key(1)
    if name == "lm":
        config = mupc.TransformerConfig(
            (64,), 81, vocab_size=81, heads=heads, head_dim=head_dim, blocks=blocks
        )
        ids = jax.random.randint(key, (batch, 65), 0, 81)
        x, y = ids[:, :-1].astype(jnp.float32), jax.nn.one_hot(ids[:, 1:], 81)
    else:
        config = mupc.TransformerConfig(
            (28, 28, 1), 10, patch_size=7, heads=heads, head_dim=head_dim, blocks=blocks
        )
        x = jax.random.normal(key, (batch, 28, 28, 1))
        y = jax.nn.one_hot(jnp.arange(batch) % 10, 10)
    return mupc.Transformer(config, key=jax.random.key(0)), x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", nargs="+", choices=["lm", "vit"], default=["lm", "vit"])
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 1, 4, 16])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    for name in args.task:
        first_blocks: dict[str, float] = {}
        for blocks in args.blocks:
            network, x, y = task(name, blocks, args.batch, args.heads, args.head_dim)
            methods = trainers(mupc.CrossEntropy())
            first, times = interleaved_step_times(methods, network, x, y, args.repeats)
            bp_step, bp_first = statistics.median(times["bp"]), first["bp"]
            for method in methods:
                step = statistics.median(times[method])
                compile_s = first[method] - step  # the first step's extra time: compilation
                if blocks == min(args.blocks):  # the last measurement at the smallest depth
                    first_blocks[method] = compile_s
                print(
                    json.dumps(
                        {
                            "task": name,
                            "method": method,
                            "blocks": blocks,
                            "pc_layers": network.num_layers,
                            "width": args.heads * args.head_dim,
                            "batch": args.batch,
                            "step_s": round(step, 5),
                            "first_step_s": round(first[method], 3),
                            "compile_s": round(compile_s, 3),
                            "step_vs_bp": round(step / bp_step, 2),
                            "compile_vs_bp": round(compile_s / (bp_first - bp_step), 2),
                            "compile_vs_first_blocks": round(compile_s / first_blocks[method], 2),
                            **machine(),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
