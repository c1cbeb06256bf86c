"""Checkpoints: a training state and its configuration in one `.npz` file.

Array names (readable by any NumPy-compatible tool, `np.load(path)`):

- `network/<field>`: the network's weight arrays by field name (multipliers not folded in),
  e.g. for the residual MLP `network/input_weights` (N, D), `network/hidden_weights`
  (H - 1, N, N), `network/output_weights` (C, N).
- `opt_state/<path>`: the leaves of the optimiser state, named by their pytree path.
- `step` (int32 scalar) and `key` (the PRNG key's raw uint32 data).
- `config`: a JSON string with `format`, `kind` (the network family, e.g. `"resnet"`),
  `network` (its configuration), `dtype` and any `metadata`.

Writes are atomic: a temporary file in the same folder, then `os.replace`.
"""

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._atomic import atomic_open
from ._network import NETWORKS
from ._network.base import PCNetwork
from ._training import TrainState

FORMAT = "mupc-checkpoint-1"


def _leaves_by_name(tree: Any, prefix: str) -> dict[str, Any]:
    named = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if isinstance(leaf, jax.Array | np.ndarray):
            named[prefix + jax.tree_util.keystr(path, simple=True, separator="/")] = leaf
    return named


def _network_arrays(network: PCNetwork) -> dict[str, Any]:
    return _leaves_by_name(network, "network/")


def _is_typed_key(key) -> bool:
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def save_checkpoint(path: str | os.PathLike, state: TrainState, metadata: dict | None = None):
    """Save `state` (network, optimiser state, step, key) and its configuration to `path`.

    `metadata` (JSON-serialisable) is stored alongside, e.g. the trainer's settings.
    """
    from ._validation import check_instance

    check_instance("state", state, TrainState, "a mupc TrainState (e.g. from trainer.init)")
    path = Path(path)
    key = state.key
    key_data = jax.random.key_data(key) if _is_typed_key(key) else key
    config = {
        "format": FORMAT,
        "kind": state.network.kind,
        "network": state.network.config.to_dict(),
        "dtype": str(state.network.dtype),
        "metadata": metadata or {},
    }
    arrays = {
        **_network_arrays(state.network),
        **_leaves_by_name(state.opt_state, "opt_state/"),
        "step": state.step,
        "key": key_data,
    }
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    arrays["config"] = np.array(json.dumps(config))
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _open(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {str(path)!r}.")
    try:
        data = np.load(path, allow_pickle=False)
        config = json.loads(str(data["config"]))
    except Exception as error:  # zip, JSON or key errors all mean the same to the user
        raise ValueError(f"{str(path)!r} is not a readable mupc checkpoint: {error}") from error
    if config.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} has format {config.get('format')!r}, expected {FORMAT!r}.")
    return data, config


def read_checkpoint_config(path: str | os.PathLike) -> dict[str, Any]:
    """The stored configuration: `{"network": ..., "dtype": ..., "metadata": ...}`."""
    return _open(Path(path))[1]


@contextlib.contextmanager
def stored_precision(path: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, JAX's 64-bit mode is on if the checkpoint at `path` holds a float64
    network (a `--float64` run), so that `load_network` can rebuild it and computations on it
    stay in float64; unchanged for other checkpoints and for `path` None."""
    if path is None or read_checkpoint_config(path)["dtype"] != "float64":
        yield
        return
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def _kind(config: dict[str, Any], path) -> str:
    kind = config.get("kind", "resnet")  # checkpoints written before conv networks existed
    if kind not in NETWORKS:
        raise ValueError(
            f"Checkpoint {str(path)!r} holds a network of kind {kind!r}; this mupc knows "
            f"{sorted(NETWORKS)}."
        )
    return kind


def load_network(path: str | os.PathLike) -> PCNetwork:
    """Rebuild the network stored in a checkpoint from its stored configuration alone."""
    data, config = _open(Path(path))
    network = NETWORKS[_kind(config, path)].from_config(
        config["network"], key=jax.random.key(0), dtype=config["dtype"]
    )
    return _fill(network, _network_arrays(network), data, path, "network")


def _fill(tree, named: dict[str, Any], data, path, what: str):
    leaves = []
    for name, like in named.items():
        if name not in data:
            raise ValueError(f"Checkpoint {str(path)!r} has no array {name!r} for the {what}.")
        stored = data[name]
        if stored.shape != np.shape(like) or stored.dtype != np.asarray(like).dtype:
            raise ValueError(
                f"Checkpoint {str(path)!r}: array {name!r} has shape {stored.shape} and dtype "
                f"{stored.dtype}, expected {np.shape(like)} and {np.asarray(like).dtype}."
            )
        leaves.append(jnp.asarray(stored))
    ids = {id(leaf): i for i, leaf in enumerate(named.values())}
    return jax.tree.map(lambda leaf: leaves[ids[id(leaf)]] if id(leaf) in ids else leaf, tree)


def load_checkpoint(path: str | os.PathLike, like: TrainState) -> TrainState:
    """Load a checkpoint into the structure of `like` (e.g. `trainer.init(network)` for a
    network of the same configuration).

    **Raises:** `ValueError` if the stored network configuration differs from `like`'s (the
    message lists the differing fields), if the stored optimiser state has other arrays than
    `like`'s (a state built with another optimiser), or an array is missing or mis-shaped;
    `FileNotFoundError` if there is no file.
    """
    path = Path(path)
    data, config = _open(path)
    expected = {"kind": like.network.kind, **like.network.config.to_dict()}
    stored = {"kind": _kind(config, path), **config["network"]}
    if stored != expected:
        diffs = ", ".join(
            f"{k}: checkpoint {stored.get(k)!r} vs requested {expected.get(k)!r}"
            for k in sorted(set(stored) | set(expected))
            if stored.get(k) != expected.get(k)
        )
        raise ValueError(f"Checkpoint {str(path)!r} holds a different network ({diffs}).")
    network = _fill(like.network, _network_arrays(like.network), data, path, "network")
    wanted = _leaves_by_name(like.opt_state, "opt_state/")
    stored_names = sorted(name for name in data.files if name.startswith("opt_state/"))
    if stored_names != sorted(wanted):
        raise ValueError(
            f"Checkpoint {str(path)!r} holds the optimiser state {stored_names or 'of none'} but "
            f"the state to load into expects {sorted(wanted) or 'none'}: it was saved with "
            "another optimiser; build the state with the optimiser of the checkpoint."
        )
    opt_state = _fill(like.opt_state, wanted, data, path, "optimiser")
    step = jnp.asarray(data["step"])
    key_data = jnp.asarray(data["key"])
    key = jax.random.wrap_key_data(key_data) if _is_typed_key(like.key) else key_data
    return TrainState(network, opt_state, step, key)
