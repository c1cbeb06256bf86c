"""Timing several trainers on the same network and batch, interleaved."""

import time

import jax


def interleaved_step_times(methods: dict, network, inputs, targets, repeats: int):
    """Seconds of each trainer's first step (compilation included) and of its next `repeats`
    steps, the trainers taking turns step by step so that every one sees the same machine load.

    **Arguments:** `methods` maps names to trainers (`mupc.PCTrainer`, `mupc.BPTrainer`, ...);
    every trainer starts from `network` and steps on the batch `(inputs, targets)`.

    **Returns:** `(first, times)`: `first[name]` in seconds, `times[name]` a list of `repeats`
    step times in seconds.
    """
    states, first, times = {}, {}, {}
    for name, trainer in methods.items():
        started = time.perf_counter()
        state, metrics = trainer.step(trainer.init(network), inputs, targets)
        jax.block_until_ready(metrics.loss)
        first[name] = time.perf_counter() - started
        states[name], times[name] = state, []
    for _ in range(repeats):
        for name, trainer in methods.items():
            started = time.perf_counter()
            states[name], metrics = trainer.step(states[name], inputs, targets)
            jax.block_until_ready(metrics.loss)
            times[name].append(time.perf_counter() - started)
    return first, times
