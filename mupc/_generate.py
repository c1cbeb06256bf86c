"""Sampling text from a causal language model (a `mupc.Transformer` on token ids).

Generation is autoregressive: the context window holds the last T tokens; the next token is
drawn from $\\operatorname{softmax}(\\hat y_t / \\tau)$ at the window's last filled position t
(τ the temperature; τ = 0 takes the argmax). The window is padded on the right while the
text is shorter than T: causality makes the outputs at positions ≤ t independent of the
padding. One compiled function draws every token (`lax.scan`).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray

from ._network.base import PCNetwork
from ._network.transformer import Transformer


def _check(network, prompt: np.ndarray, length: int, temperature: float) -> None:
    if not isinstance(network, Transformer) or not network.config.tokens:
        raise ValueError(
            "Generation needs a token language model (a mupc.Transformer with `vocab_size`), "
            f"got {type(network).__name__}."
        )
    if not network.config.is_causal:
        raise ValueError("Generation needs a causal transformer (`causal=True`).")
    if prompt.ndim != 1 or prompt.size < 1:
        raise ValueError(
            f"`prompt` must be a non-empty 1-D array of token ids, got {prompt.shape}."
        )
    vocab = network.config.vocab_size
    assert vocab is not None
    if prompt.min() < 0 or prompt.max() >= vocab:
        raise ValueError(f"`prompt` holds ids outside the vocabulary 0..{vocab - 1}.")
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise ValueError(f"`length` must be an integer ≥ 0, got {length!r}.")
    if not (0 <= temperature < float("inf")):
        raise ValueError(f"`temperature` must be finite and ≥ 0, got {temperature!r}.")


@eqx.filter_jit
def _sample(network, window, filled, length: int, temperature, key):
    context = window.shape[0]

    def step(carry, step_key):
        window, filled = carry
        position = jnp.minimum(filled, context) - 1
        logits = network(window.astype(network.dtype)[None])[0, position]
        greedy = jnp.argmax(logits)
        scaled = logits / jnp.maximum(temperature, jnp.finfo(logits.dtype).tiny)
        drawn = jax.random.categorical(step_key, scaled)
        token = jnp.where(temperature > 0, drawn, greedy).astype(window.dtype)
        # Append: write into the next free slot, or shift left once the window is full.
        shifted = jnp.roll(window, -1).at[-1].set(token)
        appended = window.at[jnp.minimum(filled, context - 1)].set(token)
        window = jnp.where(filled >= context, shifted, appended)
        return (window, filled + 1), token

    _, tokens = jax.lax.scan(step, (window, filled), jax.random.split(key, length))
    return tokens


def generate(
    network: PCNetwork,
    prompt,
    length: int,
    *,
    temperature: float = 1.0,
    key: PRNGKeyArray | None = None,
) -> Int[Array, " length"]:
    """Draw `length` tokens that continue `prompt`.

    **Arguments:**

    - `network`: a causal token `mupc.Transformer` (a language model).
    - `prompt`: 1-D token ids (at least one); only its last T are seen.
    - `length`: the number of tokens to draw.
    - `temperature`: τ > 0 samples from $\\operatorname{softmax}(\\hat y / \\tau)$; 0 is greedy.
    - `key`: PRNG key (default `jax.random.key(0)`).

    **Returns:** the drawn token ids, shape (length,).

    **Raises:** `ValueError` for a network that is not a causal language model or a bad
    argument.
    """
    prompt = np.asarray(prompt)
    _check(network, prompt, length, temperature)
    if length == 0:
        return jnp.zeros((0,), jnp.int32)
    context = network.config.input_shape[0]
    seen = prompt[-context:].astype(np.int32)
    window = np.zeros(context, np.int32)
    window[: seen.size] = seen
    key = jax.random.key(0) if key is None else key
    return _sample(
        network, jnp.asarray(window), jnp.asarray(seen.size), length, jnp.asarray(temperature), key
    )
