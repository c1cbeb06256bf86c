"""Every core by default: the placement chooser, its timing loop, its cache, `mupc train`'s
`--devices auto|K`, and the summary's `placement` field (timings injected: nothing here asserts
on measured time). A cached choice of several devices, run end to end and compared with one
device, is in `tests/test_parallel.py`'s worker."""

import argparse
import json

import jax
import pytest

from mupc._cli import build_parser, host_devices, main
from mupc._commands.train import DEVICES_ENV
from mupc._parallel import placement as pl
from mupc.experiments import RunConfig, _placement as auto

TINY = ["--dataset", "synthetic", "-H", "2", "-N", "16", "--quiet", "--optimizer", "sgd"]


# ----------------------------------------------------------------------------- the chooser


def test_the_fewest_devices_win_unless_more_are_faster_by_the_margin():
    assert pl.choose_devices({1: 1.0, 2: 0.96}) == 1  # 4 % faster: within the 5 % margin
    assert pl.choose_devices({1: 1.0, 2: 0.94}) == 2
    assert pl.choose_devices({1: 0.8, 2: 1.0}) == 1
    assert pl.choose_devices({2: 0.5, 1: 1.0, 4: 0.3}) == 4
    assert pl.choose_devices({1: 1.0, 2: 0.9}, margin=0.2) == 1
    assert pl.choose_devices({2: 0.7}) == 2


@pytest.mark.parametrize(
    "timings, named",
    [({}, "empty"), ({0: 1.0}, "0"), ({1: float("nan")}, "nan"), ({1: -1.0}, "-1.0")],
)
def test_the_chooser_refuses_bad_timings_naming_them(timings, named):
    with pytest.raises(ValueError, match=named):
        pl.choose_devices(timings)


def test_timing_warms_up_then_alternates_bursts_and_keeps_the_fastest_per_step():
    calls, now = [], [0.0]
    costs = {1: [0.5, 3.0, 9.0, 6.0], 2: [0.1, 15.0, 12.0, 18.0]}  # first: the compilation

    def step(count):
        def run(n):
            calls.append((count, n))
            now[0] += costs[count].pop(0)

        return run

    fastest = pl.time_interleaved(
        {1: step(1), 2: step(2)},
        warmup=1,
        burst=3,
        rounds=3,
        budget_seconds=0.0,
        clock=lambda: now[0],
    )
    assert calls == [(1, 1), (2, 1)] + [(1, 3), (2, 3)] * 3
    assert fastest == {1: 1.0, 2: 4.0}


def test_timing_goes_on_while_under_budget_up_to_the_most_rounds():
    counted = []
    clock = iter(range(1000))
    fastest = pl.time_interleaved(
        {1: lambda n: counted.append(n)},
        burst=2,
        rounds=2,
        budget_seconds=5.0,
        max_rounds=4,
        clock=lambda: float(next(clock)),
    )
    assert counted == [1, 1, 2, 2, 2, 2] and fastest == {1: 0.5}  # two warm-up steps


# ----------------------------------------------------------------------------- the cache


def test_cache_miss_store_and_hit(tmp_path):
    cache = pl.PlacementCache(tmp_path / "sub" / "placement.json")
    assert cache.lookup("abc") is None
    measured = pl.Placement(2, pl.ChosenBy.CALIBRATION, {1: 0.3, 2: 0.2})
    cache.store("abc", measured, {"cpu": "x"}, {"depth": 3})
    hit = cache.lookup("abc")
    assert hit == pl.Placement(2, pl.ChosenBy.CACHE, {1: 0.3, 2: 0.2})
    stored = json.loads(cache.path.read_text())
    assert stored["entries"]["abc"]["network"] == {"depth": 3}
    assert cache.lookup("other") is None


@pytest.mark.parametrize(
    "text, says",
    [
        ("{not json", "not valid JSON"),
        ('{"entries": {}}', "not a version-1 placement cache"),
        ('{"version": 1, "entries": {"abc": {"devices": 2}}}', "entry 'abc' is not a placement"),
    ],
)
def test_a_corrupt_cache_is_a_clear_error_naming_the_file_and_is_replaced_on_store(
    tmp_path, text, says
):
    path = tmp_path / "placement.json"
    path.write_text(text)
    cache = pl.PlacementCache(path)
    with pytest.raises(pl.CorruptCache, match=f"{path}.*{says}"):
        cache.lookup("abc")
    cache.store("abc", pl.Placement(1, pl.ChosenBy.CALIBRATION, {1: 0.1, 2: 0.2}), {}, {})
    assert cache.lookup("abc") == pl.Placement(1, pl.ChosenBy.CACHE, {1: 0.1, 2: 0.2})


