"""The GPU check: the paper-size training steps and one Fashion-MNIST epoch, in one command.

Run (on a machine with one GPU and JAX with CUDA, e.g. `pip install -e . "jax[cuda12]"`):

    python benchmarks/gpu.py --out gpu.json [--data-dir DIR]

It measures, on JAX's default device (the GPU where JAX finds one, else the CPU):

1. the MLP training step at the paper's size (N = 512, H = 128, batch 64, ReLU, μPC network):
   μPC as published (gradient descent on the activities, T = H, step 0.5 batch-mean), μPC + ePC
   (T = 1, error step 0.001) and BP, Adam on the weights, taking turns step by step in
   `--rounds` rounds: seconds per step, compile seconds and the ratio to BP's step;
2. the conv ResNet's step at 16 blocks per stage (16 → 32 → 64 channels on 32 × 32 × 3 images,
   51 PC layers): PC with T = L, ePC and BP, the same way;
3. one epoch of μPC as published on the full Fashion-MNIST at the paper's size (Adam 0.05, the
   published Fashion-MNIST rate; seed 0): test accuracy, wall seconds, seconds per step (if
   the epoch would not fit in the time left, as many steps as fit, marked as such).

Everything goes into one JSON file (`--out`): the device, the library versions, the host, every
measurement, the ratios to BP, the peak memory (the process's resident set; the device's peak
bytes where JAX reports them) and the total wall time. The whole check keeps to `--budget-s`
(default 450 s: under 8 minutes with start-up), skipping what no longer fits. `--size tiny`
runs the same on toy sizes in seconds, the epoch on the bundled mnist-sample digits (what the
test suite runs on a CPU).

Synthetic data for the steps (speed does not depend on pixel values); Fashion-MNIST is read
from `--data-dir` or the usual places (see the data page), as `mupc train` does.
"""

import os

# Allocate device memory as needed, so that the device's peak is what the runs use.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from _machine import machine, peak_rss_mb  # noqa: E402
from _timing import interleaved_step_times  # noqa: E402

import mupc  # noqa: E402
from mupc import _published as published  # noqa: E402
from mupc._version import versions  # noqa: E402

SIZES = {
    "paper": {
        "width": published.WIDTH,
        "depth": 128,
        "image_shape": (32, 32, 3),
        "conv_channels": (16, 32, 64),
        "conv_blocks": 16,
        "dataset": "fashion-mnist",
        "repeats": 10,
    },
    "tiny": {
        "width": 8,
        "depth": 2,
        "image_shape": (4, 4, 1),
        "conv_channels": (2,),
        "conv_blocks": 1,
        "dataset": "mnist-sample",
        "repeats": 2,
    },
}
BATCH = published.BATCH_SIZE
EPC_ERROR_LR, EPC_WEIGHT_LR = 1e-3, 0.05  # ePC's defaults (`mupc train --inference epc`)
BP_LR = 0.005  # BP's rate in the Fashion-MNIST results
FMNIST_LR = published.WEIGHT_LR["fashion-mnist"]


def _trainers(pc_steps: int | None) -> dict:
    adam = optax.adam(FMNIST_LR)
    return {
        "mupc": mupc.PCTrainer(
            optimiser=adam,
            inference=mupc.DiscreteInference.gradient_descent(published.ACTIVITY_LR, pc_steps),
        ),
        "epc": mupc.PCTrainer(
            optimiser=optax.adam(EPC_WEIGHT_LR),
            inference=mupc.ErrorInference.gradient_descent(EPC_ERROR_LR, 1),
        ),
        "bp": mupc.BPTrainer(optimiser=optax.adam(BP_LR)),
    }


def _steps(network, inputs, targets, rounds: int, repeats: int) -> list[dict]:
    """Every trainer's step on `network`, interleaved, in `rounds` rounds: one record per
    (round, method) with its median step, the ratio to BP's, and the compile seconds (round
    1's first step minus its median step)."""
    methods = _trainers(network.num_layers)
    records, compile_s = [], {}
    for round_ in range(1, rounds + 1):
        first, times = interleaved_step_times(methods, network, inputs, targets, repeats)
        medians = {name: statistics.median(times[name]) for name in methods}
        for name in methods:
            compile_s.setdefault(name, first[name] - medians[name])
            records.append(
                {
                    "round": round_,
                    "method": name,
                    "step_s": round(medians[name], 6),
                    "compile_s": round(compile_s[name], 3),
                    "relative_to_bp": round(medians[name] / medians["bp"], 3),
                }
            )
    return records


def _mlp(size: dict, rounds: int) -> dict:
    config = mupc.NetworkConfig(784, size["width"], size["depth"], 10, "relu", "mupc")
    network = mupc.ResNet(config, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (BATCH, 784))
    y = jax.nn.one_hot(jnp.arange(BATCH) % 10, 10)
    steps = _steps(network, x, y, rounds, size["repeats"])
    return {"width": size["width"], "depth": size["depth"], "batch": BATCH, "steps": steps}


