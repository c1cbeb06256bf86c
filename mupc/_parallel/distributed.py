"""Several processes (hosts) in one run, with `jax.distributed`.

Every process runs the same program; `jax.distributed.initialize` connects them, after which
`jax.devices()` lists the devices of every process and one compiled step spans them all (the
collectives go over the network: NCCL between GPUs, gloo between CPUs). See
`docs/tutorials/parallel.md` for launching on a SLURM cluster and on a multi-GPU node.
"""

import re

import jax


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Connect this process to the others (`jax.distributed.initialize`).

    Call it once per process, before anything else uses JAX. With all three arguments the
    processes find each other at `coordinator`; with none, JAX detects them from the
    environment of a cluster scheduler (SLURM: ``SLURM_JOB_ID``, ``SLURM_NTASKS``,
    ``SLURM_PROCID``, ...; Open MPI; Kubernetes) or ``JAX_COORDINATOR_ADDRESS``. CPU
    collectives use gloo.

    **Arguments:**

    - `coordinator`: ``HOST:PORT`` of process 0 (every process gives the same one).
    - `num_processes`: P, the number of processes.
    - `process_id`: this process's index, 0 ≤ I < P.

    **Raises:** `ValueError` for a malformed or partial set of arguments, for no cluster
    found when none is given, or when JAX has already started its backends in this process.
    """
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError(
            "Give all of --coordinator HOST:PORT, --num-processes P and --process-id I (or "
            f"none, to detect a SLURM or MPI job), got coordinator={coordinator!r}, "
            f"num_processes={num_processes!r}, process_id={process_id!r}."
        )
    if coordinator is not None and not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", coordinator):
        raise ValueError(
            f"`coordinator` must be HOST:PORT (e.g. node001:12345), got {coordinator!r}."
        )
    if num_processes is not None and (
        isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1
    ):
        raise ValueError(f"`num_processes` must be a positive integer, got {num_processes!r}.")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(
            f"`process_id` must be in 0..{num_processes - 1} (num_processes={num_processes}), "
            f"got {process_id!r}."
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except RuntimeError as error:  # backends already started, or a second call
        raise ValueError(f"Cannot start jax.distributed in this process: {error}") from None
    except ValueError as error:
        if coordinator is None:
            raise ValueError(
                "Found no cluster to join (no SLURM or MPI job, no JAX_COORDINATOR_ADDRESS): "
                "give --coordinator HOST:PORT --num-processes P --process-id I. "
                f"(JAX said: {error})"
            ) from None
        raise


def is_main_process() -> bool:
    """Whether this is process 0, the one that writes files (always, with one process)."""
    return jax.process_index() == 0
