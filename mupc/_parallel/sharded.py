"""A network whose activities are split along depth over the mesh: the one PC algorithm, sharded.

`LayerSharded(network, mesh)` implements the network interface by calling `network` for every
method and constraining every activity pytree that passes through the interface (the
feedforward pass, the predictions, the features, the errors) to the sharding

$$(\\text{layers}, \\text{batch}, \\dots) \\mapsto (\\texttt{"layers"}, \\texttt{"data"},
\\text{replicated}, \\dots).$$

The energy, the inference solvers and the trainers then run unchanged inside `jit`, and XLA's
SPMD partitioner splits their work along depth: each device computes the errors, gradients and
updates of its own H / K layers. Nothing else is written twice: the PC step under layer
sharding is the single-device step, `Trainer.gradients`, applied to this wrapper.

What crosses devices follows from the energy's data flow. Layer l's prediction needs
$z_{l-1}$, so each inference step sends the top activity of every shard to the next device
and, in the gradient, its cotangent back (collective-permutes of one (B, ...) block each);
the readout $r(z_H)$ is computed on the top shard and its (B, C) outputs summed over the
layer devices (`readout`). The feedforward pass is a sequential scan: every device computes
it whole (as the single device does) and keeps its own layers. See `docs/tutorials/parallel.md` for
the communication measured in the compiled program.

A layer axis that K does not divide is padded by the partitioner (the shards hold
⌈n / K⌉ layers, the last ones fewer): any depth works; a multiple of K balances the work.
"""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .._network.base import Activities, PCNetwork
from .mesh import DATA, LAYERS


class LayerSharded(PCNetwork):
    """`network` with its activities sharded (layers → ``"layers"``, batch → ``"data"``).

    Used inside the compiled step only (the sharding constraints need `jit`); gradients with
    respect to it have the same structure, with the wrapped network's in `.network`.

    **Arguments:**

    - `network`: any `PCNetwork`.
    - `mesh`: a mesh with axes ``("data", "layers")`` (from `mupc.device_mesh`).

    Layer slicing (`predict(..., start > 0)`, which `DiscreteInference(skip_inactive=True)`
    uses to skip layers that have not moved yet) is turned off: slicing the sharded depth axis
    would re-split it in every phase, and would not shorten the step anyway, since the top
    shard is busy from the first inference step and the step waits for the busiest shard.
    """

    network: PCNetwork
    mesh: Mesh = eqx.field(static=True)
    config: Any = eqx.field(static=True)

    kind: ClassVar[str] = "layer-sharded"
    supports_layer_slicing: ClassVar[bool] = False

    def __init__(self, network: PCNetwork, mesh: Mesh):
        self.network = network
        self.mesh = mesh
        self.config = network.config

    @property
    def dtype(self):
        return self.network.dtype

    @property
    def num_layers(self) -> int:
        return self.network.num_layers

    @classmethod
    def from_config(cls, data, *, key, dtype=None):
        raise TypeError("LayerSharded wraps a built network: use LayerSharded(network, mesh).")

    def constrain(self, activities: Activities) -> Activities:
        """`activities` with every leaf (layers, batch, ...) split as (``"layers"``,
        ``"data"``)."""
        sharding = NamedSharding(self.mesh, P(LAYERS, DATA))
        return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), activities)

    def feedforward(self, inputs, errors=None):
        errors = None if errors is None else self.constrain(errors)
        activities, outputs = self.network.feedforward(inputs, errors)
        return self.constrain(activities), outputs

    def predict(self, states, features, inputs=None, start=0):
        if start != 0:
            raise ValueError("Layer-sharded activities cannot be sliced (start must be 0).")
        predicted = self.network.predict(self.constrain(states), self.constrain(features), inputs)
        return self.constrain(predicted)

    def features(self, activities):
        return self.constrain(self.network.features(activities))

    def readout(self, activities):
        """$r(z_H)$, computed on the shard that holds $z_H$ when every layer axis splits
        evenly: the others contribute zeros to one sum over ``"layers"`` of the (B, C)
        outputs, and the readout's gradient stays on the top shard. (Left to the partitioner,
        $z_H$ itself would be broadcast to every shard in each inference step.)"""
        k = self.mesh.shape[LAYERS]
        leaves = jax.tree.leaves(activities)
        if any(leaf.shape[0] % k for leaf in leaves):
            return self.network.readout(activities)  # uneven shards: the partitioner decides
        specs = jax.tree.map(lambda _: P(LAYERS, DATA), activities)

        def top_shard(local):
            outputs = self.network.readout(local)
            outputs = jnp.where(jax.lax.axis_index(LAYERS) == k - 1, outputs, 0.0)
            return jax.lax.psum(outputs, LAYERS)

        return jax.shard_map(top_shard, mesh=self.mesh, in_specs=(specs,), out_specs=P(DATA))(
            activities
        )

    def activation(self, x):
        return self.network.activation(x)

    def layer_specs(self):
        return self.network.layer_specs()

    def layer_weights(self, tree):
        return self.network.layer_weights(tree.network if isinstance(tree, LayerSharded) else tree)

    def check_batch(self, inputs, targets, *, check_finite=True):
        self.network.check_batch(inputs, targets, check_finite=check_finite)
