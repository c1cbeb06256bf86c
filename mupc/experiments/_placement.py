"""A run's placement with ``devices="auto"``: one device, or one host device per core, whichever
steps faster on this machine for this network (`resolve_placement`; the measuring and the
cache are `mupc._parallel.placement`)."""

import dataclasses
from collections.abc import Callable
from typing import Any

from .._parallel.placement import (
    ChosenBy,
    CorruptCache,
    Placement,
    PlacementCache,
    cache_key,
    choose_devices,
    default_cache_path,
    machine_fingerprint,
    time_interleaved,
)
from ._config import RunConfig

# A run of fewer steps is not calibrated (one device, unless the cache knows its shape): the
# calibration costs a second compilation and a dozen steps, which a short run cannot win back.
MIN_STEPS_TO_CALIBRATE = 50

# Fields of a `RunConfig` that do not change what one training step computes, or its cost.
_NOT_THE_STEP = (
    "dataset", "data_dir", "train_examples", "seed", "lr", "activity_lr", "epochs", "steps",
    "eval_every", "log_every", "checkpoint_every", "devices", "divergence_threshold",
)  # fmt: skip


def network_signature(
    config: RunConfig, input_shape: tuple[int, ...], num_classes: int
) -> dict[str, Any]:
    """What a step's cost depends on: `config` without the fields that do not change the step
    (seed, learning rates, length, intervals, data folder), with the data's example shape and
    classes instead of the dataset's name."""
    fields = {k: v for k, v in config.to_dict().items() if k not in _NOT_THE_STEP}
    return {**fields, "input_shape": list(input_shape), "classes": num_classes}


def _no_choice(config: RunConfig) -> Placement | None:
    """The placement when there is nothing to measure, else None."""
    import jax

    if config.devices != "auto":
        return Placement(config.devices, ChosenBy.FLAG)
    if jax.process_count() > 1:
        return Placement(jax.device_count(), ChosenBy.DEFAULT, reason="every process's devices")
    if jax.default_backend() != "cpu":
        return Placement(1, ChosenBy.DEFAULT, reason=f"one {jax.default_backend()} device")
    present = jax.device_count()
    if present < 2:
        return Placement(1, ChosenBy.DEFAULT, reason="one CPU device present")
    if config.parallel in ("data", "both") and config.batch_size % present:
        return Placement(
            1,
            ChosenBy.DEFAULT,
            reason=f"batch {config.batch_size} does not split over {present} devices",
        )
    return None


def resolve_placement(
    config: RunConfig,
    steppers: Callable[[int], Callable[[int], Any]],
    signature: dict[str, Any],
    total_steps: int,
    *,
    log: Callable[[str], None] = lambda line: None,
) -> Placement:
    """The placement of a run: `config.devices` if it is a number, else measured or cached.

    With ``devices="auto"`` on a CPU with K ≥ 2 devices (``mupc train`` asks XLA for one per
    core), one device and K devices are timed for a few steps (`time_interleaved`) and the
    faster taken (`choose_devices`); the result is stored in the placement cache
    (`default_cache_path`, ``$MUPC_PLACEMENT_CACHE``) under this machine and `signature`, and
    a later run of the same shape takes it from there. Nothing is measured, and one device
    used, on an accelerator, with one CPU device, with a batch that K does not divide, or for
    a run of fewer than `MIN_STEPS_TO_CALIBRATE` steps that the cache does not know. A
    corrupt cache is said in one line and measured again; a cache that cannot be written is
    said and left alone.

    **Arguments:**

    - `config`: the run's configuration.
    - `steppers`: `steppers(K)` returns a function `run(n)` that takes n chained training
      steps on K devices and waits for the last (it must not change the run's state).
    - `signature`: the network's description (`network_signature`), the cache key's half.
    - `total_steps`: the run's length in steps.
    - `log`: where the one-line progress messages go.

    **Returns:** the `Placement`.
    """
    import jax

    fixed = _no_choice(config)
    if fixed is not None:
        return fixed
    candidates = (1, jax.device_count())
    path = default_cache_path()
    cache = None if path is None else PlacementCache(path)
    machine = machine_fingerprint()
    key = cache_key(machine, signature)
    if cache is not None:
        try:
            known = cache.lookup(key)
        except CorruptCache as error:
            log(f"placement cache: {error}; measuring again")
            known = None
        if known is not None and known.devices in candidates:
            return known
    if total_steps < MIN_STEPS_TO_CALIBRATE:
        return Placement(1, ChosenBy.DEFAULT, reason=f"{total_steps} steps, too few to calibrate")
    log(f"placement: timing a few steps on {' and '.join(map(str, candidates))} devices")
    seconds = time_interleaved({count: steppers(count) for count in candidates})
    placement = Placement(choose_devices(seconds), ChosenBy.CALIBRATION, seconds)
    if cache is not None:
        try:
            cache.store(key, placement, machine, signature)
        except OSError as error:
            log(f"placement cache: could not write {path} ({error}); not cached")
    return placement


def with_devices(config: RunConfig, devices: int) -> RunConfig:
    """`config` on `devices` devices (e.g. the number a `Placement` chose)."""
    return dataclasses.replace(config, devices=devices)
