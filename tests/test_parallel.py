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

import pytest

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


STEPS = 20  # training steps compared with one device
EPS32 = 2.0**-24  # float32 unit roundoff


def _worker() -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import mupc
    from mupc._network.conv import ConvConfig, ConvResNet
    from mupc._parallel import LayerSharded, ParallelTrainer, _parallel_step, device_mesh

    assert len(jax.devices()) == DEVICES
    # The suite's strict settings (conftest.py is not loaded in this subprocess).
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    rng = np.random.default_rng(0)
    mlp = mupc.ResNet(mupc.NetworkConfig(6, 16, 8, 3, "tanh", "mupc"), key=jax.random.key(0))
    uneven = mupc.ResNet(mupc.NetworkConfig(6, 16, 6, 3, "tanh", "mupc"), key=jax.random.key(0))
    conv_config = ConvConfig((8, 8, 1), (4, 8), blocks=3, output_dim=3, activation="tanh")
    conv = ConvResNet(conv_config, key=jax.random.key(0))
    lm_config = mupc.TransformerConfig((5,), 7, vocab_size=7, heads=2, head_dim=4, blocks=2)
    lm = mupc.Transformer(lm_config, key=jax.random.key(0))
    batches = {
        "mlp": rng.normal(size=(STEPS, 8, 6)).astype(np.float32),
        "conv": rng.normal(size=(STEPS, 8, 8, 8, 1)).astype(np.float32),
        "lm": rng.integers(0, 7, (STEPS, 8, 5)).astype(np.float32),
    }
    targets = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (STEPS, 8))]
    lm_targets = np.eye(7, dtype=np.float32)[rng.integers(0, 7, (STEPS, 8, 5))]

    def arrays(tree):
        return [np.asarray(a, np.float64) for a in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]

    def train(trainer, network, inputs, mesh=None):
        runner = trainer if mesh is None else ParallelTrainer(trainer, mesh)
        state = runner.init(network, jax.random.key(1))
        metrics = []
        labels = lm_targets if network is lm else targets
        for x, y in zip(inputs, labels, strict=True):
            state, m = runner.step(state, x, y)
            metrics.append([np.asarray(v, np.float64) for v in m if v is not None])
        if mesh is not None:
            state = runner.unshard(state)
        return arrays(state.network), metrics

    references = {}

    def compare(trainer, network, data, mode):
        key = (id(trainer), id(network))
        if key not in references:
            references[key] = train(trainer, network, batches[data])
        ref, ref_metrics = references[key]
        got, metrics = train(trainer, network, batches[data], device_mesh(DEVICES, mode))
        start = arrays(network)
        return {
            "shapes": [a.shape for a in got] == [a.shape for a in ref],
            "weights": max(float(np.abs(a - b).max()) for a, b in zip(got, ref, strict=True)),
            "scale": max(float(np.abs(a).max()) for a in ref),
            "moved": max(float(np.abs(a - b).max()) for a, b in zip(ref, start, strict=True)),
            "metrics": max(
                float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
                for ma, mb in zip(metrics, ref_metrics, strict=True)
                for a, b in zip(ma, mb, strict=True)
            ),
        }

    # SGD on the weights: Adam would turn rounding in near-zero gradients into steps of ±lr.
    gd = mupc.DiscreteInference.gradient_descent(0.1)
    pc = mupc.PCTrainer(optimiser=optax.sgd(0.5), inference=gd)
    variant = mupc.PCTrainer(
        optimiser=optax.sgd(0.5),
        inference=mupc.DiscreteInference(optax.adam(0.02), steps=5),
        activity_init=mupc.NormalInit(0.5),
        record_layer_energies=True,
    )
    epc = mupc.PCTrainer(
        optimiser=optax.sgd(0.5), inference=mupc.ErrorInference.gradient_descent(0.1)
    )
    early = mupc.PCTrainer(
        optimiser=optax.sgd(0.5), inference=mupc.DiscreteInference(optax.sgd(0.1), 20, 1e-3)
    )
    cases = {
        "pc-data": (pc, mlp, "mlp", "data"),
        "pc-layers": (pc, mlp, "mlp", "layers"),
        "pc-both": (pc, mlp, "mlp", "both"),
        "pc-layers-uneven": (pc, uneven, "mlp", "layers"),  # H = 6 over 4 devices
        "variant-layers": (variant, mlp, "mlp", "layers"),
        "variant-both": (variant, mlp, "mlp", "both"),
        "epc-layers": (epc, mlp, "mlp", "layers"),
        "tolerance-layers": (early, mlp, "mlp", "layers"),
        "conv-data": (pc, conv, "conv", "data"),
        "conv-layers": (pc, conv, "conv", "layers"),
        "bp-data": (mupc.BPTrainer(optax.sgd(0.5)), mlp, "mlp", "data"),
        "transformer-data": (pc, lm, "lm", "data"),
        "transformer-layers": (epc, lm, "lm", "layers"),
    }
    results: dict = {"equality": {}}
    for name, (trainer, network, data, mode) in cases.items():
        results["equality"][name] = compare(trainer, network, data, mode)

    # Exact errors survive sharding: after T = 2 inference steps from the feedforward pass
    # only the top 2 layers can have moved, so every lower layer's error and weight gradient
    # is exactly zero, on one device and split over four.
    short = mupc.PCTrainer(inference=mupc.DiscreteInference.gradient_descent(0.1, steps=2))
    results["exact"] = {}
    for name, network, data in (("mlp", mlp, "mlp"), ("conv", conv, "conv")):
        x, y = jnp.asarray(batches[data][0]), jnp.asarray(targets[0])
        for mode in ("single", "layers", "both")[: 3 if name == "mlp" else 2]:
            net = network if mode == "single" else LayerSharded(network, device_mesh(4, mode))
            grads, _ = jax.jit(lambda n, x, y: short.gradients(n, x, y, jax.random.key(0)))(
                net, x, y
            )
            grads = grads if mode == "single" else grads.network
            norms = [float(jnp.abs(g).max()) for g in network.layer_weights(grads)]
            results["exact"][f"{name}-{mode}"] = norms

    # The compiled programs: which collectives, of which shapes, inside which loops.
    results["hlo"] = {}
    for mode in ("data", "layers", "both"):
        parallel = ParallelTrainer(pc, device_mesh(DEVICES, mode))
        state = parallel.init(mlp)
        x, y = parallel.shard_batch(jnp.asarray(batches["mlp"][0]), jnp.asarray(targets[0]))
        text = _parallel_step.lower(parallel, state, x, y).lowered.compile().as_text()
        results["hlo"][mode] = {
            "collectives": _collectives_by_computation(text),
            "boundary": f"f32[1,{8 // parallel.data_devices},16]",  # one activity (B/K_d, N)
            "outputs": f"f32[{8 // parallel.data_devices},3]",  # the readout (B/K_d, C)
        }

    # Error cases.
    errors = {}
    data4 = ParallelTrainer(pc, device_mesh(4, "data"))
    x0, y0 = batches["mlp"][0], targets[0]
    cases = {
        "too_many_devices": lambda: device_mesh(8, "data"),
        "batch": lambda: data4.step(data4.init(mlp), x0[:6], y0[:6]),
        "unsharded_state": lambda: ParallelTrainer(pc, device_mesh(2, "layers")).step(
            pc.init(mlp), x0, y0
        ),
        "bp_layers": lambda: ParallelTrainer(mupc.BPTrainer(), device_mesh(2, "layers")),
        "conv_both": lambda: ParallelTrainer(pc, device_mesh(4, "both")).init(conv),
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
    found["codes"]["single"] = train("single", "--steps", "6", "--devices", "1")
    found["codes"]["layers"] = train(
        "layers", "--steps", "6", "--devices", "4", "--parallel", "layers"
    )
    found["codes"]["both"] = train("both", "--steps", "6", "--devices", "4", "--parallel", "both")
    # Resume on another mesh: 3 steps data-parallel on 2 devices, then to 6 layer-parallel.
    found["codes"]["resume-1"] = train("resumed", "--steps", "3", "--devices", "2")
    found["codes"]["resume-2"] = train(
        "resumed", "--steps", "6", "--devices", "4", "--parallel", "layers", "--resume"
    )
    # --devices auto: a cache entry for this machine and shape saying 4 devices is taken.
    found["codes"]["auto"] = _cached_auto_run(train, tiny, root / "placement.json")
    found["auto_placement"] = summary("auto")["placement"]
    reference = arrays("single")
    found["scale"] = float(max(np.abs(v).max() for v in reference.values()))
    found["differences"], found["accuracy"] = {}, {}
    for name in ("layers", "both", "resumed", "auto"):
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
        "bp": train(
            "e3", "--steps", "1", "--devices", "2", "--parallel", "layers", "--method", "bp"
        ),
    }
    return found


