"""A deliberately naive predictive coding network: one example at a time, plain Python loops
over layers, a list of separate weight matrices, and the multipliers typed in from docs/method.md's
table. The tests use it as an independent oracle for the fast, stacked implementation."""

import math

import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {
    "linear": lambda v: v,
    "tanh": jnp.tanh,
    "relu": lambda v: jnp.maximum(v, 0.0),
}


def spec_multipliers(param, input_dim, width, depth, skips):
    """The table of docs/method.md ("Parameterisations"), written out independently of the
    library."""
    num_layers = depth + 1
    if param == "sp":
        return 1.0, 1.0, 1.0
    first = 1.0 / math.sqrt(input_dim)
    hidden = 1.0 / math.sqrt(width * num_layers) if skips else 1.0 / math.sqrt(width)
    last = 1.0 / width if param == "mupc" else 1.0 / math.sqrt(width)
    return first, hidden, last


def weight_list(network):
    """[W_1, W_2, ..., W_H, W_L] as separate matrices."""
    hidden = [network.hidden_weights[i] for i in range(network.hidden_weights.shape[0])]
    return [network.input_weights, *hidden, network.output_weights]


def example_energy(weights, activities, x, y, mults, phi, skips, loss):
    """F for ONE example; `activities` is a list [z_1, ..., z_H] of vectors."""
    first, hidden, last = mults
    total = 0.0
    previous = x
    for layer, z in enumerate(activities):
        if layer == 0:
            prediction = first * (weights[0] @ previous)
        else:
            prediction = hidden * (weights[layer] @ phi(previous))
            if skips:
                prediction = prediction + previous
        error = z - prediction
        total = total + 0.5 * jnp.sum(error * error)
        previous = z
    output = last * (weights[-1] @ phi(previous))
    if loss == "mse":
        total = total + 0.5 * jnp.sum((y - output) ** 2)
    else:
        log_probs = output - jax.scipy.special.logsumexp(output)
        total = total - jnp.sum(y * log_probs)
    return total


def batch_energies(weights, activities, inputs, targets, mults, phi, skips, loss):
    """Per-example energies, one Python iteration per example."""
    return jnp.stack(
        [
            example_energy(
                weights,
                [a[i] for a in activities],
                inputs[i],
                targets[i],
                mults,
                phi,
                skips,
                loss,
            )
            for i in range(inputs.shape[0])
        ]
    )


def feedforward(weights, x, mults, phi, skips):
    """Hidden activities (list of (B, N)) and outputs of the naive forward pass."""
    first, hidden, last = mults
    z = first * (x @ weights[0].T)
    activities = [z]
    for weight in weights[1:-1]:
        z = (z if skips else 0.0) + hidden * (phi(z) @ weight.T)
        activities.append(z)
    return activities, last * (phi(z) @ weights[-1].T)


def gd_inference(weights, activities, inputs, targets, mults, phi, skips, loss, lr, steps):
    """Plain per-example gradient descent, one step at a time."""

    def total(acts):
        return jnp.sum(batch_energies(weights, acts, inputs, targets, mults, phi, skips, loss))

    grad = jax.jit(jax.grad(total))
    for _ in range(steps):
        grads = grad(activities)
        activities = [a - lr * g for a, g in zip(activities, grads, strict=True)]
    return activities


def dense_linear_system(network, x, y):
    """For a linear network and ONE example: the activity Hessian H_z and vector b of
    ∇_z F = H_z z − b, assembled block by block with NumPy from docs/method.md
    ("Linear networks in closed form")."""
    cfg = network.config
    a1, ah, aL = spec_multipliers(
        cfg.parameterisation, cfg.input_dim, cfg.width, cfg.depth, cfg.skips
    )
    n, h = cfg.width, cfg.depth
    eye = np.eye(n)
    jac = [None] + [
        (eye if cfg.skips else 0.0) + ah * np.asarray(w, np.float64) for w in network.hidden_weights
    ]
    w_out = aL * np.asarray(network.output_weights, np.float64)
    hess = np.zeros((h * n, h * n))
    for layer in range(h):
        block = slice(layer * n, (layer + 1) * n)
        if layer < h - 1:
            nxt = slice((layer + 1) * n, (layer + 2) * n)
            hess[block, block] = eye + jac[layer + 1].T @ jac[layer + 1]
            hess[nxt, block] = -jac[layer + 1]
            hess[block, nxt] = -jac[layer + 1].T
        else:
            hess[block, block] = eye + w_out.T @ w_out
    b = np.zeros(h * n)
    b[:n] = a1 * np.asarray(network.input_weights, np.float64) @ np.asarray(x, np.float64)
    b[-n:] += w_out.T @ np.asarray(y, np.float64)
    return hess, b


