"""A deliberately naive PC transformer: one example at a time, Python loops over layers,
tokens and heads, and the multipliers typed in from the docs' transformer table (μPC):
dense 1/√fan_in, attention logits 1/d_head, embeddings 1, readout 1/d, branch 1/√(2n).
The tests use it as an oracle for `mupc.Transformer` (sub-layer activities)."""

import math

import jax
import jax.numpy as jnp


def typed_multipliers(width, heads, mlp_ratio, blocks, param="mupc"):
    """The multiplier table, written out independently of the library."""
    head_dim = width // heads
    if param == "sp":
        return dict(dense=1.0, down=1.0, readout=1.0, branch=1.0, logits=1 / math.sqrt(head_dim))
    return dict(
        dense=1 / math.sqrt(width),
        down=1 / math.sqrt(mlp_ratio * width),
        readout=1 / width if param == "mupc" else 1 / math.sqrt(width),
        branch=1 / math.sqrt(2 * blocks),
        logits=1 / head_dim,
    )


def layer_norm(v):
    mean = sum(v) / len(v)
    var = sum((e - mean) ** 2 for e in v) / len(v)
    return [(e - mean) / math.sqrt(var + 1e-5) for e in v]


def _vec(x):
    return [float(e) for e in x]


def _matvec(weight, v, scale):
    return [
        scale * sum(float(weight[i, j]) * v[j] for j in range(len(v)))
        for i in range(weight.shape[0])
    ]


def attention(tokens, weights, mults, heads, causal):
    """tokens: list of T vectors (already layer-normed); weights: (Wq, Wk, Wv, Wo)."""
    wq, wk, wv, wo = weights
    dense = mults["dense"]
    q = [_matvec(wq, t, dense) for t in tokens]
    k = [_matvec(wk, t, dense) for t in tokens]
    v = [_matvec(wv, t, dense) for t in tokens]
    width = len(tokens[0])
    head_dim = width // heads
    out = []
    for t in range(len(tokens)):
        mixed = [0.0] * width
        for h in range(heads):
            cols = range(h * head_dim, (h + 1) * head_dim)
            visible = range(t + 1) if causal else range(len(tokens))
            logits = [mults["logits"] * sum(q[t][c] * k[s][c] for c in cols) for s in visible]
            top = max(logits)
            exps = [math.exp(a - top) for a in logits]
            total = sum(exps)
            for s, e in zip(visible, exps, strict=True):
                for c in cols:
                    mixed[c] += e / total * v[s][c]
        out.append(_matvec(wo, mixed, dense))
    return out


def gelu(u):
    return 0.5 * u * (1 + math.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))


def mlp(tokens, weights, mults):
    up, down = weights
    out = []
    for t in tokens:
        hidden = [gelu(u) for u in _matvec(up, t, mults["dense"])]
        out.append(_matvec(down, hidden, mults["down"]))
    return out


def energy(params, activities, ids, targets, mults, heads, causal=True):
    """F of ONE example for a token transformer with sub-layer activities.

    `params`: dict with `tokens` (V, d), `positions` (T, d), `blocks`: list of
    ((Wq, Wk, Wv, Wo), (W_up, W_down)), `readout` (V, d). `activities`: list of H arrays
    (T, d). `ids`: T token ids; `targets`: (T, V) one-hot. Cross-entropy output."""
    seq = [
        [
            float(params["tokens"][int(i), c]) + float(params["positions"][t, c])
            for c in range(params["tokens"].shape[1])
        ]
        for t, i in enumerate(ids)
    ]
    predictions = [seq]
    for layer in range(1, len(activities)):
        below = [_vec(row) for row in activities[layer - 1]]
        normed = [layer_norm(row) for row in below]
        block = params["blocks"][(layer - 1) // 2]
        if (layer - 1) % 2 == 0:
            branch = attention(normed, block[0], mults, heads, causal)
        else:
            branch = mlp(normed, block[1], mults)
        predictions.append(
            [
                [b + mults["branch"] * r for b, r in zip(bt, rt, strict=True)]
                for bt, rt in zip(below, branch, strict=True)
            ]
        )
    total = 0.0
    for z, mu in zip(activities, predictions, strict=True):
        for zt, mt in zip(z, mu, strict=True):
            total += 0.5 * sum((float(a) - b) ** 2 for a, b in zip(zt, mt, strict=True))
    top = [layer_norm(_vec(row)) for row in activities[-1]]
    for t, row in enumerate(top):
        logits = _matvec(params["readout"], row, mults["readout"])
        peak = max(logits)
        log_norm = peak + math.log(sum(math.exp(a - peak) for a in logits))
        total -= sum(float(targets[t, k]) * (logits[k] - log_norm) for k in range(len(logits)))
    return total


def params_of(network):
    """The weights of a `mupc.Transformer` (sub-layer activities) as plain arrays."""
    attention_stack, mlp_stack = network.hidden_stacks
    blocks = []
    for i in range(network.config.blocks):
        attn = attention_stack.attention
        blocks.append(
            (
                tuple(getattr(attn, n).weight[i] for n in ("query", "key", "value", "output")),
                (mlp_stack.mlp.up.weight[i], mlp_stack.mlp.down.weight[i]),
            )
        )
    return {
        "tokens": network.input_layer.tokens.weight,
        "positions": network.input_layer.positions.weight,
        "blocks": blocks,
        "readout": network.readout_layer.projection.weight,
    }


def gelu_is_tanh_approximation():
    """jax.nn.gelu defaults to the tanh approximation the oracle uses."""
    u = jnp.linspace(-3, 3, 7)
    return bool(jnp.allclose(jax.nn.gelu(u), jnp.array([gelu(float(v)) for v in u]), atol=1e-6))
