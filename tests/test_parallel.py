"""Data- and layer-parallel training against single-device training (the oracle).

Everything that needs several devices runs once in a subprocess with 4 simulated CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=4`), so the rest of the suite keeps one
device; this file re-runs itself as that subprocess (`python tests/test_parallel.py worker`)
and the tests check the JSON it prints.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import tolerance

DEVICES = 4
COLLECTIVES = ("all-gather", "all-reduce", "collective-permute", "all-to-all", "reduce-scatter")


# --------------------------------------------------------------------------- worker


def _collectives_by_computation(hlo: str) -> dict:
    """The collectives of a compiled HLO module: `{"loops": {body: ops}, "outside": ops}`,
    each op `{"op", "shape", "direction"}` with direction "up" / "down" for a
    collective-permute sending to the next / previous device."""
    computation, ops, bodies = None, {}, set()
    pattern = r"= (.*?) ({})(?:-start)?\(".format("|".join(COLLECTIVES))
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%(\S+) .*\{$", line)
        if header:
            computation = header.group(1)
            continue
        body = re.search(r"\bwhile\(.*body=%([^,\s]+)", line)
        if body:
            bodies.add(body.group(1))
        found = re.search(pattern, line)
        if found:
            pairs = re.findall(r"\{(\d+),(\d+)\}", line.split("source_target_pairs=")[-1])
            direction = None
            if found.group(2) == "collective-permute" and pairs:
                direction = "up" if all(int(b) > int(a) for a, b in pairs) else "down"
            op = {"op": found.group(2), "shape": found.group(1), "direction": direction}
            ops.setdefault(computation, []).append(op)
    loops = {name: ops.get(name, []) for name in bodies}
    outside = [op for name, found in ops.items() if name not in bodies for op in found]
    return {"loops": loops, "outside": outside}


def _worker() -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import mupc
    from mupc._parallel import ParallelTrainer, _parallel_step, device_mesh

    assert len(jax.devices()) == DEVICES
    # The suite's strict settings (conftest.py is not loaded in this subprocess).
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    config = mupc.NetworkConfig(6, 16, 8, 3, "tanh", "mupc")
    network = mupc.ResNet(config, key=jax.random.key(0))
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(3, 8, 6)).astype(np.float32)
    targets = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (3, 8))]

    def train(trainer, parallel=None):
        runner = trainer if parallel is None else ParallelTrainer(trainer, parallel)
        state = runner.init(network, jax.random.key(1))
        metrics = []
        for x, y in zip(inputs, targets, strict=True):
            state, m = runner.step(state, x, y)
            metrics.append([np.asarray(v).tolist() for v in m if v is not None])
        if parallel is not None:
            state = runner.unshard(state)
        return state.network, metrics

    def leaves(net):
        return [np.asarray(a, np.float64) for a in jax.tree.leaves(net)]

    def max_difference(first, second):
        return max(float(np.abs(a - b).max()) for a, b in zip(first, second, strict=True))

    def compare(trainer, mode):
        ref_net, ref_metrics = train(trainer)
        net, metrics = train(trainer, device_mesh(DEVICES, mode))
        shapes = [a.shape for a in leaves(net)] == [a.shape for a in leaves(ref_net)]
        weight_error = max_difference(leaves(net), leaves(ref_net))
        moved = max_difference(leaves(network), leaves(ref_net))
        metric_error = float(
            max(
                np.abs(np.asarray(a) - np.asarray(b)).max()
                for ma, mb in zip(metrics, ref_metrics, strict=True)
                for a, b in zip(ma, mb, strict=True)
            )
        )
        scale = max(float(np.abs(a).max()) for a in leaves(ref_net))
        # The largest loss or energy (a step count that differs exceeds any tolerance).
        metric_scale = float(max(np.abs(np.asarray(a)).max() for m in ref_metrics for a in m[:3]))
        return {
            "shapes": shapes,
            "weights": weight_error,
            "moved": moved,
            "metrics": metric_error,
            "scale": scale,
            "metric_scale": metric_scale,
        }

    # SGD on the weights: Adam would turn rounding in near-zero gradients into steps of ±lr.
    gd = mupc.DiscreteInference.gradient_descent(0.1)
    pc = mupc.PCTrainer(optimiser=optax.sgd(0.5), inference=gd)
    pc_variant = mupc.PCTrainer(
        optimiser=optax.sgd(0.5),
        inference=mupc.DiscreteInference(optax.adam(0.02), steps=5),
        activity_init=mupc.NormalInit(0.5),
        record_layer_energies=True,
    )
    results = {"equality": {}}
    for mode in ("data", "layers", "both"):
        results["equality"][f"pc-{mode}"] = compare(pc, mode)
    results["equality"]["pc-variant-layers"] = compare(pc_variant, "layers")
    results["equality"]["pc-variant-both"] = compare(pc_variant, "both")
    results["equality"]["bp-data"] = compare(mupc.BPTrainer(optax.sgd(0.5)), "data")

    # The compiled programs: which collectives, of which shapes, inside which loops.
    results["hlo"] = {}
    for mode in ("data", "layers", "both"):
        parallel = ParallelTrainer(pc, device_mesh(DEVICES, mode))
        state = parallel.init(network)
        x, y = parallel.shard_batch(jnp.asarray(inputs[0]), jnp.asarray(targets[0]))
        text = _parallel_step.lower(parallel, state, x, y).lowered.compile().as_text()
        results["hlo"][mode] = {
            "collectives": _collectives_by_computation(text),
            "boundary": f"f32[{8 // parallel.data_devices},16]",
        }

    # Error cases.
    errors = {}
    cases = {
        "too_many_devices": lambda: device_mesh(8, "data"),
        "batch": lambda: ParallelTrainer(pc, device_mesh(4, "data")).step(
            ParallelTrainer(pc, device_mesh(4, "data")).init(network), inputs[0, :6], targets[0, :6]
        ),
        "depth": lambda: ParallelTrainer(pc, device_mesh(4, "layers")).init(
            mupc.ResNet(mupc.NetworkConfig(6, 16, 6, 3), key=jax.random.key(0))
        ),
        "unsharded_state": lambda: ParallelTrainer(pc, device_mesh(2, "layers")).step(
            pc.init(network), inputs[0], targets[0]
        ),
        "bp_layers": lambda: ParallelTrainer(mupc.BPTrainer(), device_mesh(2, "layers")),
        "tolerance_layers": lambda: ParallelTrainer(
            mupc.PCTrainer(inference=mupc.DiscreteInference(optax.sgd(0.1), tolerance=1e-3)),
            device_mesh(2, "layers"),
        ),
    }
    for name, case in cases.items():
        try:
            case()
            errors[name] = None
        except ValueError as error:
            errors[name] = str(error)
    results["errors"] = errors
    results["cli"] = _cli_worker()
    return results


def _cli_worker() -> dict:
    """`mupc train --devices K --parallel ...` against `mupc train` on one device."""
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    import numpy as np

    from mupc._cli import main

    tiny = ["train", "--dataset", "synthetic", "-H", "4", "-N", "16", "--optimizer", "sgd"]
    tiny += ["--eval-every", "3", "--checkpoint-every", "3", "--quiet"]
    root = Path(tempfile.mkdtemp())

    def train(name, *flags):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main([*tiny, "--out", str(root / name), *flags])
        return code, stderr.getvalue()

    def arrays(name):
        with np.load(root / name / "checkpoint.npz") as data:
            return {k: data[k] for k in data.files if data[k].dtype.kind == "f"}

    def summary(name):
        import json

        return json.loads((root / name / "summary.json").read_text())

    found = {"codes": {}}
    found["codes"]["single"] = train("single", "--steps", "6")
    found["codes"]["layers"] = train(
        "layers", "--steps", "6", "--devices", "4", "--parallel", "layers"
    )
    found["codes"]["both"] = train("both", "--steps", "6", "--devices", "4", "--parallel", "both")
    # Resume on another mesh: 3 steps data-parallel on 2 devices, then to 6 layer-parallel.
    found["codes"]["resume-1"] = train("resumed", "--steps", "3", "--devices", "2")
    found["codes"]["resume-2"] = train(
        "resumed", "--steps", "6", "--devices", "4", "--parallel", "layers", "--resume"
    )
    reference = arrays("single")
    found["scale"] = float(max(np.abs(v).max() for v in reference.values()))
    found["differences"], found["accuracy"] = {}, {}
    for name in ("layers", "both", "resumed"):
        other = arrays(name)
        assert sorted(other) == sorted(reference)
        found["differences"][name] = float(
            max(np.abs(other[k] - reference[k]).max() for k in reference)
        )
        found["accuracy"][name] = [
            summary(name)["test_accuracy"],
            summary("single")["test_accuracy"],
        ]
    found["errors"] = {
        "batch": train("e1", "--steps", "1", "--devices", "4", "--batch-size", "6"),
        "depth": train("e2", "--steps", "1", "--devices", "4", "--parallel", "layers", "-H", "6"),
        "bp": train(
            "e3", "--steps", "1", "--devices", "2", "--parallel", "layers", "--method", "bp"
        ),
    }
    return found


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={DEVICES}"
    env["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "case", ["pc-data", "pc-layers", "pc-both", "pc-variant-layers", "pc-variant-both", "bp-data"]
)
def test_equals_single_device(results, case):
    found = results["equality"][case]
    assert found["shapes"]
    assert found["moved"] > 1e-2  # training changed the weights, ...
    # ... identically on one device and on four, up to a few float32 roundings of the
    # largest weight (measured: at most 0.3 of one rounding after three steps).
    assert found["weights"] <= tolerance(dtype=np.float32, scale=found["scale"], k=4)
    assert found["metrics"] <= tolerance(dtype=np.float32, scale=found["metric_scale"], k=4)


def test_data_parallel_inference_needs_no_communication(results):
    found = results["hlo"]["data"]["collectives"]
    # No loop (inference, feedforward scan) communicates; one all-reduce (weight gradients and
    # metrics together) per step.
    assert all(ops == [] for ops in found["loops"].values())
    assert [op["op"] for op in found["outside"]] == ["all-reduce"]


@pytest.mark.parametrize("mode", ["layers", "both"])
def test_layer_parallel_inference_sends_only_boundary_activities(results, mode):
    hlo = results["hlo"][mode]
    loops, outside = hlo["collectives"]["loops"], hlo["collectives"]["outside"]
    every = [op for ops in loops.values() for op in ops] + outside
    assert not [op for op in every if op["op"] in ("all-gather", "all-to-all", "reduce-scatter")]
    # Every transfer between layer shards is one boundary activity (B / K_data, N) ...
    permutes = [op for op in every if op["op"] == "collective-permute"]
    assert permutes and all(op["shape"].startswith(hlo["boundary"]) for op in permutes)
    # ... inside the loops there is nothing else (no reductions) ...
    assert all(op["op"] == "collective-permute" for ops in loops.values() for op in ops)
    # ... and the inference loop sends one activity up and one cotangent down per step.
    directions = sorted(sorted(op["direction"] for op in ops) for ops in loops.values() if ops)
    assert ["down", "up"] in directions


@pytest.mark.parametrize(
    "case, message",
    [
        ("too_many_devices", r"Asked for 8 devices but only 4 CPU device\(s\) are present"),
        ("batch", r"batch size divisible by 4, got batch=6"),
        ("depth", r"depth H divisible by 4, got H=6"),
        ("unsharded_state", r"state with 7 hidden weight slots.*expects 8.*shard\(state\)"),
        ("bp_layers", r"Layer parallelism is for predictive coding only, got BPTrainer"),
        ("tolerance_layers", r"Layer parallelism needs `DiscreteInference` without `tolerance`"),
    ],
)
def test_errors(results, case, message):
    assert results["errors"][case] is not None, f"{case} raised nothing"
    assert re.search(message, results["errors"][case])


@pytest.mark.parametrize("case", ["single", "layers", "both", "resume-1", "resume-2"])
def test_cli_runs(results, case):
    assert results["cli"]["codes"][case] == [0, ""]


@pytest.mark.parametrize("case", ["layers", "both", "resumed"])
def test_cli_parallel_run_equals_single_device_run(results, case):
    cli = results["cli"]
    assert cli["differences"][case] <= tolerance(dtype=np.float32, scale=cli["scale"], k=4)
    ours, single = cli["accuracy"][case]
    assert ours == pytest.approx(single, abs=1e-6)


@pytest.mark.parametrize(
    "case, message",
    [
        ("batch", r"batch size divisible by 4, got batch=6"),
        ("depth", r"depth H divisible by 4, got H=6"),
        ("bp", r"Layer parallelism is for predictive coding only"),
    ],
)
def test_cli_errors(results, case, message):
    code, stderr = results["cli"]["errors"][case]
    assert code == 2 and re.search(r"mupc train: error: .*" + message, stderr)


def test_cli_too_many_devices_in_process(tmp_path, capsys):
    from mupc._cli import main

    flags = ["train", "--dataset", "synthetic", "-H", "2", "-N", "8", "--steps", "1", "--quiet"]
    assert main([*flags, "--devices", "2", "--parallel", "layers"]) == 2
    assert re.search(r"Asked for 2 devices but only 1 CPU", capsys.readouterr().err)


def test_too_many_devices_in_process():
    from mupc._parallel import device_mesh

    with pytest.raises(ValueError, match=r"only 1 CPU device\(s\) are present.*device_count=2"):
        device_mesh(2, "layers")
    with pytest.raises(ValueError, match=r"`parallel` must be one of"):
        device_mesh(1, "pipeline")


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    print(json.dumps(_worker()))
