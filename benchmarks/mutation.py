"""A small mutation-testing harness: does the test suite notice plausible bugs?

Run by hand (not in CI); it takes tens of minutes on two cores:

    .venv/bin/python benchmarks/mutation.py                   # every mutant, one at a time
    .venv/bin/python benchmarks/mutation.py --only 3 12b 31   # some of them
    .venv/bin/python benchmarks/mutation.py --list            # the list, and which are stale
    .venv/bin/python benchmarks/mutation.py --jobs 2 --markdown results.md

The mutants are data, in `benchmarks/mutants.toml`: each is a file, an exact snippet of it, a
replacement, and the test files (or pytest node ids) that should notice. For each mutant the
harness copies the repository (tracked and untracked, not ignored, files) to a temporary
folder, so the working tree is never modified, replaces the snippet there, and runs the tests
with that copy first on `PYTHONPATH` (subprocesses the tests start import it too). Outcomes:

- `caught`: the tests failed;
- `broken`: pytest could not collect or run the tests (the mutant does not import); counted as
  caught, but a mutant should be a plausible bug, so fix it;
- `timeout`: the tests ran past `--timeout` (counted as caught: CI would fail);
- `survived`: every test passed;
- `stale`: the snippet is no longer in the file (the code changed): refresh the mutant;
- `ambiguous`: the snippet occurs more than once: make it longer.

First the unmutated copy is run against every test file named (the baseline must pass), so
"caught" means the mutant, not a broken suite. The score is caught / (caught + survived).
"""

import argparse
import concurrent.futures
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = Path(__file__).resolve().parent / "mutants.toml"
CAUGHT = ("caught", "broken", "timeout")
# pytest processes running now: ended (with their process groups) if the harness is stopped.
_RUNNING: set[subprocess.Popen] = set()
_LOCK = threading.Lock()
_STOPPING = threading.Event()


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One plausible bug: replace `original` (exactly once in `file`) by `replacement`."""

    id: str
    what: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]


@dataclasses.dataclass
class Outcome:
    mutant: Mutant
    status: str
    seconds: float = 0.0
    detail: str = ""


def load_mutants(path: Path = MUTANTS) -> list[Mutant]:
    """The mutants of `path`; raises `ValueError` for a malformed entry or a repeated id."""
    with open(path, "rb") as handle:
        entries = tomllib.load(handle)["mutant"]
    mutants, seen = [], set()
    for entry in entries:
        missing = {"id", "what", "file", "original", "replacement", "tests"} - set(entry)
        if missing:
            raise ValueError(f"mutant {entry.get('id', '?')!r} lacks {sorted(missing)}")
        if entry["id"] in seen:
            raise ValueError(f"mutant id {entry['id']!r} appears twice")
        if entry["original"] == entry["replacement"]:
            raise ValueError(f"mutant {entry['id']!r} changes nothing")
        seen.add(entry["id"])
        mutants.append(
            Mutant(
                str(entry["id"]),
                entry["what"],
                entry["file"],
                entry["original"],
                entry["replacement"],
                tuple(entry["tests"]),
            )
        )
    return mutants


def occurrences(mutant: Mutant, root: Path = ROOT) -> int:
    """How often the mutant's snippet occurs in its file today (0 if the file is gone)."""
    path = root / mutant.file
    return path.read_text().count(mutant.original) if path.exists() else 0


def _repository_files(root: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (root / name).is_file()]


