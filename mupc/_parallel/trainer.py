"""`ParallelTrainer`: a trainer's own step, compiled for a device mesh (`jax.sharding`).

The devices form a 2-D mesh with axes ``("data", "layers")`` (`device_mesh`):

- **data**: the batch is split over ``"data"``; inference is per example, so `jit` partitions
  the single-device step with no communication inside inference and one all-reduce of the
  weight gradients (and metrics) per step.
- **layers** (PC): the activities are split along depth over ``"layers"`` by running the same
  step on `LayerSharded(network, mesh)` (see `mupc._parallel.sharded`): the same energy,
  solver and trainer code as on one device, partitioned by XLA.

The weights and the optimiser state are replicated on every device in every mode, so a
sharded `TrainState` has the ordinary layout, and `unshard` only takes one local copy.

With `jax.distributed` (several processes, one or more hosts) the mesh spans the devices of
every process; each process passes its own rows of every global batch (`process_rows`) to
`step`, and every process holds the whole (replicated) state.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jax.typing import ArrayLike
from jaxtyping import Array

from .._custom_types import Inputs, Targets
from .._network.base import PCNetwork
from .._network.conv import ConvResNet
from .._training import PCTrainer, Trainer, TrainState, apply_gradients
from .mesh import DATA, LAYERS
from .sharded import LayerSharded


class ParallelTrainer(eqx.Module):
    """Runs a trainer's steps on a device mesh; same `init` / `step` interface as the trainer.

    Each step is the wrapped trainer's own computation (`Trainer.gradients`, then one
    optimiser step), compiled by `jit` for the mesh: the batch is split over ``"data"`` and,
    when the ``"layers"`` axis is longer than 1, the activities along depth over ``"layers"``
    (every activity leaf (layers, batch, ...) → (``"layers"``, ``"data"``), for the residual
    MLP and, stage by stage, the conv ResNet). Every solver, activity initialisation and
    optimiser works, and the result equals single-device training up to floating-point
    rounding.

    **Arguments:**

    - `trainer`: a `PCTrainer` or `BPTrainer`.
    - `mesh`: from `device_mesh`, axes ``("data", "layers")``.

    **Raises:** `ValueError` for a mesh without those axes, or layer sharding with a
    `BPTrainer` (backprop has no activities to split; use ``parallel="data"``).

    Under layer sharding the inference step does not skip still-inactive layers
    (`DiscreteInference(skip_inactive=True)` is a no-op there; see `LayerSharded`).
    """

    trainer: Trainer
    mesh: Mesh = eqx.field(static=True)

    def __check_init__(self):
        if tuple(self.mesh.axis_names) != (DATA, LAYERS):
            raise ValueError(
                f"`mesh` must have axes ('data', 'layers'), got {self.mesh.axis_names}; build "
                "it with mupc.device_mesh."
            )
        if not isinstance(self.trainer, Trainer):
            raise ValueError(f"`trainer` must be a mupc trainer, got {type(self.trainer)}.")
        if self.layer_devices > 1 and not isinstance(self.trainer, PCTrainer):
            raise ValueError(
                f"Layer parallelism is for predictive coding only, got "
                f"{type(self.trainer).__name__}; use parallel='data' for backprop."
            )

    @property
    def data_devices(self) -> int:
        """The size of the ``"data"`` axis."""
        return self.mesh.shape[DATA]

    @property
    def layer_devices(self) -> int:
        """The size of the ``"layers"`` axis."""
        return self.mesh.shape[LAYERS]

    def check_sizes(self, *, batch_size: int | None = None) -> None:
        """Check a (global) batch size against the mesh before training.

        **Raises:** `ValueError` if the batch size is not divisible by the data devices.
        """
        if batch_size is not None:
            self._check_batch_size(batch_size)

    def _check_batch_size(self, batch: int) -> None:
        k = self.data_devices
        if batch % k != 0:
            raise ValueError(
                f"Data parallelism over {k} devices needs the batch size divisible by {k}, got "
                f"batch={batch}. Use a batch size that is a multiple of {k}, or "
                f"{_divisors(batch)} data devices."
            )

    def _check_network(self, network: PCNetwork) -> None:
        if self.layer_devices > 1 and self.data_devices > 1 and isinstance(network, ConvResNet):
            raise ValueError(
                "parallel='both' (a data × layers mesh) is not supported for the conv ResNet: "
                f"XLA (JAX {jax.__version__}) partitions the batched convolution of the "
                "residual blocks wrongly when its batch and its unevenly split layer axis are "
                "both sharded (the kernel gradient comes out multiplied by the number of layer "
                "devices; docs/tutorials/parallel.md has a reproducer). Use parallel='layers' or "
                "'data'."
            )

    def _check_placed(self, state: TrainState, what: str) -> None:
        placed = getattr(state.step, "sharding", None)
        if placed is None or placed.device_set != set(self.mesh.devices.flat):
            raise ValueError(
                f"`{what}` got a state that is not placed on this {self.data_devices} × "
                f"{self.layer_devices} mesh. Place ordinary states with "
                "`ParallelTrainer.shard(state)` (or start from `ParallelTrainer.init`) and get "
                "them back with `unshard`."
            )

    # ----------------------------------------------------------------- placement

    def shard(self, state: TrainState) -> TrainState:
        """Place an ordinary `TrainState` on the mesh (e.g. one loaded from a checkpoint),
        replicated on every device. With several processes every process must pass the same
        state (e.g. built from the same seed, or loaded from the same checkpoint).

        **Raises:** `ValueError` for a conv ResNet on a data × layers mesh (see `step`).
        """
        self._check_network(state.network)
        return _replicate(state, NamedSharding(self.mesh, P()))

    def unshard(self, state: TrainState) -> TrainState:
        """The ordinary single-device `TrainState` of a sharded one (this process's own
        copy): use it to save checkpoints or evaluate."""
        self._check_placed(state, "unshard")
        return jax.tree.map(_local_copy, state)

    def process_rows(self, batch_size: int) -> slice:
        """The rows of each global batch of `batch_size` examples that this process passes
        to `step`: all of them with one process; with `jax.distributed`, the block its
        devices hold on the ``"data"`` axis (process p of P: rows p·B/P to (p + 1)·B/P when
        each process has one data slot).

        **Raises:** `ValueError` if the batch size is not divisible by the data devices, or
        this process has no device in the mesh.
        """
        self._check_batch_size(batch_size)
        slots = self._process_data_slots()
        per_slot = batch_size // self.data_devices
        return slice(slots[0] * per_slot, (slots[-1] + 1) * per_slot)

    def _process_data_slots(self) -> list[int]:
        """This process's positions on the ``"data"`` axis (consecutive)."""
        here = jax.process_index()
        slots = sorted(
            {
                int(i)
                for (i, _), device in np.ndenumerate(self.mesh.devices)
                if device.process_index == here
            }
        )
        if not slots:
            raise ValueError(
                f"Process {here} of {jax.process_count()} has no device in this "
                f"{self.data_devices} × {self.layer_devices} mesh: with jax.distributed, use "
                f"every process's devices (all {jax.device_count()} devices)."
            )
        if slots != list(range(slots[0], slots[-1] + 1)):
            raise ValueError(
                f"Process {here}'s devices are not consecutive on the 'data' axis of the mesh "
                f"(positions {slots}); build the mesh with mupc.device_mesh."
            )
        return slots

    def shard_batch(self, inputs: ArrayLike, targets: ArrayLike) -> tuple[Array, Array]:
        """Split a batch along the ``"data"`` axis (replicated over ``"layers"``).

        With one process, `inputs` and `targets` are the global batch; with several
        (`jax.distributed`), each process passes its own rows of it, `process_rows(B)`.

        **Raises:** `ValueError` if the batch size is not divisible by the data devices.
        """
        sharding = NamedSharding(self.mesh, P(DATA))
        if jax.process_count() == 1:
            self._check_batch_size(np.shape(inputs)[0])
            return jax.device_put(inputs, sharding), jax.device_put(targets, sharding)
        slots = len(self._process_data_slots())
        rows = np.shape(inputs)[0]
        if rows % slots != 0:
            raise ValueError(
                f"This process holds {slots} of the {self.data_devices} data slots, so its part "
                f"of the batch must have a multiple of {slots} rows, got {rows}."
            )
        batch = rows // slots * self.data_devices

        def place(local):
            local = np.asarray(local)
            return jax.make_array_from_process_local_data(
                sharding, local, (batch, *local.shape[1:])
            )

        return place(inputs), place(targets)

    # ----------------------------------------------------------------- training

    def init(self, network: PCNetwork, key=None) -> TrainState:
        """A fresh sharded `TrainState` (as `trainer.init`, then `shard`)."""
        return self.shard(self.trainer.init(network, key))

    def step(self, state: TrainState, inputs: Inputs, targets: Targets):
        """One training step on a batch: returns `(new_state, StepMetrics)`, equal to the
        wrapped trainer's step up to floating-point rounding.

        `inputs`, `targets`: the global batch, or with several processes this process's rows
        of it (see `shard_batch`).

        **Raises:** `ValueError` for a malformed batch (as `Trainer.step`), a batch size not
        divisible by the data devices, a state not placed on the mesh, or a conv ResNet on a
        data × layers mesh (``parallel="both"``, which XLA partitions wrongly).
        """
        self._check_network(state.network)
        state.network.check_batch(inputs, targets)
        self._check_placed(state, "step")
        dtype = state.network.dtype
        # With several processes the rows go through host memory (see `shard_batch`).
        cast = jnp.asarray if jax.process_count() == 1 else np.asarray
        x, y = self.shard_batch(cast(inputs, dtype), cast(targets, dtype))
        return _parallel_step(self, state, x, y)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0 and d <= jax.device_count()]