def test_the_cache_path_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(pl.CACHE_ENV, raising=False)
    assert pl.default_cache_path() == tmp_path / "mupc" / "placement.json"
    monkeypatch.setenv(pl.CACHE_ENV, str(tmp_path / "mine.json"))
    assert pl.default_cache_path() == tmp_path / "mine.json"
    monkeypatch.setenv(pl.CACHE_ENV, "off")
    assert pl.default_cache_path() is None


def test_the_key_changes_with_the_machine_and_the_network():
    machine, network = {"cpu": "A", "cores": 2}, {"depth": 8}
    key = pl.cache_key(machine, network)
    assert key == pl.cache_key(dict(reversed(machine.items())), network)
    assert key != pl.cache_key({**machine, "cores": 4}, network)
    assert key != pl.cache_key(machine, {"depth": 16})
    config = RunConfig(depth=4)
    signature = auto.network_signature(config, (784,), 10)
    assert signature == auto.network_signature(
        RunConfig(depth=4, seed=3, lr=0.5, steps=9, devices="auto"), (784,), 10
    )
    assert signature != auto.network_signature(RunConfig(depth=5), (784,), 10)


# ----------------------------------------------------------------------------- resolving


@pytest.fixture
def two_cpu_devices(tmp_path, monkeypatch):
    """A process that looks like it has two CPU devices, the cache in `tmp_path`, and
    calibration timings injected: returns the list of the device counts measured."""
    monkeypatch.setattr(jax, "device_count", lambda: 2)
    monkeypatch.setenv(pl.CACHE_ENV, str(tmp_path / "placement.json"))
    measured: list = []

    def timings(steps):
        measured.append(sorted(steps))
        return {1: 0.30, 2: 0.20}

    monkeypatch.setattr(auto, "time_interleaved", timings)
    return measured


def _never(count):
    raise AssertionError("nothing should be stepped")


def test_auto_calibrates_once_then_reads_the_cache(two_cpu_devices, tmp_path):
    config, lines = RunConfig(devices="auto"), []
    signature = auto.network_signature(config, (64,), 10)
    first = auto.resolve_placement(
        config, lambda k: lambda n: None, signature, 100, log=lines.append
    )
    assert first == pl.Placement(2, pl.ChosenBy.CALIBRATION, {1: 0.30, 2: 0.20})
    assert two_cpu_devices == [[1, 2]] and "timing a few steps on 1 and 2 devices" in lines[0]
    second = auto.resolve_placement(config, _never, signature, 100)
    assert second.chosen_by is pl.ChosenBy.CACHE and second.devices == 2
    # A short run takes a cached shape too, but is not calibrated for a new one.
    assert auto.resolve_placement(config, _never, signature, 3).chosen_by is pl.ChosenBy.CACHE
    other = auto.network_signature(RunConfig(depth=9), (64,), 10)
    short = auto.resolve_placement(config, _never, other, 3)
    assert short.devices == 1 and short.chosen_by is pl.ChosenBy.DEFAULT
    assert "too few to calibrate" in short.reason


def test_a_corrupt_cache_is_said_and_measured_again(two_cpu_devices, tmp_path):
    (tmp_path / "placement.json").write_text("garbage")
    lines: list = []
    config = RunConfig(devices="auto")
    signature = auto.network_signature(config, (64,), 10)
    chosen = auto.resolve_placement(
        config, lambda k: lambda n: None, signature, 100, log=lines.append
    )
    assert chosen.chosen_by is pl.ChosenBy.CALIBRATION
    assert lines[0].startswith("placement cache: ") and "not valid JSON" in lines[0]
    assert json.loads((tmp_path / "placement.json").read_text())["version"] == 1


