"""Memory that grows with the test set, not only with the batch, is a defect: evaluation runs
in batches, on the host and on the device, for the MLP and the conv ResNet, in a run too."""

import sys
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mupc
from mupc import _evaluation
from mupc.experiments import RunConfig, run_experiment


def _networks():
    mlp = mupc.ResNet(mupc.NetworkConfig(16, 8, 2, 3), key=jax.random.key(0))
    conv = mupc.ConvResNet(mupc.ConvConfig((4, 4, 1), (2,), 1, 3), key=jax.random.key(0))
    return {"mlp": (mlp, (16,)), "conv": (conv, (4, 4, 1))}


def _data(n, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return x, y


@pytest.fixture
def device_batches(monkeypatch):
    """The row counts of every batch `evaluate` hands to the compiled program."""
    rows = []
    compiled = _evaluation._batch_sums

    def recording(network, inputs, *rest):
        rows.append(inputs.shape[0])
        return compiled(network, inputs, *rest)

    monkeypatch.setattr(_evaluation, "_batch_sums", recording)
    return rows


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_evaluation_hands_the_device_one_batch_at_a_time(kind, device_batches):
    network, shape = _networks()[kind]
    x, y = _data(2500, shape)
    result = mupc.evaluate(network, x, y, batch_size=1000)
    assert device_batches == [1000, 1000, 1000]  # the last one padded (and masked)
    # The masked mean over the batches is the mean over the whole set, computed at once.
    outputs = np.asarray(network(jnp.asarray(x, network.dtype)))
    expected = np.mean(np.argmax(outputs, -1) == np.argmax(y, -1))
    assert result.accuracy == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_evaluation_host_memory_does_not_grow_with_the_test_set(kind):
    """Peak host allocations while evaluating (the data already in memory) for 1,000 and
    16,000 examples: equal up to a few kB (a temporary of the whole set, e.g. a finiteness
    mask or a one-hot copy, would add ≥ 15,000 × the row size)."""
    network, shape = _networks()[kind]
    peaks = []
    for n in (1000, 16000):
        x, y = _data(n, shape)
        mupc.evaluate(network, x, y, batch_size=500)  # compiled before measuring
        tracemalloc.start()
        mupc.evaluate(network, x, y, batch_size=500)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    row_bytes = int(np.prod(shape))  # even one byte per value of the extra rows would show
    assert peaks[1] - peaks[0] < 15000 * row_bytes / 4, peaks


def test_a_run_evaluates_its_test_set_in_batches(device_batches):
    """`run_experiment` on a test set of 2,500 examples: every evaluation goes through the
    batched evaluation (batches of at most 1,000), for the conv ResNet."""
    x, y = _data(2600, (4, 4, 1))
    data = mupc.Dataset(x[:100], y[:100], x[100:], y[100:], "toy", 3, (1, 4, 4), "nhwc")
    config = RunConfig(network="conv", depth=1, width=2, stages=1, steps=2, eval_every=1)
    run_experiment(config, dataset=data, progress=False)
    assert device_batches and set(device_batches) == {1000}
    assert len(device_batches) == 2 * 3  # two evaluations of three batches


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_summary_reports_the_peak_resident_memory_in_mib(tmp_path):
    """`summary.json` holds the process's peak resident memory: after touching a 300 MiB array
    in this process, the peak is at least that (a kB/bytes mix-up would be off by 1024)."""
    import json

    ballast = np.ones(300 * 2**20 // 8)  # 300 MiB of float64, every page written
    del ballast
    config = RunConfig(dataset="synthetic", depth=1, width=4, steps=1, eval_every=1)
    run_experiment(config, out=tmp_path / "run", progress=False)
    stored = json.loads((tmp_path / "run" / "summary.json").read_text())
    with open("/proc/self/status") as status:  # the kernel's own figure, in kB
        high_water = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    assert 300 <= stored["peak_memory_mb"] <= high_water / 1024 + 1