def layer_errors(weights, activities, x, y, mults, phi, skips):
    """Errors [ε_1, ..., ε_H] (each (B, N)) and the output residual y − ŷ(z_H) (B, C)."""
    first, hidden, last = mults
    errors = [activities[0] - first * (x @ weights[0].T)]
    for layer in range(1, len(activities)):
        below = activities[layer - 1]
        prediction = hidden * (phi(below) @ weights[layer].T) + (below if skips else 0.0)
        errors.append(activities[layer] - prediction)
    return errors, y - last * (phi(activities[-1]) @ weights[-1].T)


def optax_inference(weights, activities, inputs, targets, mults, phi, skips, loss, opt, steps):
    """Per-example inference with an Optax optimiser on the list of activities, one step at a
    time (elementwise optimisers treat every example and layer alike)."""
    import optax

    def total(acts):
        return jnp.sum(batch_energies(weights, acts, inputs, targets, mults, phi, skips, loss))

    grad = jax.jit(jax.grad(total))
    state = opt.init(activities)
    for _ in range(steps):
        with jax.numpy_dtype_promotion("standard"):  # Optax's bias correction mixes dtypes
            updates, state = opt.update(grad(activities), state, activities)
        activities = optax.apply_updates(activities, updates)
    return activities


SLOPES = {"linear": lambda v: np.ones_like(v), "relu": lambda v: (v > 0).astype(np.float64)}


def dense_activity_hessian(network, z):
    """The activity Hessian of ONE example at activities `z` (H, N), for a linear or ReLU
    network with MSE output, assembled block by block with NumPy (docs/method.md with
    J_l = τI + a_l W_l diag φ′(z_{l−1}); φ″ = 0 almost everywhere, so this is exact)."""
    cfg = network.config
    _, ah, aL = spec_multipliers(
        cfg.parameterisation, cfg.input_dim, cfg.width, cfg.depth, cfg.skips
    )
    n, h = cfg.width, cfg.depth
    slope = SLOPES[cfg.activation]
    z = np.asarray(z, np.float64)
    eye = np.eye(n)
    hidden = np.asarray(network.hidden_weights, np.float64)
    jac = [(eye if cfg.skips else 0.0) + ah * hidden[i] * slope(z[i])[None] for i in range(h - 1)]
    readout = aL * np.asarray(network.output_weights, np.float64) * slope(z[-1])[None]
    hess = np.zeros((h * n, h * n))
    for layer in range(h):
        block = slice(layer * n, (layer + 1) * n)
        if layer < h - 1:
            nxt = slice((layer + 1) * n, (layer + 2) * n)
            hess[block, block] = eye + jac[layer].T @ jac[layer]
            hess[nxt, block] = -jac[layer]
            hess[block, nxt] = -jac[layer].T
        else:
            hess[block, block] = eye + readout.T @ readout
    return hess


def numpy_feedforward(network, x):
    """The naive forward pass in NumPy float64: activities (H, B, N) and outputs (B, C)."""
    cfg = network.config
    mults = spec_multipliers(cfg.parameterisation, cfg.input_dim, cfg.width, cfg.depth, cfg.skips)
    phi = {"linear": lambda v: v, "relu": lambda v: np.maximum(v, 0.0), "tanh": np.tanh}
    weights = [np.asarray(w, np.float64) for w in weight_list(network)]
    acts, out = feedforward(
        weights, np.asarray(x, np.float64), mults, phi[cfg.activation], cfg.skips
    )
    return np.stack(acts), np.asarray(out)


