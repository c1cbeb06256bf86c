"""Where a run's steps go on a CPU: one device, or one host device per core.

On a CPU, XLA can present the cores as separate host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=K``), and `ParallelTrainer` then splits each
step over them. Whether that is faster than one device (whose compiled step already uses every
core inside its matrix products) depends on the machine and the network: on a 2-core Intel Xeon
two devices were 1.3–1.6× faster at H = 128, on a 2-core AMD EPYC 0.80–1.06× as fast.
So the choice is measured (`docs/tutorials/parallel.md`, "Every core by default"):

1. `time_interleaved` times a few compiled steps of each placement in turn (bursts of
   chained steps, as the training loop runs them), after two untimed steps each (the first
   compiles), and keeps each placement's fastest burst. A process with K host devices runs
   the one-device step as fast as a plain process (measured on the same page), so both
   placements are timed in the run's own process and the winner's compilation is reused by
   the run.
2. `choose_devices` takes the fewest devices unless more are faster by more than `MARGIN`.
3. `PlacementCache` keeps the result per machine (`machine_fingerprint`) and network
   (`cache_key`) in a small JSON file, so the next run of the same shape pays nothing.

The choice and its measurements travel as a `Placement` (stored in `summary.json`).
"""

import dataclasses
import enum
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# More devices must be faster than fewer by more than this fraction to be chosen: a step
# measured a few times on a shared machine varies by a few per cent, and one device keeps the
# single-device program (and its exact layer skipping).
MARGIN = 0.05

# The environment variable that moves the cache (a file path) or turns it off ("off").
CACHE_ENV = "MUPC_PLACEMENT_CACHE"

_CACHE_VERSION = 1


class ChosenBy(enum.StrEnum):
    """How a run's number of devices was decided."""

    CALIBRATION = "calibration"  # measured now (and stored in the cache)
    CACHE = "cache"  # measured by an earlier run of the same shape on this machine
    FLAG = "flag"  # given: `--devices K`, or `RunConfig(devices=K)`
    DEFAULT = "default"  # nothing to choose from: one device (see `Placement.reason`)


@dataclasses.dataclass(frozen=True)
class Placement:
    """The devices a run trains on, and why.

    **Fields:**

    - `devices`: K, the number of devices the steps run on.
    - `chosen_by`: a `ChosenBy`.
    - `seconds_per_step`: the seconds per step measured for each candidate K (its fastest
      calibration burst; from the calibration or the cache), else None.
    - `reason`: for `ChosenBy.DEFAULT`, why nothing was measured.
    """

    devices: int
    chosen_by: ChosenBy
    seconds_per_step: Mapping[int, float] | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in `summary.json` (device counts as string keys)."""
        seconds = self.seconds_per_step
        return {
            "devices": self.devices,
            "chosen_by": self.chosen_by.value,
            "seconds_per_step": None
            if seconds is None
            else {str(k): round(v, 6) for k, v in sorted(seconds.items())},
            "reason": self.reason,
        }

    def describe(self) -> str:
        """One line, e.g. ``placement: 2 devices (calibration: 0.41 s/step on 1, 0.30 on 2)``."""
        what = f"placement: {self.devices} device{'s' if self.devices > 1 else ''}"
        if self.seconds_per_step:
            measured = ", ".join(
                f"{v:.3g} s/step on {k}" for k, v in sorted(self.seconds_per_step.items())
            )
            return f"{what} ({self.chosen_by.value}: {measured})"
        return f"{what} ({self.chosen_by.value}{': ' + self.reason if self.reason else ''})"


def choose_devices(seconds_per_step: Mapping[int, float], margin: float = MARGIN) -> int:
    """The device count to train on, given the measured seconds per step of each.

    The fewest devices win unless another count is faster by more than `margin`:
    K is chosen over the current best b when s(K) < (1 − margin) · s(b).

    **Arguments:**

    - `seconds_per_step`: {K: seconds per step on K devices}, at least one entry.
    - `margin`: the fraction by which more devices must be faster (default `MARGIN`).

    **Returns:** the chosen K.

    **Raises:** `ValueError` for no entries, a K < 1, or a time that is not a positive finite
    number.
    """
    if not seconds_per_step:
        raise ValueError("`seconds_per_step` is empty: measure at least one device count.")
    for count, seconds in seconds_per_step.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"Device counts must be integers ≥ 1, got {count!r}.")
        if not (isinstance(seconds, int | float) and 0 < seconds < float("inf")):
            raise ValueError(
                f"Seconds per step must be positive and finite, got {seconds!r} for {count} "
                "device(s)."
            )
    counts = sorted(seconds_per_step)
    best = counts[0]
    for count in counts[1:]:
        if seconds_per_step[count] < (1 - margin) * seconds_per_step[best]:
            best = count
    return best


def time_interleaved(
    steps: Mapping[int, Callable[[int], Any]],
    *,
    warmup: int = 2,
    burst: int = 3,
    rounds: int = 3,
    budget_seconds: float = 5.0,
    max_rounds: int = 10,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[int, float]:
    """Seconds per step of each placement, the placements taking turns.

    Each `steps[K](n)` runs n consecutive steps on K devices, each on the state the last one
    returned, without waiting in between (as the training loop does: the host prepares and
    sends the next step while the devices compute), and waits for the last. Every placement
    first takes `warmup` untimed single steps (the first compiles; the second was often still
    slower than later ones on the development machine), then the placements alternate in
    bursts of `burst` steps, so that a change of load on a shared machine falls on all of
    them alike: at least `rounds` rounds, more while the timed steps so far took less than
    `budget_seconds`, at most `max_rounds`. The fastest burst, not the median, stands for a
    placement: other work on a shared machine only ever adds time, and it came and went by
    factors of 2 within seconds on the 2-core development machine, more than the difference
    between the placements; the least disturbed burst is the closest to what the placement
    itself costs.

    **Arguments:**

    - `steps`: {K: a function running n chained steps on K devices and blocking until the
      last is done}.
    - `warmup`, `burst`, `rounds`, `budget_seconds`, `max_rounds`: how long to measure.
    - `clock`: the timer (seconds).

    **Returns:** {K: seconds per step of the fastest burst}.
    """
    for step in steps.values():
        for _ in range(warmup):
            step(1)  # the first compiles
    times: dict[int, list[float]] = {count: [] for count in steps}
    spent = 0.0
    for done in range(max_rounds):
        if done >= rounds and spent >= budget_seconds:
            break
        for count, step in steps.items():
            started = clock()
            step(burst)
            elapsed = clock() - started
            times[count].append(elapsed / burst)
            spent += elapsed
    return {count: min(values) for count, values in times.items()}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (`/proc/cpuinfo` on Linux, else `platform.processor()`)."""
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_fingerprint() -> dict[str, Any]:
    """What a measured placement depends on besides the network: the CPU model, the usable
    cores, and the JAX and jaxlib versions (a new XLA compiles differently)."""
    import jax
    import jaxlib

    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "jax": jax.__version__,
        "jaxlib": getattr(jaxlib, "__version__", "unknown"),
    }