def copy_repository(destination: Path, root: Path = ROOT) -> None:
    """Copy the repository's files (not `.venv` or other ignored paths) to `destination`."""
    for name in _repository_files(root):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """Run pytest on `tests` in `copy`: `(status, seconds, last lines of output)`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), env.get("PYTHONPATH", "")])
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    started = time.perf_counter()
    # A new session, so that on a timeout the whole process group (spawned workers) is ended.
    with _LOCK:
        if _STOPPING.is_set():
            return "stopped", 0.0, ""
        process = subprocess.Popen(
            command,
            cwd=copy,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        _RUNNING.add(process)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end(process)
        process.communicate()
        return "timeout", time.perf_counter() - started, ""
    finally:
        with _LOCK:
            _RUNNING.discard(process)
    seconds = time.perf_counter() - started
    lines = output.strip().splitlines()
    failed = [line.split(" - ")[0].removeprefix("FAILED ") for line in lines if "FAILED" in line]
    if process.returncode == 0:
        return "survived", seconds, "\n".join(lines[-3:])
    if process.returncode == 1 and failed:
        return "caught", seconds, failed[0]
    return "broken", seconds, "\n".join(lines[-3:])


def _end(process: subprocess.Popen) -> None:
    """Kill a pytest process started by `run_tests` and everything in its process group."""
    try:
        os.killpg(process.pid, 9)
    except ProcessLookupError:
        pass


def _verify_imports(copy: Path) -> None:
    """The copy, not the editable install of the working tree, must be what gets imported."""
    env = dict(os.environ, PYTHONPATH=str(copy))
    found = subprocess.run(
        [sys.executable, "-c", "import mupc; print(mupc.__file__)"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(copy.resolve()):
        raise RuntimeError(f"the copy's tests import mupc from {found}, not from {copy}")


def try_mutant(mutant: Mutant, timeout: float, keep: bool = False) -> Outcome:
    """Apply `mutant` to a fresh copy of the repository and run its tests."""
    count = occurrences(mutant)
    if count == 0:
        return Outcome(mutant, "stale", detail=f"snippet not found in {mutant.file}")
    if count > 1:
        return Outcome(mutant, "ambiguous", detail=f"snippet found {count} times")
    folder = Path(tempfile.mkdtemp(prefix=f"mupc-mutant-{mutant.id}-"))
    try:
        copy_repository(folder)
        path = folder / mutant.file
        path.write_text(path.read_text().replace(mutant.original, mutant.replacement))
        status, seconds, tail = run_tests(folder, mutant.tests, timeout)
        return Outcome(mutant, status, seconds, tail)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def baseline(mutants: list[Mutant], timeout: float) -> None:
    """Run every test file the mutants name on the unmutated copy; exit if any fails."""
    files = sorted({test.split("::")[0] for mutant in mutants for test in mutant.tests})
    folder = Path(tempfile.mkdtemp(prefix="mupc-mutant-baseline-"))
    try:
        copy_repository(folder)
        _verify_imports(folder)
        status, seconds, tail = run_tests(folder, tuple(files), timeout * 4)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    passed = status == "survived"  # every test passed
    print(
        f"baseline, {len(files)} test files: {'passed' if passed else status} in {seconds:.0f} s",
        flush=True,
    )
    if not passed:
        sys.exit(f"The unmutated suite does not pass ({status}):\n{tail}")


def markdown(outcomes: list[Outcome]) -> str:
    """The results as a Markdown table, in the order of the mutant list."""
    lines = ["| id | mutant | file | result | first failing test |", "|---|---|---|---|---|"]
    for outcome in outcomes:
        m = outcome.mutant
        status = outcome.status if outcome.status in CAUGHT else f"**{outcome.status}**"
        first = outcome.detail.removeprefix("tests/") if outcome.status == "caught" else ""
        first = f"`{first}`" if first else ""
        lines.append(f"| {m.id} | {m.what} | `{m.file}` | {status} | {first} |")
    return "\n".join(lines)


def score(outcomes: list[Outcome]) -> str:
    caught = sum(o.status in CAUGHT for o in outcomes)
    survived = sum(o.status == "survived" for o in outcomes)
    others = len(outcomes) - caught - survived
    total = caught + survived
    percent = f" ({100 * caught / total:.0f}%)" if total else ""
    return f"caught {caught} of {total}{percent}; {others} stale or ambiguous"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants", type=Path, default=MUTANTS, help="the TOML list")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutant ids")
    parser.add_argument("--jobs", type=int, default=1, help="mutants tried at once (1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant (900)")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copies")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` ends the tests too

    mutants = load_mutants(args.mutants)
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            parser.error(f"unknown mutant ids {unknown}")
        mutants = [m for m in mutants if m.id in set(args.only)]
    if args.list:
        for m in mutants:
            count = occurrences(m)
            state = {0: "STALE", 1: "ok"}.get(count, f"AMBIGUOUS ({count}x)")
            print(f"{m.id:>6}  {state:<9} {m.file}: {m.what}")
        return 0
    outcomes: list[Outcome] = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
    try:
        if not args.no_baseline:
            baseline(mutants, args.timeout)
        futures = {pool.submit(try_mutant, m, args.timeout, args.keep): m for m in mutants}
        for future in concurrent.futures.as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            m = outcome.mutant
            print(f"{m.id:>6} {outcome.status:<9} {outcome.seconds:6.0f} s  {m.what}", flush=True)
            print(f"         {outcome.detail}", flush=True)
    except BaseException:  # Ctrl-C or a kill: end the running tests, start no more
        pool.shutdown(wait=False, cancel_futures=True)
        with _LOCK:
            _STOPPING.set()
            for process in list(_RUNNING):
                _end(process)
        raise
    pool.shutdown()
    order = {m.id: i for i, m in enumerate(mutants)}
    outcomes.sort(key=lambda o: order[o.mutant.id])
    print(score(outcomes))
    if args.markdown is not None:
        args.markdown.write_text(markdown(outcomes) + "\n\n" + score(outcomes) + "\n")
    return 0 if all(o.status in CAUGHT for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
