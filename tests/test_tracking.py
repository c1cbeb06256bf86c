"""`mupc train --tensorboard DIR`: the event files, read back here with an independent
TFRecord reader, hold the same scalars as `metrics.jsonl`, also across a resume."""

import json
import struct
import sys

import pytest

from mupc import _data
from mupc._cli import main
from mupc.experiments._tracking import scalars

event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2")

TINY = ["train", "--dataset", "synthetic", "-H", "2", "-N", "16", "--quiet"]


def _events(logdir):
    """Every event of every file in `logdir`, files in name order (TensorBoard's order).

    TFRecord framing: uint64 length, uint32 masked CRC of the length, the bytes, uint32 CRC.
    """
    events = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            payload = data[offset + 12 : offset + 12 + length]
            offset += 12 + length + 4
            events.append(event_pb2.Event.FromString(payload))
    return events


def _scalars(logdir):
    """`{tag: {step: value}}` as TensorBoard shows it: a session START at step s drops the
    points already read at steps >= s (tensorboardX's `purge_step`)."""
    series: dict[str, dict[int, float]] = {}
    for event in _events(logdir):
        if event.HasField("session_log") and event.session_log.status == event.session_log.START:
            for points in series.values():
                for step in [s for s in points if s >= event.step]:
                    del points[step]
        for value in event.summary.value:
            if value.HasField("simple_value"):
                series.setdefault(value.tag, {})[event.step] = value.simple_value
    return series


def _expected(run):
    """The same `{tag: {step: value}}`, from metrics.jsonl."""
    series: dict[str, dict[int, float]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key, value in record.items():
            if key != "step" and isinstance(value, float | int) and not isinstance(value, bool):
                series.setdefault(key, {})[record["step"]] = float(value)
    return series


def _assert_same(actual, expected):
    assert sorted(actual) == sorted(expected)
    for tag, points in expected.items():
        assert sorted(actual[tag]) == sorted(points), tag
        for step, value in points.items():
            assert actual[tag][step] == pytest.approx(value, rel=1e-6), (tag, step)  # float32


def test_tensorboard_events_equal_the_metrics_file(tmp_path):
    run, logdir = tmp_path / "run", tmp_path / "tb"
    flags = ["--steps", "20", "--log-every", "5", "--eval-every", "10"]
    assert main([*TINY, *flags, "--out", str(run), "--tensorboard", str(logdir)]) == 0
    actual = _scalars(logdir)
    expected = _expected(run)
    assert {"loss", "energy_before", "energy_after", "test_accuracy", "test_loss"} <= set(actual)
    assert sorted(actual["test_accuracy"]) == [10, 20]
    _assert_same(actual, expected)
    texts = [v for e in _events(logdir) for v in e.summary.value if v.tag.startswith("run_config")]
    assert texts and b'"depth": 2' in texts[0].tensor.string_val[0]


def test_a_resumed_run_purges_the_events_after_its_checkpoint(tmp_path, monkeypatch):
    run, logdir = tmp_path / "run", tmp_path / "tb"
    flags = ["--steps", "16", "--log-every", "5", "--checkpoint-every", "4", "--eval-every", "8"]
    original = _data.iterate_batches

    def dying(*args, **kwargs):  # killed while fetching the 11th batch: checkpoint at step 8
        for count, item in enumerate(original(*args, **kwargs)):
            if count == 10:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(_data, "iterate_batches", dying)
    # An interrupted `mupc train` exits 130 (its last checkpoint kept, the tracker closed).
    assert main([*TINY, *flags, "--out", str(run), "--tensorboard", str(logdir)]) == 130
    monkeypatch.setattr(_data, "iterate_batches", original)
    # Lines are logged every 5 steps and at each checkpoint; step 10 came after the last one.
    assert sorted(_scalars(logdir)["loss"]) == [4, 5, 8, 10]

    # Resume logging every 3 steps: the resumed run never logs step 10, so the interrupted
    # run's point there must be purged (it is not in metrics.jsonl either).
    flags[3] = "3"
    assert main([*TINY, *flags, "--out", str(run), "--resume", "--tensorboard", str(logdir)]) == 0
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 2
    actual = _scalars(logdir)
    assert sorted(actual["loss"]) == [4, 5, 8, 9, 12, 15, 16]
    _assert_same(actual, _expected(run))


def test_scalars_of_a_record():
    record = {"step": 3, "loss": 0.5, "test_accuracy": None, "diverged": True,
              "layer_energies": [1.0, float("nan"), 2.5], "epoch": 0.1}  # fmt: skip
    assert scalars(record) == {
        "loss": 0.5, "diverged": 1.0, "layer_energies/0": 1.0, "layer_energies/2": 2.5,
        "epoch": 0.1,
    }  # fmt: skip


def test_missing_tensorboardx_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    assert main([*TINY, "--steps", "2", "--tensorboard", str(tmp_path / "tb")]) == 2
    assert "pip install 'mupc[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "tb").exists()