def cache_key(machine: Mapping[str, Any], network: Mapping[str, Any]) -> str:
    """A short hex key for (machine, network): SHA-256 of their canonical JSON, 16 digits."""
    text = json.dumps({"machine": machine, "network": network}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_path() -> Path | None:
    """The placement cache: ``$MUPC_PLACEMENT_CACHE`` if set (``off``: no cache, None), else
    ``placement.json`` in the user cache folder (``$XDG_CACHE_HOME/mupc``, or
    ``~/.cache/mupc``)."""
    chosen = os.environ.get(CACHE_ENV, "")
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "mupc" / "placement.json"


class CorruptCache(ValueError):
    """The placement cache file exists but is not one (the message names it)."""


@dataclasses.dataclass(frozen=True)
class PlacementCache:
    """Measured placements, one JSON file: ``{"version": 1, "entries": {key: entry}}``, each
    entry ``{"machine", "network", "devices", "seconds_per_step", "measured",
    "load_average"}`` (the 1-minute load average when it was measured).

    Written atomically (`mupc._atomic`): a reader sees the old file or the new one. Two runs
    storing at once may lose one entry (measured again next time), never the file.

    **Arguments:**

    - `path`: the JSON file (need not exist).
    """

    path: Path

    def read(self) -> dict[str, dict[str, Any]]:
        """All entries ({} when the file does not exist).

        **Raises:** `CorruptCache` naming the file when it is not a placement cache.
        """
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except ValueError as error:
            raise CorruptCache(f"{self.path} is not valid JSON ({error})") from None
        if (
            not isinstance(data, dict)
            or data.get("version") != _CACHE_VERSION
            or not isinstance(data.get("entries"), dict)
        ):
            raise CorruptCache(
                f"{self.path} is not a version-{_CACHE_VERSION} placement cache (expected "
                '{"version": 1, "entries": {...}})'
            )
        return data["entries"]

    def lookup(self, key: str) -> Placement | None:
        """The stored placement for `key` (chosen by `"cache"`), or None.

        **Raises:** `CorruptCache` (see `read`), also for an entry of the wrong form.
        """
        entry = self.read().get(key)
        if entry is None:
            return None
        try:
            seconds = {int(k): float(v) for k, v in entry["seconds_per_step"].items()}
            devices = int(entry["devices"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CorruptCache(f"{self.path}: entry {key!r} is not a placement") from None
        return Placement(devices, ChosenBy.CACHE, seconds)

    def store(
        self,
        key: str,
        placement: Placement,
        machine: Mapping[str, Any],
        network: Mapping[str, Any],
    ) -> None:
        """Add (or replace) `key`'s entry; a corrupt file is replaced by a fresh one.

        **Raises:** `OSError` naming the file when it cannot be written.
        """
        from .._atomic import write_json_atomic

        try:
            entries = dict(self.read())
        except CorruptCache:
            entries = {}
        entries[key] = {
            "machine": dict(machine),
            "network": dict(network),
            "devices": placement.devices,
            "seconds_per_step": placement.to_dict()["seconds_per_step"],
            "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            # A choice measured on a busy machine may differ from an idle one's: say how busy.
            "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"version": _CACHE_VERSION, "entries": entries})