def _cached_auto_run(train, tiny: list[str], path) -> tuple[int, str]:
    """`mupc train --devices auto` with a placement cache at `path` that says 4 devices."""
    from mupc._cli import build_parser
    from mupc._commands.train import config_from_args
    from mupc._parallel import placement as pl
    from mupc.experiments._placement import network_signature

    flags = [*tiny, "--steps", "6", "--devices", "auto"]
    config = config_from_args(build_parser().parse_args([*flags, "--out", "x"]))
    machine = pl.machine_fingerprint()
    key = pl.cache_key(machine, network_signature(config, (64,), 10))
    cached = pl.Placement(4, pl.ChosenBy.CALIBRATION, {1: 0.2, 4: 0.1})
    pl.PlacementCache(path).store(key, cached, machine, {})
    os.environ[pl.CACHE_ENV] = str(path)
    return train("auto", *flags[len(tiny) :])


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
    "case",
    [
        "pc-data",
        "pc-layers",
        "pc-both",
        "pc-layers-uneven",
        "variant-layers",
        "variant-both",
        "epc-layers",
        "tolerance-layers",
        "conv-data",
        "conv-layers",
        "bp-data",
        "transformer-data",
        "transformer-layers",
    ],
)
def test_equals_single_device(results, case):
    """20 steps on four devices against one. The bound is float32 rounding: a few unit
    roundoffs per step, accumulated over the steps, on weights of magnitude `scale`
    (measured: bit-identical for `layers`, ≤ 2.4e-7 for `data` and `both`; see
    docs/tutorials/parallel.md)."""
    found = results["equality"][case]
    assert found["shapes"]
    assert found["moved"] > 1e-2  # training changed the weights, ...
    bound = 8 * STEPS * EPS32  # ... identically on one device and on four, up to rounding
    assert found["weights"] <= bound * found["scale"]
    assert found["metrics"] <= bound


