"""Data- and layer-parallel training on a device mesh (`jax.sharding`, no `pmap`).

A `ParallelTrainer` wraps a `PCTrainer` or `BPTrainer` and keeps its `init` / `step` interface.
The devices form a 2-D mesh with axes ``("data", "layers")``:

- **data**: the batch is split over the ``"data"`` axis and the weights are replicated. The
  step is the single-device step itself, partitioned by `jit`: PC inference is per example, so
  it needs no communication; only the weight gradient is reduced (an all-reduce).
- **layers** (PC only): the hidden activities (H, B, N) and the hidden weights are split along
  depth over the ``"layers"`` axis. Inference is local — layer l's update needs only
  $z_{l-1}$, $z_l$ and $\\varepsilon_{l+1}$ — so each device sends one boundary activity
  (B, N) up and receives one cotangent (B, N) back per inference step (two
  collective-permutes); nothing else crosses devices inside the inference loop.

Layer sharding needs H divisible by the number of layer devices. The H - 1 hidden weights are
stored in a **layer-aligned layout** of H slots, slot l - 1 holding $W_l$ and slot 0 a zero
pad (layer 1 uses the input weights), so that device d holds exactly the weights of its own
layers. `ParallelTrainer.unshard` returns an ordinary `TrainState`.
"""

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ._activity_init import FeedforwardInit, NormalInit
from ._custom_types import Inputs, Targets
from ._inference import DiscreteInference
from ._network import ResNet
from ._optimisers import optax_update
from ._training import PCTrainer, StepMetrics, Trainer, TrainState, apply_gradients, trainable

ParallelMode = Literal["data", "layers", "both"]

DATA, LAYERS = "data", "layers"


def _mesh_shape(devices: int, parallel: str) -> tuple[int, int]:
    if parallel == "data":
        return devices, 1
    if parallel == "layers":
        return 1, devices
    if parallel == "both":
        data = max(d for d in range(1, int(devices**0.5) + 1) if devices % d == 0)
        return data, devices // data
    raise ValueError(f"`parallel` must be one of 'data', 'layers' or 'both', got {parallel!r}.")


def device_mesh(
    devices: int | None = None,
    parallel: ParallelMode = "data",
    *,
    data: int | None = None,
    layers: int | None = None,
) -> Mesh:
    """A 2-D device mesh with axes ``("data", "layers")`` over the first devices present.

    Either give `devices` (K) and `parallel`: ``"data"`` is a K × 1 mesh, ``"layers"`` 1 × K,
    ``"both"`` the most nearly square factorisation data × layers = K with data ≤ layers
    (4 → 2 × 2, 8 → 2 × 4); or give the axis sizes `data` and `layers` directly.
    With `jax.distributed` initialised, `jax.devices()` lists the devices of every host and
    the mesh spans them all.

    **Arguments:**

    - `devices`: K, the number of devices to use (default: all of `jax.devices()`).
    - `parallel`: ``"data"``, ``"layers"`` or ``"both"``.
    - `data`, `layers`: explicit axis sizes (override `devices` and `parallel`).

    **Returns:** a `jax.sharding.Mesh` of shape (data, layers).

    **Raises:** `ValueError` if K < 1, K exceeds the devices present, or `parallel` is unknown.
    """
    present = jax.devices()
    if data is not None or layers is not None:
        data = 1 if data is None else data
        layers = 1 if layers is None else layers
        devices = data * layers
    else:
        devices = len(present) if devices is None else devices
        if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
            raise ValueError(f"`devices` must be a positive integer, got {devices!r}.")
        data, layers = _mesh_shape(devices, parallel)
    if data < 1 or layers < 1:
        raise ValueError(f"Mesh axis sizes must be ≥ 1, got data={data}, layers={layers}.")
    if devices > len(present):
        raise ValueError(
            f"Asked for {devices} devices but only {len(present)} "
            f"{present[0].platform.upper()} device(s) are present. Use at most {len(present)} "
            "devices, or on CPU simulate more with "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} (set before JAX starts)."
        )
    grid = np.array(present[:devices]).reshape(data, layers)
    return Mesh(grid, (DATA, LAYERS))


def _map_networks(fn, tree):
    """Apply `fn` to every `ResNet` node of `tree` (the network and the optimiser's copies)."""
    is_net = lambda node: isinstance(node, ResNet)
    return jax.tree.map(lambda node: fn(node) if is_net(node) else node, tree, is_leaf=is_net)


def _pad_hidden(net: ResNet) -> ResNet:
    if net.hidden_weights is None:
        return net
    w = net.hidden_weights
    pad = jnp.zeros((1,) + w.shape[1:], w.dtype)
    return eqx.tree_at(lambda n: n.hidden_weights, net, jnp.concatenate([pad, w]))


