"""The user-network tutorial (docs/tutorials/custom-network.md) runs as written: an MLP-Mixer,
which neither built-in network covers, trained end to end by μPC + ePC; then its learning
signal against backprop."""

import os
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import mupc

PAGE = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "custom-network.md"


def test_the_mlp_mixer_tutorial_trains_end_to_end(tmp_path, capsys):
    (code,) = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        # User code: standard dtype promotion and float32, as a user would have.
        with jax.numpy_dtype_promotion("standard"), jax.enable_x64(False):
            namespace: dict = {}
            exec(compile(code, str(PAGE), "exec"), namespace)
            network = namespace["state"].network
            assert network.structure.period == 2 and network.num_layers == 9
            accuracy = namespace["result"].accuracy
            assert accuracy > 0.7, accuracy  # chance is 0.1; two epochs of 4,000 digits
            x, y = namespace["x"], namespace["y"]
            signal = mupc.learning_signal(namespace["trainer"], network, x, y)
    finally:
        os.chdir(cwd)
    # ePC's local update points along backprop's gradient in every layer of the mixer.
    assert float(np.min(np.asarray(signal.cosine))) > 0.95, signal.cosine
    assert "test accuracy" in capsys.readouterr().out
    assert isinstance(jnp.asarray(0.0), jax.Array)
