"""Steps per second of the μPC training step against the number of (simulated) devices.

Run: `python benchmarks/parallel.py [--devices 1 2 4] [--depths 32 128] [--width 128]
[--batch 64] [--repeats 3] [--modes data layers both] [--rounds 1]`. Prints one JSON object per
line, with the machine's load average (the machine may be shared: compare modes measured in
the same run, not absolute times across runs).

Each device count runs in its own subprocess with
`XLA_FLAGS=--xla_force_host_platform_device_count=K` (on CPU; on a GPU host the real devices
are used and K must not exceed them). The step is ReLU, μPC, gradient descent on the
activities for T = H steps (published activity step 0.5 at batch 64), Adam on the weights, on
synthetic MNIST-shaped data. With one device it reports the plain `PCTrainer` step with and
without `skip_inactive` (layer sharding always computes every layer); with K devices it
reports `ParallelTrainer` for "data" (K × 1 mesh), "layers" (1 × K) and, for K ≥ 4, "both"
(`--modes` picks some of them). `--rounds R` repeats the whole set R times, interleaved, so
that a change of load shows up as a spread between rounds instead of a bias.
`cpu_s` is the process's CPU time per step (all threads): `cpu_s / step_s` is the number of
cores the step kept busy, which stays meaningful on a machine shared with other jobs.
"""

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def _child(
    devices: int, depths: list[int], width: int, batch: int, repeats: int, modes: list[str]
) -> None:
    import jax
    import numpy as np
    import optax

    import mupc
    from mupc import ParallelTrainer, device_mesh

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(batch, 784)).astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]

    def measure(runner, network):
        state = runner.init(network, jax.random.key(1))
        start = time.perf_counter()
        state, metrics = runner.step(state, inputs, targets)  # compile + first step
        jax.block_until_ready(metrics.loss)
        compile_s = time.perf_counter() - start
        times, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            state, metrics = runner.step(state, inputs, targets)
            jax.block_until_ready((state, metrics.loss))
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        return statistics.median(times), statistics.median(cpu), compile_s

    for depth in depths:
        config = mupc.NetworkConfig(784, width, depth, 10, "relu", "mupc")
        network = mupc.ResNet(config, key=jax.random.key(0))

        def pc(skip):
            gd = mupc.DiscreteInference.gradient_descent(0.5 / batch, skip_inactive=skip)
            return mupc.PCTrainer(optimiser=optax.adam(0.1), inference=gd)

        if devices == 1:
            runs = [("single", True, pc(True)), ("single", False, pc(False))]
        else:
            wanted = ["data", "layers"] + (["both"] if devices >= 4 else [])
            runs = [
                (mode, True, ParallelTrainer(pc(True), device_mesh(devices, mode)))
                for mode in wanted
                if mode in modes
            ]
        for mode, skip, runner in runs:
            mesh = None if mode == "single" else dict(runner.mesh.shape)
            step_s, cpu_s, compile_s = measure(runner, network)
            record = {
                "benchmark": "parallel_pc_step",
                "mode": mode,
                "devices": devices,
                "mesh": mesh,
                "skip_inactive": skip if mode in ("single", "data") else False,
                "depth": depth,
                "width": width,
                "batch": batch,
                "step_s": round(step_s, 4),
                "steps_per_s": round(1 / step_s, 3),
                "cpu_s": round(cpu_s, 4),  # CPU time of this process per step (all threads)
                "compile_s": round(compile_s, 2),
                "backend": jax.default_backend(),
                "cpu_count": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "code": os.path.dirname(os.path.dirname(os.path.abspath(mupc.__file__))),
            }
            print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--depths", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["data", "layers", "both"])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.depths, args.width, args.batch, args.repeats, args.modes)
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for _, devices in itertools.product(range(args.rounds), args.devices):
        env = dict(os.environ)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
        env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
        command = [sys.executable, os.path.abspath(__file__), "--child", str(devices)]
        command += ["--depths", *map(str, args.depths), "--width", str(args.width)]
        command += ["--batch", str(args.batch), "--repeats", str(args.repeats)]
        command += ["--modes", *args.modes]
        subprocess.run(command, env=env, check=True)


if __name__ == "__main__":
    main()
