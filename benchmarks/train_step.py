"""Benchmark the μPC training step and a plain batched matmul of the same shapes.

Run: `python benchmarks/train_step.py [--depths 8 32 128] [--width 128] [--batch 64]`.
Prints one JSON object per line. The step is ReLU, μPC, GD on activities for T = H steps
(published activity step 0.5 at batch 64), Adam on the weights, on synthetic MNIST-shaped data.
`first_step_s` is the first step (compilation included), `compile_s` the first step minus the
median step `step_s` (at H = 1,024 a step alone takes seconds).
"""

import argparse
import json
import os
import statistics
import sys
import time

if __name__ == "__main__" and "--devices" in sys.argv:
    # Host devices must be requested before JAX starts: one per CPU core used.
    count = sys.argv[sys.argv.index("--devices") + 1]
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={count}"

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _machine import machine

import mupc


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _dense_flops(depth: int, width: int, batch: int, steps: int) -> float:
    """FLOPs of the step's matmuls if inference updated every layer in every step (no
    skipping). Inference skips the layers whose gradient is still exactly zero (at the
    published settings most of them), so `dense_gflops` = these FLOPs / step time is the rate
    a step that did all the work would need: above the matmul ceiling, skipping is winning."""
    matmul = 2.0 * batch * width * width
    hidden = depth - 1
    inference = 2 * matmul * steps * hidden  # prediction + backward pass per layer
    feedforward = 3 * matmul * hidden  # forward pass, energy before, energy after
    weight_grad = matmul * hidden
    io = 2.0 * batch * width * (784 + 10) * (steps + 3)
    return inference + feedforward + weight_grad + io


def bench_step(depth: int, width: int, batch: int, repeats: int, devices: int) -> dict:
    config = mupc.NetworkConfig(784, width, depth, 10, "relu", "mupc")
    network = mupc.ResNet(config, key=jax.random.key(0))
    trainer = mupc.PCTrainer(
        optimiser=optax.adam(0.1),
        inference=mupc.DiscreteInference.gradient_descent(0.5 / batch),
    )
    if devices > 1:  # data parallel: the batch split over `devices` host devices (cores)
        trainer = mupc.ParallelTrainer(trainer, mupc.device_mesh(devices, "data"))
    state = trainer.init(network, jax.random.key(1))
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(batch, 784)).astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]

    start = time.perf_counter()
    state, metrics = trainer.step(state, inputs, targets)
    jax.block_until_ready(state)
    first_step_s = time.perf_counter() - start

    def one_step():
        nonlocal state
        state, _ = trainer.step(state, inputs, targets)
        return state

    step_s = _median_seconds(one_step, repeats)
    flops = _dense_flops(depth, width, batch, depth)
    return {
        "benchmark": "pc_train_step",
        "depth": depth,
        "width": width,
        "batch": batch,
        "inference_steps": depth,
        "first_step_s": round(first_step_s, 3),
        "compile_s": round(first_step_s - step_s, 3),
        "step_s": round(step_s, 4),
        "dense_gflops": round(flops / step_s / 1e9, 1),
        "loss": float(metrics.loss),
    }


def bench_matmul(layers: int, width: int, batch: int, repeats: int) -> float:
    key = jax.random.key(0)
    weights = jax.random.normal(key, (layers, width, width))
    activities = jax.random.normal(key, (layers, batch, width))
    matmul = jax.jit(lambda z, w: jnp.einsum("lbn,lmn->lbm", z, w))
    jax.block_until_ready(matmul(activities, weights))
    seconds = _median_seconds(lambda: matmul(activities, weights), repeats)
    return 2.0 * layers * batch * width * width / seconds / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--devices", type=int, default=1, help="data-parallel over this many CPU host devices"
    )
    args = parser.parse_args()
    matmul_gflops = bench_matmul(126, args.width, args.batch, 50)
    for depth in args.depths:
        result = bench_step(depth, args.width, args.batch, args.repeats, args.devices)
        result["matmul_gflops"] = round(matmul_gflops, 1)
        result["devices"] = jax.device_count()
        result.update(machine(), backend=str(jax.devices()[0].platform))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