def _conv(size: dict, rounds: int) -> dict:
    config = mupc.ConvConfig(size["image_shape"], size["conv_channels"], size["conv_blocks"], 10)
    network = mupc.ConvResNet(config, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (BATCH, *size["image_shape"]))
    y = jax.nn.one_hot(jnp.arange(BATCH) % 10, 10)
    steps = _steps(network, x, y, rounds, size["repeats"])
    return {
        "image_shape": list(size["image_shape"]),
        "channels": list(size["conv_channels"]),
        "blocks_per_stage": size["conv_blocks"],
        "layers": network.num_layers,
        "batch": BATCH,
        "steps": steps,
    }


def _epoch(
    size: dict, data_dir: str | None, run_dir: str | None, seconds_left: float, step_s: float | None
) -> dict:
    """One epoch of μPC as published at the paper's size (fewer steps if it would not fit in
    `seconds_left`, estimated from the measured `step_s`), into `run_dir` (a temporary folder
    when None)."""
    from mupc.experiments import RunConfig, run_experiment

    config = RunConfig(
        dataset=size["dataset"],
        data_dir=data_dir,
        width=size["width"],
        depth=size["depth"],
        lr=FMNIST_LR,
        activity_lr=published.ACTIVITY_LR,
        epochs=1.0,
        eval_every=10**9,  # once, at the end
        checkpoint_every=10**9,
    )
    try:  # as `mupc train` loads it (flat vectors for the MLP)
        data = mupc.load_dataset(config.dataset, data_dir=data_dir, download=False, layout="flat")
    except (OSError, ValueError) as error:
        return {"skipped": f"{config.dataset} not loaded: {error}"}
    total = config.total_steps(data.train_images.shape[0])
    steps = total
    if step_s is not None:  # the MLP phase's step, plus evaluation and compilation
        steps = max(1, min(total, int((seconds_left - 60) / (1.2 * step_s))))
    if steps < total:
        config = dataclasses.replace(config, epochs=None, steps=steps)
    with tempfile.TemporaryDirectory() as temporary:
        out = run_dir if run_dir is not None else temporary
        summary = run_experiment(config, out, progress=False, dataset=data)
    return {
        "dataset": data.name,
        "width": config.width,
        "depth": config.depth,
        "method": "mupc (GD, T = H)",
        "steps": summary.steps,
        "fraction_of_epoch": round(summary.steps / total, 4),
        "test_accuracy": summary.test_accuracy,
        "wall_s": summary.wall_seconds,
        "seconds_per_step": summary.seconds_per_step,
        "status": summary.status,
    }


def _device() -> dict:
    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "kind": device.device_kind,
        "count": jax.device_count(),
    }


def _device_peak_bytes() -> int | None:
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # not every backend reports memory
        return None
    return None if not stats else stats.get("peak_bytes_in_use")


def _write(path: Path, record: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(record, indent=1) + "\n")
    temporary.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="gpu.json", help="the JSON file (default gpu.json)")
    parser.add_argument("--size", choices=sorted(SIZES), default="paper")
    parser.add_argument("--data-dir", help="where Fashion-MNIST is (default: the usual places)")
    parser.add_argument("--run-dir", help="keep the epoch's run (checkpoint, metrics) here")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="time budget (seconds)")
    args = parser.parse_args()
    started = time.perf_counter()
    size = SIZES[args.size]
    out = Path(args.out)
    record: dict = {
        "benchmark": "gpu_check",
        "size": args.size,
        "device": _device(),
        "versions": versions(),
        "host": machine(),
        "budget_s": args.budget_s,
    }

    def left() -> float:
        return args.budget_s - (time.perf_counter() - started)

    phases = (
        ("mlp", lambda: _mlp(size, args.rounds)),
        ("conv", lambda: _conv(size, args.rounds)),
        ("epoch", lambda: _epoch(size, args.data_dir, args.run_dir, left(), _mupc_step(record))),
    )
    for name, phase in phases:
        if left() <= 0:
            record[name] = {"skipped": "time budget spent"}
            continue
        phase_started = time.perf_counter()
        record[name] = phase()
        record[name]["phase_s"] = round(time.perf_counter() - phase_started, 1)
        record["wall_s"] = round(time.perf_counter() - started, 1)
        _write(out, record)  # what is measured so far survives a kill
        print(f"{name}: {json.dumps(record[name])}", flush=True)
    record["peak_rss_mb"] = peak_rss_mb()
    record["device_peak_bytes"] = _device_peak_bytes()
    record["wall_s"] = round(time.perf_counter() - started, 1)
    _write(out, record)
    print(f"wrote {out} ({record['wall_s']} s on {record['device']['kind']})")


def _mupc_step(record: dict) -> float | None:
    """The MLP phase's last median μPC step, if it ran."""
    steps = record.get("mlp", {}).get("steps", [])
    times = [r["step_s"] for r in steps if r["method"] == "mupc"]
    return times[-1] if times else None


if __name__ == "__main__":
    main()
