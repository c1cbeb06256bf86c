"""Oracles for the PC family (generative, bidirectional, hybrid, Monte-Carlo PC), written with
NumPy and plain loops, independently of the library: every energy here is a sum of squares of
affine functions of the free activities of a LINEAR network, so its minimiser is a least-squares
solution and its Boltzmann density exp(-F) a Gaussian, both built block by block from the weight
matrices and the multiplier table (`naive.spec_multipliers`)."""

import numpy as np
from naive import spec_multipliers, weight_list


def chain_maps(network):
    """The linear maps of one network's chain u_0 → u_1 → ... → u_H → u_{H+1} (u_0 the input
    end, u_{H+1} the output end), as (A_below, A_self) pairs: residual_l = u_l − A_l u_{l−1}."""
    cfg = network.config
    a1, ah, al = spec_multipliers(
        cfg.parameterisation, cfg.input_dim, cfg.width, cfg.depth, cfg.skips
    )
    weights = [np.asarray(w, np.float64) for w in weight_list(network)]
    maps = [a1 * weights[0]]
    for w in weights[1:-1]:
        maps.append((np.eye(cfg.width) if cfg.skips else 0.0) + ah * w)
    maps.append(al * weights[-1])
    return maps  # maps[l] predicts u_{l+1} from u_l, l = 0..H


def residual_rows(maps, sizes, scale=1.0, reverse=False):
    """Rows [coefficient blocks per variable] of the residuals u_{l+1} − maps[l] u_l, for the
    variables ordered z_0, z_1, ..., z_H, z_L (`sizes`); `reverse` reads the chain from z_L
    down to z_0 (a backward network)."""
    count = len(sizes)
    order = list(range(count))[::-1] if reverse else list(range(count))
    rows = []
    for step, matrix in enumerate(maps):
        below, above = order[step], order[step + 1]
        blocks = [np.zeros((sizes[above], sizes[j])) for j in range(count)]
        blocks[above] = scale * np.eye(sizes[above])
        blocks[below] = blocks[below] - scale * matrix
        rows.append(blocks)
    return rows


def least_squares_equilibrium(rows, sizes, free, values, prior=None):
    """argmin over the free variables of ½‖A z − c‖² with `numpy.linalg.lstsq`.

    `rows`: residual rows from `residual_rows`; `free[j]`: whether variable j is free;
    `values[j]`: the clamped value of variable j (ignored when free); `prior`: (index, mean,
    std) adds the rows (z_j − mean)/std. Returns the list of variables at the minimum."""
    if prior is not None:
        index, mean, std = prior
        blocks = [np.zeros((sizes[index], sizes[j])) for j in range(len(sizes))]
        blocks[index] = np.eye(sizes[index]) / std
        rows = [*rows, blocks]
    matrix = np.block(rows)
    offsets = np.cumsum([0, *sizes])
    columns = [np.arange(offsets[j], offsets[j + 1]) for j in range(len(sizes))]
    free_cols = np.concatenate([columns[j] for j in range(len(sizes)) if free[j]])
    constant = np.zeros(matrix.shape[0])
    for j in range(len(sizes)):
        if not free[j]:
            constant -= matrix[:, columns[j]] @ values[j]
    if prior is not None:
        index, mean, std = prior
        constant[-sizes[index] :] += mean / std
    solution, *_ = np.linalg.lstsq(matrix[:, free_cols], constant, rcond=None)
    out, cursor = [], 0
    for j in range(len(sizes)):
        if free[j]:
            out.append(solution[cursor : cursor + sizes[j]])
            cursor += sizes[j]
        else:
            out.append(np.asarray(values[j], np.float64))
    return out


def gaussian_posterior(rows, sizes, free, values, prior=None):
    """Mean and covariance of exp(−½‖A z − c‖²) over the free variables: mean = the least-squares
    solution, covariance = (AᵀA)⁻¹ (in the order of the free variables, concatenated)."""
    if prior is not None:
        index, _, std = prior
        blocks = [np.zeros((sizes[index], sizes[j])) for j in range(len(sizes))]
        blocks[index] = np.eye(sizes[index]) / std
        rows_all = [*rows, blocks]
    else:
        rows_all = rows
    matrix = np.block(rows_all)
    offsets = np.cumsum([0, *sizes])
    free_cols = np.concatenate(
        [np.arange(offsets[j], offsets[j + 1]) for j in range(len(sizes)) if free[j]]
    )
    a = matrix[:, free_cols]
    mean = np.concatenate(
        [
            v
            for v, f in zip(
                least_squares_equilibrium(rows, sizes, free, values, prior), free, strict=True
            )
            if f
        ]
    )
    return mean, np.linalg.inv(a.T @ a)


def bpc_energy(forward, backward, z0, hidden, zl, alpha_f, alpha_b):
    """The bPC energy of ONE example with a plain loop over layers: α_f Σ ½‖z_l − f_l(z_{l−1})‖²
    (l = 1..H+1, z_{H+1} = z_L) + α_b Σ ½‖z_l − g(z_{l+1})‖² (l = H..0, z_{H+1} = z_L), where
    the backward network's first layer reads z_L and its readout predicts z_0 from z_1."""
    f = chain_maps(forward)
    g = chain_maps(backward)
    layers = [z0, *hidden, zl]  # z_0 .. z_{H+1}
    total_f = sum(
        0.5 * np.sum((layers[j + 1] - f[j] @ layers[j]) ** 2) for j in range(len(layers) - 1)
    )
    top = len(layers) - 1
    total_b = 0.0
    for step in range(top):  # the backward chain: z_L → z_H → ... → z_1 → z_0
        source, target = top - step, top - step - 1
        total_b += 0.5 * np.sum((layers[target] - g[step] @ layers[source]) ** 2)
    return alpha_f * total_f + alpha_b * total_b