def _replicate(tree, sharding: NamedSharding):
    """`tree` placed on every device of `sharding`'s mesh. With several processes the
    leaves go through host memory (a process can only place its own data)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def place(leaf):
        if not isinstance(leaf, jax.Array | np.ndarray):
            return leaf
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = place(jax.random.key_data(leaf))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        return jax.device_put(np.asarray(leaf), sharding)

    return jax.tree.map(place, tree)


def _local_copy(leaf):
    """One device's copy of a replicated array (other leaves unchanged)."""
    if not isinstance(leaf, jax.Array):
        return leaf
    if leaf.sharding.is_fully_replicated:
        return leaf.addressable_data(0)
    return jax.device_put(leaf, jax.local_devices()[0])


@eqx.filter_jit
def _parallel_step(parallel: ParallelTrainer, state: TrainState, inputs, targets):
    mesh = parallel.mesh
    batch = NamedSharding(mesh, P(DATA))
    inputs = jax.lax.with_sharding_constraint(inputs, batch)
    targets = jax.lax.with_sharding_constraint(targets, batch)
    trainer = parallel.trainer
    if parallel.layer_devices == 1:
        new_state, metrics = trainer._step(state, inputs, targets)
    else:
        # `Trainer._step` on the layer-sharded network: its gradients have the wrapper's
        # structure, and the optimiser steps on the wrapped network's part of them.
        key, gradient_key = jax.random.split(state.key)
        network = LayerSharded(state.network, mesh)
        grads, metrics = trainer.gradients(network, inputs, targets, gradient_key)
        assert isinstance(grads, LayerSharded)
        new_state = apply_gradients(trainer.optimiser, state, grads.network, key)
    replicated = NamedSharding(mesh, P())
    new_state = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, replicated), new_state)
    return new_state, metrics
