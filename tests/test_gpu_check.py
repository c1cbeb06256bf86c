"""The GPU check (`benchmarks/gpu.py`) at toy sizes on the CPU: it runs end to end, writes one
JSON file with every measurement, and its epoch is the run it says it is."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

import mupc

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _run(tmp_path, *flags):
    out = tmp_path / "gpu.json"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "tiny", "--out", str(out), *flags],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(out.read_text())


def test_gpu_check_at_tiny_sizes(tmp_path):
    record = _run(tmp_path, "--rounds", "1", "--run-dir", str(tmp_path / "run"))
    assert record["device"]["platform"] == jax.devices()[0].platform == "cpu"
    assert record["versions"]["mupc"] == mupc.__version__
    assert record["versions"]["jax"] == jax.__version__
    for phase in ("mlp", "conv"):
        steps = record[phase]["steps"]
        assert sorted(r["method"] for r in steps) == ["bp", "epc", "mupc"]
        by_method = {r["method"]: r for r in steps}
        assert by_method["bp"]["relative_to_bp"] == 1.0
        for r in steps:
            assert r["step_s"] > 0 and r["compile_s"] > 0
            ratio = r["step_s"] / by_method["bp"]["step_s"]
            assert abs(r["relative_to_bp"] - ratio) <= 2e-3 * ratio + 1e-3  # both rounded
    assert record["conv"]["layers"] == 2  # one stage: its convolution and one block
    epoch = record["epoch"]
    # mnist-sample: 4,000 training digits, batch 64, the last incomplete batch dropped.
    assert epoch["steps"] == 4000 // 64 and epoch["fraction_of_epoch"] == 1.0
    # The accuracy it reports is that of the network it trained, evaluated independently.
    network = mupc.load_network(tmp_path / "run" / "checkpoint.npz")
    data = mupc.load_dataset("mnist-sample", layout="flat")
    expected = mupc.evaluate(network, data.test_images, data.test_labels).accuracy
    np.testing.assert_allclose(epoch["test_accuracy"], expected, rtol=0, atol=1e-6)
    assert record["peak_rss_mb"] > 0 and record["wall_s"] > 0


def test_gpu_check_keeps_to_its_time_budget(tmp_path):
    record = _run(tmp_path, "--budget-s", "0")
    for phase in ("mlp", "conv", "epoch"):
        assert record[phase] == {"skipped": "time budget spent"}