def test_a_given_number_a_batch_that_does_not_split_and_no_cache_measure_nothing(
    two_cpu_devices, tmp_path, monkeypatch
):
    signature = auto.network_signature(RunConfig(), (64,), 10)
    given = auto.resolve_placement(RunConfig(devices=2), _never, signature, 100)
    assert given == pl.Placement(2, pl.ChosenBy.FLAG)
    odd = auto.resolve_placement(RunConfig(devices="auto", batch_size=5), _never, signature, 100)
    assert odd.devices == 1 and "batch 5 does not split over 2 devices" in odd.reason
    monkeypatch.setenv(pl.CACHE_ENV, "off")
    auto.resolve_placement(RunConfig(devices="auto"), lambda k: lambda n: None, signature, 100)
    assert two_cpu_devices == [[1, 2]] and not (tmp_path / "placement.json").exists()


def test_run_config_takes_auto_and_refuses_other_words():
    assert RunConfig(devices="auto").devices == "auto"
    with pytest.raises(ValueError, match="positive integer or 'auto', got 'all'"):
        RunConfig(devices="all")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the command


def _parsed(*argv):
    return build_parser().parse_args(list(argv))


def test_host_devices_asked_for_before_jax_starts(monkeypatch):
    monkeypatch.delenv(DEVICES_ENV, raising=False)
    cores = pl.usable_cores()
    assert host_devices(_parsed("train")) == cores
    assert host_devices(_parsed("train", "--devices", "auto")) == cores
    assert host_devices(_parsed("train", "--devices", "3")) == 3
    assert host_devices(_parsed("train", "--devices", "4", "--num-processes", "2")) == 2
    assert host_devices(_parsed("train", "--distributed")) == 1
    assert host_devices(argparse.Namespace(command="info")) == 1
    monkeypatch.setenv(DEVICES_ENV, "1")
    assert host_devices(_parsed("train")) == 1
    assert host_devices(_parsed("train", "--devices", "auto")) == cores
    monkeypatch.setenv(DEVICES_ENV, "two")
    with pytest.raises(
        ValueError, match=r"\$MUPC_DEVICES: expected 'auto' or a positive integer, got 'two'"
    ):
        host_devices(_parsed("train"))


def test_train_records_the_placement_in_summary_and_config(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(DEVICES_ENV, raising=False)  # the suite's conftest sets 1
    assert main(["train", *TINY, "--steps", "2", "--out", str(tmp_path / "a")]) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    # This test process has one CPU device: nothing to choose from.
    assert summary["config"]["devices"] == "auto"
    assert summary["placement"] == {
        "devices": 1, "chosen_by": "default", "seconds_per_step": None,
        "reason": "one CPU device present",
    }  # fmt: skip
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["placement"] == summary["placement"]
    with pytest.raises(SystemExit):
        main(["train", *TINY, "--devices", "all"])
    assert "expected 'auto' or a positive integer, got 'all'" in capsys.readouterr().err


def test_sweep_workers_with_cores_to_themselves_get_one_host_device_per_core(monkeypatch):
    from mupc._commands.sweep import _placed
    from mupc.experiments._sweep import WORKER_ENV, SweepRun, worker_env

    assert worker_env([0, 1]) == {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert worker_env([3]) == WORKER_ENV and worker_env([]) == WORKER_ENV
    monkeypatch.delenv(DEVICES_ENV, raising=False)
    assert host_devices(_parsed("sweep", "depth", "--workers", "1")) == pl.usable_cores()
    assert host_devices(_parsed("sweep", "depth")) == 1
    runs = [SweepRun("a", RunConfig(), {})]
    assert _placed(runs)[0].config.devices == "auto"
    monkeypatch.setenv(DEVICES_ENV, "1")
    assert _placed(runs)[0].config.devices == 1
    assert host_devices(_parsed("sweep", "depth", "--workers", "1")) == 1


def test_several_processes_use_all_their_devices_whatever_mupc_devices_says(monkeypatch):
    from mupc._commands.train import _devices

    monkeypatch.setenv(DEVICES_ENV, "3")
    several = _parsed("train", "--coordinator", "h:1", "--num-processes", "2", "--process-id", "0")
    assert _devices(several) == jax.device_count() and host_devices(several) == 1
    assert _devices(_parsed("train")) == 3 and _devices(_parsed("train", "--devices", "2")) == 2
