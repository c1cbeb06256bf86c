"""Compile time flat in depth, checked on the program itself (wall-clock compile times are too
noisy for a test; `benchmarks/compile_depth.py` measures them): the lowered training step of
the residual MLP is one program whatever the depth, up to the bucket loops of PC's layer
skipping, of which there are at most 9."""

import jax
import jax.numpy as jnp
import optax

import mupc
from mupc._inference.discrete import _bucket_starts
from mupc._training.base import _compiled_step


def _program_lines(trainer, depth: int) -> int:
    config = mupc.NetworkConfig(6, 4, depth, 3, "relu", "mupc")
    network = mupc.ResNet(config, key=jax.random.key(0), dtype=jnp.float32)
    state = trainer.init(network, key=jax.random.key(1))
    x = jnp.zeros((2, 6), jnp.float32)
    y = jax.nn.one_hot(jnp.zeros((2,), jnp.int32), 3, dtype=jnp.float32)
    return len(_compiled_step.lower(trainer, state, x, y).as_text().splitlines())


def test_the_training_step_is_the_same_program_at_8_and_1024_layers():
    adam = optax.adam(1e-3)
    epc = mupc.PCTrainer(optimiser=adam, inference=mupc.ErrorInference.gradient_descent(1e-3))
    bp = mupc.BPTrainer(optimiser=adam)
    for trainer in (epc, bp):
        assert _program_lines(trainer, 8) == _program_lines(trainer, 1024)
    # PC (T = H): one loop per block of top layers; H = 8 has 6 distinct blocks, H >= 32 all
    # 9, and past that the program no longer grows.
    assert (len(_bucket_starts(8)), len(_bucket_starts(128)), len(_bucket_starts(1024))) == (
        6,
        9,
        9,
    )
    pc = mupc.PCTrainer(optimiser=adam)
    assert _program_lines(pc, 128) == _program_lines(pc, 1024) > _program_lines(pc, 8)
