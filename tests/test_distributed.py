"""Data parallelism over two processes (`jax.distributed`, gloo collectives on CPU) against a
single-process run (the oracle).

Two local processes run `mupc train --coordinator localhost:PORT --num-processes 2
--process-id I` for 3 steps, then again with `--resume` to 6 steps (fresh processes, so the
resume reads the checkpoint that process 0 wrote). This file re-runs itself as those processes
(`python tests/test_distributed.py worker I PORT OUT STEPS`); each prints one JSON line.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TINY = ["--dataset", "synthetic", "-H", "4", "-N", "16", "--optimizer", "sgd", "--batch-size", "8"]
TINY += ["--eval-every", "3", "--checkpoint-every", "3", "--log-every", "1", "--quiet"]
STEPS = 6
EPS32 = 2.0**-24  # float32 unit roundoff


def _worker(process: int, port: int, out: str, steps: int) -> dict:
    import jax
    import numpy as np

    import mupc
    from mupc._cli import main

    flags = ["--coordinator", f"localhost:{port}", "--num-processes", "2"]
    flags += ["--process-id", str(process), "--steps", str(steps), "--out", out]
    code = main(["train", *TINY, *flags, *(["--resume"] if steps > 3 else [])])
    # The library's view of the same runtime: which rows of a batch of 8 this process feeds.
    parallel = mupc.ParallelTrainer(mupc.PCTrainer(), mupc.device_mesh())
    rows = parallel.process_rows(8)
    local = np.full((rows.stop - rows.start, 3), process, np.float32)
    inputs, _ = parallel.shard_batch(local, local)
    return {
        "code": code,
        "process": jax.process_index(),
        "devices": jax.device_count(),
        "rows": [rows.start, rows.stop],
        "global_shape": list(inputs.shape),
        "global_sum": float(jax.jit(lambda x: x.sum())(inputs)),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _launch(out: Path, steps: int) -> list[dict]:
    """Run both processes to the end; return what each printed."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    port = _free_port()
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", str(i), str(port), str(out), str(steps)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr[-4000:]
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for process in processes:  # a failed peer leaves the other waiting: end both
            if process.poll() is None:
                process.kill()
                process.wait()
    return outputs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from mupc._cli import main

    root = tmp_path_factory.mktemp("distributed")
    assert main(["train", *TINY, "--steps", str(STEPS), "--out", str(root / "single")]) == 0
    first = _launch(root / "two", 3)
    (root / "step3").mkdir()
    shutil.copy(root / "two" / "checkpoint.npz", root / "step3" / "checkpoint.npz")
    second = _launch(root / "two", STEPS)
    return root, first, second


def _arrays(path: Path) -> dict:
    with np.load(path / "checkpoint.npz") as data:
        return {k: data[k] for k in data.files if data[k].dtype.kind == "f"}


def test_each_process_feeds_its_half_of_the_batch(runs):
    _, first, second = runs
    for outputs in (first, second):
        assert [o["code"] for o in outputs] == [0, 0]
        assert [o["process"] for o in outputs] == [0, 1]
        assert [o["devices"] for o in outputs] == [2, 2]
        assert [o["rows"] for o in outputs] == [[0, 4], [4, 8]]
        # Process p's 4 rows of p's (0, then 1) form one global (8, 3) batch: sum 4·3·1.
        assert all(o["global_shape"] == [8, 3] and o["global_sum"] == 12.0 for o in outputs)


def test_two_processes_equal_one_with_resume(runs):
    """6 steps on two processes (3, then 3 more after a resume) against 6 on one. Bound:
    float32 rounding, a few unit roundoffs per step on weights of magnitude `scale`
    (measured: ≤ 1.2e-7 absolute, see docs/tutorials/parallel.md)."""
    root, _, _ = runs
    single, two = _arrays(root / "single"), _arrays(root / "two")
    assert sorted(single) == sorted(two)
    scale = max(float(np.abs(a).max()) for a in single.values())
    difference = max(float(np.abs(single[k] - two[k]).max()) for k in single)
    assert difference <= 8 * STEPS * EPS32 * scale
    step3 = _arrays(root / "step3")  # the resumed steps moved the weights: not vacuous
    assert max(float(np.abs(step3[k] - two[k]).max()) for k in two) > 1e-3
    summaries = [
        json.loads((root / name / "summary.json").read_text()) for name in ("single", "two")
    ]
    assert summaries[1]["steps"] == STEPS
    assert summaries[1]["test_accuracy"] == pytest.approx(summaries[0]["test_accuracy"], abs=1e-6)


def test_only_process_zero_writes(runs):
    root, _, _ = runs
    lines = (root / "two" / "metrics.jsonl").read_text().splitlines()
    # One line per step (log every step): a second writer would duplicate them; the resume
    # kept steps 1-3 and appended 4-6.
    assert [json.loads(line)["step"] for line in lines] == list(range(1, STEPS + 1))
    assert json.loads((root / "two" / "config.json").read_text())["run"]["devices"] == 2


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--coordinator", "localhost:1234"], r"Give all of --coordinator HOST:PORT"),
        (["--num-processes", "2", "--process-id", "0"], r"Give all of .*coordinator=None"),
        (
            ["--coordinator", "node001", "--num-processes", "2", "--process-id", "0"],
            r"`coordinator` must be HOST:PORT .* got 'node001'",
        ),
        (
            ["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"],
            r"`process_id` must be in 0..1 \(num_processes=2\), got 2",
        ),
        # This test process has started JAX already: too late to join other processes.
        (["--distributed"], r"Cannot start jax.distributed in this process: .*before any JAX"),
    ],
)
def test_bad_distributed_flags(tmp_path, capsys, flags, message):
    import jax

    from mupc._cli import main

    jax.devices()  # make sure the backends are started (the last case)
    assert main(["train", *TINY, "--steps", "1", "--out", str(tmp_path), *flags]) == 2
    assert re.search(r"mupc train: error: " + message, capsys.readouterr().err)
    assert not jax.distributed.is_initialized()


def test_distributed_outside_a_cluster_says_what_to_give(tmp_path):
    """`--distributed` in a fresh process with no SLURM, MPI or JAX coordinator variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "OMPI_", "PMI_", "KUBERNETES_", "JAX_COORDINATOR"))
    }
    env["JAX_PLATFORMS"] = "cpu"
    flags = ["train", *TINY, "--steps", "1", "--out", str(tmp_path), "--distributed"]
    done = subprocess.run(
        [sys.executable, "-m", "mupc._cli", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert re.search(r"Found no cluster to join .* give --coordinator HOST:PORT", done.stderr)


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    process, port, out, steps = sys.argv[2:6]
    print(json.dumps(_worker(int(process), int(port), out, int(steps))))
