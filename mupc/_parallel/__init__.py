"""Data- and layer-parallel training on a device mesh (`jax.sharding`), over one or several
processes (`jax.distributed`): the single-device PC step, partitioned, not a second PC
algorithm.

- `mesh`: `device_mesh`, a 2-D mesh with axes ``("data", "layers")``.
- `sharded`: `LayerSharded`, a network whose activities are split along depth.
- `trainer`: `ParallelTrainer`, a trainer's own step compiled for the mesh.
- `distributed`: starting `jax.distributed`, and which process writes files.
"""

from .distributed import initialize as initialize, is_main_process as is_main_process
from .mesh import (
    DATA as DATA,
    LAYERS as LAYERS,
    ParallelMode as ParallelMode,
    device_mesh as device_mesh,
)
from .sharded import LayerSharded as LayerSharded
from .trainer import ParallelTrainer as ParallelTrainer, _parallel_step as _parallel_step
