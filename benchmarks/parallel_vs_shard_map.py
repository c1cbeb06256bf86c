"""The layer-parallel step against the separate shard_map implementation it replaced.

Run: `python benchmarks/parallel_vs_shard_map.py [--devices 4] [--depths 32 128] [--width 128]
[--batch 64] [--pairs 7] [--commit 271d0fe]`. Prints one JSON object per line.

Until commit 271d0fe, layer parallelism was a second PC implementation (`_layer_parallel_pc_step`
in `mupc/_parallel.py`, a `shard_map` program with its own feedforward, energy and inference
loop). This script loads that file from git history (`git show COMMIT:mupc/_parallel.py`, so it
needs a clone with history) next to the current `mupc`, and times both steps in one process on
the same mesh, alternating old and new step by step, so that a machine shared with other jobs
loads both alike: `new_over_old` is the median over the pairs of the ratio of the two step
times. The step is ReLU, μPC, gradient descent on the activities for T = H steps (published
activity step 0.5 at batch 64), Adam on the weights, synthetic MNIST-shaped data.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def _load_old(commit: str):
    """The old `mupc/_parallel.py` as module `mupc._parallel_shard_map` (relative imports
    resolve against the current package)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = subprocess.run(
        ["git", "show", f"{commit}:mupc/_parallel.py"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = os.path.join(tempfile.mkdtemp(), "_parallel_shard_map.py")
    with open(path, "w") as file:
        file.write(source)
    spec = importlib.util.spec_from_file_location("mupc._parallel_shard_map", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--depths", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--modes", nargs="+", default=["layers", "both"])
    parser.add_argument("--commit", default="271d0fe")
    args = parser.parse_args()
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={args.devices}".strip()
        )

    import jax
    import numpy as np
    import optax

    import mupc

    old = _load_old(args.commit)
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(args.batch, 784)).astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[rng.integers(0, 10, args.batch)]
    activity_lr = 0.5 / args.batch

    def timed(runner, state):
        start = time.perf_counter()
        state, metrics = runner.step(state, inputs, targets)
        jax.block_until_ready((state, metrics.loss))
        return state, time.perf_counter() - start

    for depth, mode in [(d, m) for d in args.depths for m in args.modes]:
        config = mupc.NetworkConfig(784, args.width, depth, 10, "relu", "mupc")
        network = mupc.ResNet(config, key=jax.random.key(0))
        trainer = mupc.PCTrainer(
            optimiser=optax.adam(0.1),
            inference=mupc.DiscreteInference.gradient_descent(activity_lr),
        )
        runners = {
            "old": old.ParallelTrainer(trainer, old.device_mesh(args.devices, mode)),
            "new": mupc.ParallelTrainer(trainer, mupc.device_mesh(args.devices, mode)),
            "single": trainer,
        }
        states, compile_s, times = {}, {}, {name: [] for name in runners}
        for name, runner in runners.items():
            states[name], compile_s[name] = timed(runner, runner.init(network, jax.random.key(1)))
        cpu_start = time.process_time()
        for _ in range(args.pairs):
            for name, runner in runners.items():
                states[name], seconds = timed(runner, states[name])
                times[name].append(seconds)
        ratios = [n / o for n, o in zip(times["new"], times["old"], strict=True)]
        record = {
            "benchmark": "layer_parallel_vs_shard_map",
            "mode": mode,
            "devices": args.devices,
            "depth": depth,
            "width": args.width,
            "batch": args.batch,
            "old_step_s": round(statistics.median(times["old"]), 4),
            "new_step_s": round(statistics.median(times["new"]), 4),
            "single_device_step_s": round(statistics.median(times["single"]), 4),
            "new_over_old": round(statistics.median(ratios), 3),
            "new_over_old_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "compile_s": {name: round(value, 2) for name, value in compile_s.items()},
            "pairs": args.pairs,
            "cpu_seconds_all_steps": round(time.process_time() - cpu_start, 2),
            "backend": jax.default_backend(),
            "cpu_count": os.cpu_count(),
            "machine": platform.processor() or platform.machine(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "old_commit": args.commit,
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
