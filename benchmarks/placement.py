"""A plain `mupc train` against `--devices 1` and `--devices 2`, measured in one run.

Run: `python benchmarks/placement.py [--depth 128] [--steps 80] [--rounds 3]`. Each round runs
the three commands, each as its own `mupc` process, in a rotated order (so that a change of
load on a shared machine falls on all three alike):

- `plain`: `mupc train -H 128 --steps 80` with no `--devices` (the default, ``auto``), with a
  fresh placement cache for this benchmark: its first run calibrates (times one device
  against one per core) and stores the choice, the later rounds take it from the cache;
- `devices-1`, `devices-2`: the same with `--devices 1` and `--devices 2`.

A run's seconds per step are read from its `metrics.jsonl`: the wall time from the 10th
logged step to the last step before the final evaluation, over the steps between (the
compilation, the calibration and the evaluation are left out). Prints one JSON line per run,
then one with the median of each command over the rounds, the plain run's ratio to the
faster of the other two (`plain_vs_best`: ≤ 1.10 is the target), its placement, and the
wall time of the plain run that calibrated against one that read the cache. Runs timed one
after the other see whatever load the machine has at the time; so the run ends by timing the
two placements in turn (`--repeats` steps each, in bursts of 3) in one process with two host
devices, and reports the plain run's choice against the faster of them there
(`plain_choice_vs_best_interleaved`).

`--in-process` instead checks what the calibration relies on: that a process with two host
devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`) runs the one-device step as
fast as a plain process. Each round starts one plain process and one two-device process (in a
rotated order), each timing `--repeats` steps of the one-device μPC step (the second also of
the two-device data-parallel step, alternating in bursts of 3 chained steps, as the training
loop runs them); it prints the median wall and CPU seconds per step of each, and
`busy_threads`, the median number of threads that did at least a quarter of the busiest
thread's work in a burst (from `/proc/self/task`; a count that the load of a shared machine
does not change, unlike the wall time).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine

COMMANDS = {"plain": [], "devices-1": ["--devices", "1"], "devices-2": ["--devices", "2"]}
# Steps timed together: chained without waiting in between, as in the training loop.
BURST = 3


def steady_seconds_per_step(metrics: Path, skip: int) -> float:
    """Seconds per step between the logged step `skip` and the last logged step before the
    end (whose record includes the final evaluation)."""
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    records = [r for r in records if "test_accuracy" not in r]  # no evaluation inside
    first = next(r for r in records if r["step"] >= skip)
    last = records[-1]
    if last["step"] <= first["step"]:
        raise ValueError(f"{metrics}: too few logged steps after step {skip}; add --steps")
    return (last["wall_seconds"] - first["wall_seconds"]) / (last["step"] - first["step"])


def run_once(name: str, flags: list[str], args, folder: Path, env: dict) -> dict:
    out = folder / f"{name}-{time.monotonic_ns()}"
    command = [
        sys.executable, "-c", "import mupc_cli; mupc_cli.main()", "train",
        "-H", str(args.depth), "-N", str(args.width), "--steps", str(args.steps),
        "--log-every", "10", "--eval-every", str(args.steps), "--quiet", "--out", str(out),
        *flags,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "command": name,
        "step_s": round(steady_seconds_per_step(out / "metrics.jsonl", 10), 4),
        "process_wall_s": round(wall, 2),
        "placement": summary["placement"],
        **machine(),
    }


def _thread_ticks() -> dict[str, int]:
    """CPU ticks (user + system) of each thread of this process so far (Linux; {} elsewhere)."""
    ticks = {}
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:
        return ticks
    for thread in threads:
        try:
            with open(f"/proc/self/task/{thread}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[thread] = int(fields[11]) + int(fields[12])
    return ticks


def _in_process_child(depth: int, width: int, repeats: int) -> None:
    """One process's medians: the one-device step, and with two host devices also the
    two-device step (alternating with it)."""
    import jax
    import numpy as np
    import optax

    import mupc

    batch = 64
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(batch, 784)).astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    network = mupc.ResNet(
        mupc.NetworkConfig(784, width, depth, 10, "relu", "mupc"), key=jax.random.key(0)
    )
    trainer = mupc.PCTrainer(
        optimiser=optax.adam(0.1),
        inference=mupc.DiscreteInference.gradient_descent(0.5 / batch),
    )
    runners = {"one-device step": trainer}
    if jax.device_count() > 1:
        runners["two-device step"] = mupc.ParallelTrainer(trainer, mupc.device_mesh(2, "data"))
    states = {}
    for name, runner in runners.items():
        states[name], metrics = runner.step(runner.init(network), inputs, targets)
        jax.block_until_ready(metrics.loss)
    wall: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    busy: dict[str, list[int]] = {name: [] for name in runners}
    for _ in range(max(1, repeats // BURST)):
        for name, runner in runners.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            ticks = _thread_ticks()
            # BURST chained steps, as the training loop runs them, then wait for the whole
            # new state: with two devices, one device's part of the metrics can be ready
            # while the other is still computing its half.
            for _ in range(BURST):
                states[name], metrics = runner.step(states[name], inputs, targets)
            jax.block_until_ready((states[name], metrics))
            wall[name].append((time.perf_counter() - started) / BURST)
            cpu[name].append((time.process_time() - started_cpu) / BURST)
            after = _thread_ticks()
            moved = sorted((after[t] - ticks.get(t, 0) for t in after), reverse=True)
            busy[name].append(sum(1 for m in moved if m >= max(1, moved[0] // 4)))
    print(
        json.dumps(
            {
                name: {
                    "step_s": round(statistics.median(wall[name]), 4),
                    "cpu_s": round(statistics.median(cpu[name]), 4),
                    "busy_threads": statistics.median(busy[name]),
                }
                for name in runners
            }
        )
    )


def _child_medians(args, root: Path, env: dict, devices: int) -> dict:
    """`_in_process_child`'s medians, from a fresh process with `devices` host devices."""
    child = [
        sys.executable, __file__, "--child", "--depth", str(args.depth),
        "--width", str(args.width), "--repeats", str(args.repeats),
    ]  # fmt: skip
    flags = f"--xla_force_host_platform_device_count={devices}" if devices > 1 else ""
    done = subprocess.run(child, env={**env, "XLA_FLAGS": flags}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_process(args, root: Path) -> None:
    """The `--in-process` check (see the module docstring)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    kinds = {"plain process": 1, "two-device process": 2}
    started = time.perf_counter()
    for round_ in range(args.rounds):
        for kind in list(kinds)[round_ % 2 :] + list(kinds)[: round_ % 2]:
            measured = _child_medians(args, root, env, kinds[kind])
            print(json.dumps({"round": round_, "process": kind, **measured, **machine()}))
    print(json.dumps({"benchmark_wall_s": round(time.perf_counter() - started, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=128)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-process", action="store_true", help="see the docstring")
    parser.add_argument("--repeats", type=int, default=20, help="steps timed step by step")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _in_process_child(args.depth, args.width, args.repeats)
    if args.rounds < 2 or args.steps < 40:
        parser.error("use at least 2 rounds and 40 steps")
    root = Path(__file__).resolve().parents[1]
    if args.in_process:
        return in_process(args, root)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
            "MUPC_PLACEMENT_CACHE": str(Path(folder) / "placement.json"),
        }
        for name in ("MUPC_DEVICES", "XLA_FLAGS"):
            env.pop(name, None)
        names = list(COMMANDS)
        results: dict[str, list[dict]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            order = names[round_ % 3 :] + names[: round_ % 3]
            for name in order:
                result = run_once(name, COMMANDS[name], args, Path(folder), env)
                results[name].append(result)
                print(json.dumps({"round": round_, **result}), flush=True)
        # The same two placements timed step by step in turn in one two-device process (the
        # alternation that the calibration uses, longer): robust to a change of load.
        interleaved = _child_medians(args, root, env, 2)
    medians = {name: statistics.median(r["step_s"] for r in runs) for name, runs in results.items()}
    one, two = (interleaved[k]["step_s"] for k in ("one-device step", "two-device step"))
    chosen = results["plain"][-1]["placement"]["devices"]
    best = min(medians["devices-1"], medians["devices-2"])
    plain = results["plain"]
    print(
        json.dumps(
            {
                "depth": args.depth,
                "width": args.width,
                "rounds": args.rounds,
                "median_step_s": {k: round(v, 4) for k, v in medians.items()},
                "devices_2_vs_1": round(medians["devices-2"] / medians["devices-1"], 3),
                "plain_vs_best": round(medians["plain"] / best, 3),
                "plain_placement": plain[-1]["placement"],
                "interleaved_step_s": {"1": one, "2": two},
                "plain_choice_vs_best_interleaved": round(
                    (one if chosen == 1 else two) / min(one, two), 3
                ),
                "calibrating_run_wall_s": plain[0]["process_wall_s"],
                "cached_run_wall_s": plain[-1]["process_wall_s"],
                "benchmark_wall_s": round(time.perf_counter() - started, 1),
                **machine(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