def numpy_equilibrium(network, x, y):
    """Linear network, MSE: per example the MSE loss ½‖y − ŷ‖², the equilibrium energy F(z*)
    with z* = H_z⁻¹ b from `numpy.linalg.solve`, and the eigenvalues of
    S = I + Σ_l J_l J_lᵀ (J_l = ∂ŷ/∂z_l, products of the layer maps)."""
    cfg = network.config
    mults = spec_multipliers(cfg.parameterisation, cfg.input_dim, cfg.width, cfg.depth, cfg.skips)
    weights = [np.asarray(w, np.float64) for w in weight_list(network)]
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    _, outputs = numpy_feedforward(network, x)
    n, h = cfg.width, cfg.depth
    maps = [(np.eye(n) if cfg.skips else 0.0) + mults[1] * w for w in weights[1:-1]]
    jacobians = [mults[2] * weights[-1]]
    for layer_map in reversed(maps):
        jacobians.insert(0, jacobians[0] @ layer_map)
    s = np.eye(cfg.output_dim) + sum(j @ j.T for j in jacobians)
    losses, energies = [], []
    for i in range(x.shape[0]):
        hess, b = dense_linear_system(network, x[i], y[i])
        z_star = np.linalg.solve(hess, b).reshape(h, 1, n)
        energy = example_energy(
            weights, [np.asarray(v[0]) for v in z_star], x[i], y[i], mults, lambda v: v,
            cfg.skips, "mse",
        )  # fmt: skip
        energies.append(float(energy))
        losses.append(0.5 * float(np.sum((y[i] - outputs[i]) ** 2)))
    return np.array(losses), np.array(energies), np.linalg.eigvalsh(s)


def epc_states(weights, errors, x, mults, phi, skips):
    """The error-perturbed forward pass z_l = μ_l(z_{l-1}) + ε_l, one layer at a time; returns
    the list of activities [z_1, ..., z_H] (each (B, N)) and the outputs (B, C)."""
    first, hidden, last = mults
    z = first * (x @ weights[0].T) + errors[0]
    activities = [z]
    for weight, error in zip(weights[1:-1], errors[1:], strict=True):
        z = (z if skips else 0.0) + hidden * (phi(z) @ weight.T) + error
        activities.append(z)
    return activities, last * (phi(z) @ weights[-1].T)


def epc_energies(weights, errors, x, y, mults, phi, skips, loss):
    """Per-example F(ε) = Σ_l ½‖ε_l‖² + ℓ(ŷ(ε), y), shape (B,)."""
    _, outputs = epc_states(weights, errors, x, mults, phi, skips)
    hidden = sum(0.5 * jnp.sum(e * e, axis=1) for e in errors)
    if loss == "mse":
        return hidden + 0.5 * jnp.sum((y - outputs) ** 2, axis=1)
    log_probs = outputs - jax.scipy.special.logsumexp(outputs, axis=1, keepdims=True)
    return hidden - jnp.sum(y * log_probs, axis=1)


def epc_inference(weights, x, y, mults, phi, skips, loss, lr, steps):
    """Plain per-example gradient descent on the errors from ε = 0, one step at a time."""
    width = weights[0].shape[0]
    errors = [jnp.zeros((x.shape[0], width), x.dtype) for _ in weights[:-1]]

    def total(errs):
        return jnp.sum(epc_energies(weights, errs, x, y, mults, phi, skips, loss))

    grad = jax.jit(jax.grad(total))
    for _ in range(steps):
        grads = grad(errors)
        errors = [e - lr * g for e, g in zip(errors, grads, strict=True)]
    return errors


def local_weight_gradients(weights, activities, x, y, mults, phi, skips, loss):
    """∂F̄/∂W of the batch-mean standard PC energy at `activities`, by autodiff of the naive
    per-example energy (one example at a time)."""

    def mean_energy(ws):
        return jnp.mean(batch_energies(ws, activities, x, y, mults, phi, skips, loss))

    return jax.grad(mean_energy)(weights)