@pytest.mark.parametrize(
    "network, mode",
    [("mlp", "single"), ("mlp", "layers"), ("mlp", "both"), ("conv", "single"), ("conv", "layers")],
)
def test_sharded_errors_stay_exact(results, network, mode):
    norms = results["exact"][f"{network}-{mode}"]  # max |gradient| of W_1..W_H, W_L
    # T = 2 steps from the feedforward pass move only z_H and z_{H-1}: W_1..W_{H-2} get
    # exactly zero gradient (their errors are exactly zero), the top two and the readout not.
    assert norms[:-3] == [0.0] * (len(norms) - 3)
    assert all(n > 0 for n in norms[-3:])


def test_data_parallel_inference_needs_no_communication(results):
    found = results["hlo"]["data"]["collectives"]
    # No loop (inference, feedforward scan) sends activities: the inference loops agree on one
    # boolean per step (whether the lowest moved layer moved down, which decides when to leave
    # the block of top layers being updated), nothing else. One all-reduce (weight gradients
    # and metrics together) per training step.
    for ops in found["loops"].values():
        assert [(op["op"], op["shape"]) for op in ops] in ([], [("all-reduce", "pred[]")])
    assert [op["op"] for op in found["outside"]] == ["all-reduce"]


@pytest.mark.parametrize("mode", ["layers", "both"])
def test_layer_parallel_inference_sends_only_boundary_blocks(results, mode):
    hlo = results["hlo"][mode]
    loops = [ops for ops in hlo["collectives"]["loops"].values() if ops]
    # Only the inference loop communicates (not the feedforward scan) ...
    assert len(loops) == 1
    (body,) = loops
    # ... and in it nothing but: the top activity of each shard sent up (the next shard's
    # z_{l-1}), its cotangent sent back down, and one sum of the readout (B / K_data, C) that
    # only the top shard computes. No all-gather, all-to-all or reduce-scatter.
    found = sorted((op["op"], op["direction"], op["shape"].split("{")[0]) for op in body)
    assert found == [
        ("all-reduce", None, hlo["outputs"]),
        ("collective-permute", "down", hlo["boundary"]),
        ("collective-permute", "up", hlo["boundary"]),
    ]
    # Outside the loops the only all-gather is the one of the hidden weights' gradient
    # (weights are replicated; each device computed its own layers' rows; 7 rows padded to 8).
    gathers = [op["shape"] for op in hlo["collectives"]["outside"] if op["op"] == "all-gather"]
    assert [shape.split("{")[0] for shape in gathers] == ["f32[8,16,16]"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("too_many_devices", r"Asked for 8 devices but only 4 CPU device\(s\) are present"),
        ("batch", r"batch size divisible by 4, got batch=6"),
        ("unsharded_state", r"not placed on this 1 × 2 mesh.*shard\(state\)"),
        ("bp_layers", r"Layer parallelism is for predictive coding only, got BPTrainer"),
        ("conv_both", r"parallel='both' .* is not supported for the conv ResNet"),
    ],
)
def test_errors(results, case, message):
    assert results["errors"][case] is not None, f"{case} raised nothing"
    assert re.search(message, results["errors"][case])


@pytest.mark.parametrize("case", ["single", "layers", "both", "resume-1", "resume-2", "auto"])
def test_cli_runs(results, case):
    assert results["cli"]["codes"][case] == [0, ""]


def test_cli_auto_takes_the_cached_placement(results):
    placed = results["cli"]["auto_placement"]
    assert placed["devices"] == 4 and placed["chosen_by"] == "cache"
    assert placed["seconds_per_step"] == {"1": 0.2, "4": 0.1}


@pytest.mark.parametrize("case", ["layers", "both", "resumed", "auto"])
def test_cli_parallel_run_equals_single_device_run(results, case):
    cli = results["cli"]
    assert cli["differences"][case] < 1e-5 * max(1.0, cli["scale"])
    ours, single = cli["accuracy"][case]
    assert ours == pytest.approx(single, abs=1e-6)


@pytest.mark.parametrize(
    "case, message",
    [
        ("batch", r"batch size divisible by 4, got batch=6"),
        ("bp", r"--parallel layers splits PC's inference over the layers; backprop"),
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