def _unpad_hidden(net: ResNet) -> ResNet:
    if net.hidden_weights is None:
        return net
    return eqx.tree_at(lambda n: n.hidden_weights, net, net.hidden_weights[1:])


class ParallelTrainer(eqx.Module):
    """Runs a trainer's steps on a device mesh; same `init` / `step` interface as the trainer.

    With a ``"layers"`` axis of size 1 the trainer's own compiled step is used, partitioned by
    `jit` from the shardings of its inputs (batch on ``"data"``, state replicated), so any
    solver and optimiser work. With layer sharding the PC step runs as a `jax.shard_map`
    program in which every device owns H / K consecutive layers (see the module docstring).

    **Arguments:**

    - `trainer`: a `PCTrainer` or `BPTrainer`.
    - `mesh`: from `device_mesh`, axes ``("data", "layers")``.

    **Raises:** `ValueError` for a mesh without those axes, or layer sharding with a
    `BPTrainer`, a solver other than `DiscreteInference` without `tolerance`, or an activity
    initialisation other than `FeedforwardInit` / `NormalInit`.

    Layer sharding runs all T inference steps on all layers (`skip_inactive` is not used:
    the top shard is active from the first step, so skipping would not shorten the step) and
    applies the activity optimiser to each shard separately, which equals the single-device
    update for elementwise optimisers (sgd, momentum, Adam).
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
        if self.layer_devices > 1:
            if not isinstance(self.trainer, PCTrainer):
                raise ValueError(
                    f"Layer parallelism is for predictive coding only, got "
                    f"{type(self.trainer).__name__}; use parallel='data' for backprop."
                )
            init = self.trainer.activity_init
            if not isinstance(init, FeedforwardInit | NormalInit):
                raise ValueError(
                    "Layer parallelism supports the activity initialisations FeedforwardInit and "
                    f"NormalInit, got {type(init).__name__}; use parallel='data' for others."
                )
            inference = self.trainer.inference
            if not isinstance(inference, DiscreteInference) or inference.tolerance is not None:
                raise ValueError(
                    "Layer parallelism needs `DiscreteInference` without `tolerance`, got "
                    f"{inference!r}; use parallel='data' for other solvers."
                )

    @property
    def data_devices(self) -> int:
        """The size of the ``"data"`` axis."""
        return self.mesh.shape[DATA]

    @property
    def layer_devices(self) -> int:
        """The size of the ``"layers"`` axis."""
        return self.mesh.shape[LAYERS]

    def check_sizes(self, *, batch_size: int | None = None, depth: int | None = None) -> None:
        """Check a batch size and a depth H against the mesh before training.

        **Raises:** `ValueError` if the batch size is not divisible by the data devices, or H
        by the layer devices.
        """
        if batch_size is not None:
            self._check_batch_size(batch_size)
        if depth is not None and self.layer_devices > 1:
            self._check_depth(depth)

    def _check_depth(self, depth: int) -> None:
        k = self.layer_devices
        if depth % k != 0:
            raise ValueError(
                f"Layer parallelism over {k} devices needs the depth H divisible by {k}, got "
                f"H={depth}. Choose H a multiple of {k} or use {_divisors(depth)} layer devices."
            )

    def _check_batch_size(self, batch: int) -> None:
        k = self.data_devices
        if batch % k != 0:
            raise ValueError(
                f"Data parallelism over {k} devices needs the batch size divisible by {k}, got "
                f"batch={batch}. Use a batch size that is a multiple of {k}, or "
                f"{_divisors(batch)} data devices."
            )

    def _check_layout(self, state: TrainState, what: str) -> None:
        if not isinstance(state.network, ResNet):
            return  # only the residual MLP has a layer-aligned layout
        depth = state.network.config.depth
        slots = state.network.hidden_weights.shape[0]
        expected = depth if self.layer_devices > 1 else depth - 1
        if slots != expected:
            raise ValueError(
                f"`{what}` got a state with {slots} hidden weight slots, but this "
                f"{self.data_devices} × {self.layer_devices} mesh expects {expected} (H = "
                f"{depth}). Place ordinary states with `ParallelTrainer.shard(state)` (or start "
                "from `ParallelTrainer.init`) and get them back with `unshard`."
            )

    # ----------------------------------------------------------------- placement

    def _state_shardings(self, state: TrainState):
        replicated = NamedSharding(self.mesh, P())
        shardings = jax.tree.map(lambda _: replicated, state)
        if self.layer_devices == 1:
            return shardings
        by_layer = NamedSharding(self.mesh, P(LAYERS))

        def hidden(net):
            if net.hidden_weights is None:
                return net
            return eqx.tree_at(lambda n: n.hidden_weights, net, by_layer)

        return _map_networks(hidden, shardings)

    def shard(self, state: TrainState) -> TrainState:
        """Place an ordinary `TrainState` on the mesh (e.g. one loaded from a checkpoint).

        Weights and optimiser state are replicated, or with layer sharding their hidden
        weights are put in the layer-aligned layout and split along depth.

        **Raises:** `ValueError` if H is not divisible by the number of layer devices.
        """
        if self.layer_devices > 1:
            self._check_depth(state.network.config.depth)
            state = _map_networks(_pad_hidden, state)
        return jax.device_put(state, self._state_shardings(state))

    def unshard(self, state: TrainState) -> TrainState:
        """The ordinary single-device `TrainState` (hidden weights (H - 1, N, N)) of a sharded
        state: use it to save checkpoints or evaluate."""
        self._check_layout(state, "unshard")
        state = jax.device_put(state, jax.devices()[0])
        if self.layer_devices > 1:
            state = _map_networks(_unpad_hidden, state)
        return state

    def shard_batch(self, inputs: Inputs, targets: Targets) -> tuple[Inputs, Targets]:
        """Split a batch along the ``"data"`` axis (replicated over ``"layers"``).

        **Raises:** `ValueError` if the batch size is not divisible by the data devices.
        """
        self._check_batch_size(np.shape(inputs)[0])
        sharding = NamedSharding(self.mesh, P(DATA))
        return jax.device_put(inputs, sharding), jax.device_put(targets, sharding)

    # ----------------------------------------------------------------- training

    def init(self, network: ResNet, key=None) -> TrainState:
        """A fresh sharded `TrainState` (as `trainer.init`, then `shard`)."""
        return self.shard(self.trainer.init(network, key))

    def step(self, state: TrainState, inputs: Inputs, targets: Targets):
        """One training step on a (global) batch: returns `(new_state, StepMetrics)`, equal to
        the wrapped trainer's step up to floating-point rounding.

        **Raises:** `ValueError` for a malformed batch (as `Trainer.step`) or a batch size not
        divisible by the data devices.
        """
        state.network.check_batch(inputs, targets)
        self._check_layout(state, "step")
        dtype = state.network.dtype
        inputs, targets = self.shard_batch(jnp.asarray(inputs, dtype), jnp.asarray(targets, dtype))
        return _parallel_step(self, state, inputs, targets)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0 and d <= len(jax.devices())]


@eqx.filter_jit
def _parallel_step(parallel: ParallelTrainer, state, inputs, targets):
    batch = NamedSharding(parallel.mesh, P(DATA))
    inputs = jax.lax.with_sharding_constraint(inputs, batch)
    targets = jax.lax.with_sharding_constraint(targets, batch)
    if parallel.layer_devices == 1:
        new_state, metrics = parallel.trainer._step(state, inputs, targets)
    else:
        new_state, metrics = _layer_parallel_pc_step(parallel, state, inputs, targets)
    shardings = parallel._state_shardings(new_state)
    new_state = jax.lax.with_sharding_constraint(new_state, shardings)
    return new_state, metrics


# --------------------------------------------------------------------- layer-parallel PC


def _layer_parallel_pc_step(parallel: ParallelTrainer, state: TrainState, inputs, targets):
    """The PC step with hidden layers split over the ``"layers"`` mesh axis (shard_map)."""
    # Both narrowings are checked in `ParallelTrainer.__check_init__` when layer_devices > 1.
    trainer = parallel.trainer
    assert isinstance(trainer, PCTrainer)
    inference = trainer.inference
    assert isinstance(inference, DiscreteInference)
    network = state.network  # hidden weights in the layer-aligned layout (H, N, N)
    assert isinstance(network, ResNet)
    key, init_key = jax.random.split(state.key)
    feedforward_start = isinstance(trainer.activity_init, FeedforwardInit)
    if feedforward_start:
        init = None
    else:
        init = trainer.activity_init(_unpad_hidden(network), inputs, init_key)
    global_batch = inputs.shape[0]
    k = parallel.layer_devices
    steps = network.config.depth if inference.steps is None else inference.steps

    net_specs = jax.tree.map(lambda _: P(), network)
    net_specs = eqx.tree_at(lambda n: n.hidden_weights, net_specs, P(LAYERS))
    acts_spec = P(LAYERS, DATA)
    # out_specs mirror StepMetrics with a PartitionSpec in place of each array; its fields
    # are annotated as arrays, so the specs are typed Any here.
    replicated: Any = P()
    metric_specs = StepMetrics(
        loss=replicated,
        energy_before=replicated,
        energy_after=replicated,
        inference_steps=replicated,
        layer_energies=replicated if trainer.record_layer_energies else None,
    )

    def local_step(net: ResNet, init, x, y):
        index = jax.lax.axis_index(LAYERS)
        is_first, is_last = index == 0, index == k - 1
        up = [(i, i + 1) for i in range(k - 1)]

        def from_below(top):  # z_{s} for this shard's first layer s + 1 (zeros on device 0)
            return jax.lax.ppermute(top, LAYERS, up)

        def predictions(net, z, below, first):
            """Predictions of this shard's h layers, shape (h, b, N): one batched matmul over
            the layers and their weight slots; on device 0 the first row is replaced by
            `first` = $a_1 W_1 x$ (its weight slot is the zero pad)."""
            previous = jnp.concatenate([below[None], z[:-1]], axis=0)
            hidden = net.hidden_predictions(previous, net.hidden_weights)
            bottom = jnp.where(is_first, first, hidden[0])
            return jnp.concatenate([bottom[None], hidden[1:]], axis=0)

        def output_term(net, z):
            return jnp.where(is_last, trainer.loss(net.readout(z), y), 0.0)

        def local_energy(net, z, first):
            """Per-example energy of this shard's layers (+ the output term on the top one)."""
            errors = z - predictions(net, z, from_below(z[-1]), first)
            return 0.5 * jnp.sum(errors**2, axis=(0, 2)) + output_term(net, z)

        def batch_mean(per_example):  # global mean over the batch of a per-device sum
            return jax.lax.psum(jnp.sum(per_example), (DATA, LAYERS)) / global_batch

        # Feedforward: a pipeline of K rounds; after round r the shards 0..r are exact.
        first = net.first_prediction(x)  # constant during inference: computed once

        def forward_round(_, z):
            below = from_below(z[-1])
            hidden = net.hidden_predictions(below[None], net.hidden_weights[:1])[0]
            bottom = jnp.where(is_first, first, hidden)

            def layer(previous, weight):
                current = net.hidden_layer(previous, weight)
                return current, current

            _, rest = jax.lax.scan(layer, bottom, net.hidden_weights[1:])
            return jnp.concatenate([bottom[None], rest], axis=0)

        h = net.hidden_weights.shape[0]
        shape = (h, x.shape[0], net.input_weights.shape[0])
        zero = jax.lax.pcast(jnp.zeros(shape, x.dtype), (DATA, LAYERS), to="varying")
        ff = jax.lax.fori_loop(0, k, forward_round, zero)
        loss = batch_mean(output_term(net, ff))
        z = ff if init is None else init

        energy_before = batch_mean(local_energy(net, z, first))
        optimiser = inference.optimiser

        def iteration(_, carry):
            z, opt_state = carry
            grad = jax.grad(lambda z: jnp.sum(local_energy(net, z, first)))(z)
            updates, opt_state = optax_update(optimiser, grad, opt_state, z)
            return optax.apply_updates(z, updates), opt_state

        z, _ = jax.lax.fori_loop(0, steps, iteration, (z, optimiser.init(z)))
        z = jax.lax.stop_gradient(z)

        def mean_energy(trainable):
            net_ = eqx.combine(trainable, net)
            return batch_mean(local_energy(net_, z, net_.first_prediction(x)))

        energy_after, grads = jax.value_and_grad(mean_energy)(trainable(net))
        per_layer = None
        if trainer.record_layer_energies:
            errors = z - predictions(net, z, from_below(z[-1]), first)
            local = jnp.sum(0.5 * jnp.sum(errors**2, axis=2), axis=1)  # (h,)
            placed = jax.lax.dynamic_update_slice(
                jnp.zeros(k * h, local.dtype), local, (index * h,)
            )
            hidden = jax.lax.psum(placed, (DATA, LAYERS))  # (H,), each shard fills its slots
            output = batch_mean(output_term(net, z))
            per_layer = jnp.concatenate([hidden / global_batch, output[None]])
        metrics = StepMetrics(
            loss=loss,
            energy_before=energy_before,
            energy_after=energy_after,
            inference_steps=jnp.asarray(steps, jnp.int32),
            layer_energies=per_layer,
        )
        return grads, metrics

    sharded = jax.shard_map(
        local_step,
        mesh=parallel.mesh,
        in_specs=(net_specs, None if init is None else acts_spec, P(DATA), P(DATA)),
        out_specs=(net_specs, metric_specs),
    )
    grads, metrics = sharded(network, init, inputs, targets)
    return apply_gradients(trainer.optimiser, state, grads, key), metrics
