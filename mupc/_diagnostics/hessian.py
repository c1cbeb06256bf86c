"""The activity Hessian of the energy: how well conditioned inference is (docs/method.md,
"Linear networks in closed form").

For one example, stack the hidden activities into $z = (z_1, \\dots, z_H) \\in \\mathbb{R}^{HN}$;
the activity Hessian is $H_z = \\nabla_z^2 F(z; W)$, an $HN \\times HN$ matrix. Gradient descent
on the activities converges at a rate set by its condition number
$\\kappa = \\lambda_{\\max} / \\lambda_{\\min}$.

Every example of a batch has its own Hessian (the energy is a sum of per-example terms), so
every function here measures each example separately. Hessian-vector products are
forward-over-reverse ($H_z v = \\partial_\\epsilon \\nabla_z F(z + \\epsilon v)$), and two methods
turn them into eigenvalues: `DenseSpectrum` builds the whole matrix (small networks) and
`LanczosSpectrum` runs Lanczos with full reorthogonalisation (matrix-free).
"""

import abc
import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray

from .._custom_types import Activities, Inputs, Targets
from .._energy import energy
from .._loss import MSE, Loss
from .._network.base import PCNetwork
from .._validation import check_instance

Vector = Float[Array, " dim"]
MatVec = Callable[[Vector], Vector]


def _with_batch_axis(activities):
    """One example's activities (layers, ...) as a batch of one (layers, 1, ...)."""
    return jax.tree.map(lambda leaf: leaf[:, None], activities)


def _example_hvp(network: PCNetwork, inputs, targets, activities, loss: Loss) -> MatVec:
    """$v \\mapsto H_z v$ for ONE example at `activities` (a pytree of (layers, ...) arrays,
    flattened layer by layer by `ravel_pytree`): forward-over-reverse, or reverse-over-reverse
    for networks without forward-mode autodiff."""
    point, unravel = ravel_pytree(activities)
    x, y = inputs[None], targets[None]
    reference = network.feedforward(x)[0]

    def example_energy(flat):
        acts = _with_batch_axis(unravel(flat))
        return energy(network, acts, x, y, loss, reference)[0]

    grad = jax.grad(example_energy)
    if network.forward_mode_autodiff:

        def matvec(vector):
            return jax.jvp(grad, (point,), (vector,))[1]

    else:

        def matvec(vector):
            return jax.grad(lambda z: jnp.vdot(grad(z), vector))(point)

    return matvec


def _activity_dim(network: PCNetwork, inputs: Inputs) -> int:
    """The number of activity coordinates of one example (H N for the MLP)."""
    shapes = jax.eval_shape(lambda x: network.feedforward(x)[0], inputs[:1])
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))


def _default_activities(network: PCNetwork, inputs: Inputs, activities: Activities | None):
    expected = jax.eval_shape(lambda x: network.feedforward(x)[0], inputs)
    if activities is None:
        return network.feedforward(inputs)[0]
    shapes = jax.tree.map(jnp.shape, activities)
    if shapes != jax.tree.map(lambda leaf: leaf.shape, expected):
        raise ValueError(
            f"`activities` must have the shapes of the feedforward activities, "
            f"{jax.tree.map(lambda leaf: leaf.shape, expected)} (e.g. (H, B, N)), got {shapes}. "
            "Pass the activities of the same batch, or None for the feedforward pass."
        )
    return activities


def _check_batch(network: PCNetwork, inputs, targets):
    try:
        network.check_batch(inputs, targets, check_finite=False)
    except ValueError as error:
        raise ValueError(f"{error} For one example use `inputs[None]`.") from None


def _dense_matrix(matvec: MatVec, dim: int, dtype, chunk: int) -> Float[Array, "dim dim"]:
    """The matrix of a symmetric linear map from `dim` matrix-vector products (in chunks)."""
    columns = jax.lax.map(matvec, jnp.eye(dim, dtype=dtype), batch_size=min(chunk, dim))
    return 0.5 * (columns + columns.T)


@eqx.filter_jit
def activity_hessian(
    network: PCNetwork,
    inputs: Inputs,
    targets: Targets,
    activities: Activities | None = None,
    *,
    loss: Loss = MSE(),
    chunk: int = 256,
) -> Float[Array, "batch dim dim"]:
    """The dense activity Hessian $\\nabla_z^2 F_i$ of every example i, $z$ flattened layer by
    layer (index $(l - 1) N + n$ is unit n of layer l).

    **Arguments:**

    - `network`: the network.
    - `inputs`, `targets`: a batch, shapes (B, D) and (B, C).
    - `activities`: where to evaluate it, shape (H, B, N); default the feedforward pass.
    - `loss`: the output energy (default `MSE()`).
    - `chunk`: how many Hessian-vector products are vectorised at once (memory vs speed).

    **Returns:** shape (B, H N, H N), symmetrised.

    **Raises:** `ValueError` for mismatched shapes.
    """
    _check_batch(network, inputs, targets)
    activities = _default_activities(network, inputs, activities)
    dim = _activity_dim(network, inputs)

    def one(x, y, z):
        return _dense_matrix(_example_hvp(network, x, y, z, loss), dim, network.dtype, chunk)

    return jax.vmap(one, in_axes=(0, 0, 1))(inputs, targets, activities)


def lanczos_tridiagonal(
    matvec: MatVec, start: Vector, iterations: int, key: PRNGKeyArray
) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
    """k steps of Lanczos with full reorthogonalisation on a symmetric linear map.

    Builds an orthonormal basis $q_1, \\dots, q_k$ of the Krylov space of `start` and the
    tridiagonal $T = Q^\\top A Q$ with diagonal $\\alpha_j = q_j^\\top A q_j$ and off-diagonal
    $\\beta_j = \\lVert r_j \\rVert$, $r_j = A q_j - \\alpha_j q_j - \\beta_{j-1} q_{j-1}$. Every
    residual is orthogonalised against all previous $q$ twice ("twice is enough"), so the Ritz
    values (eigenvalues of T) carry no spurious copies. If the Krylov space is exhausted
    ($\\beta_j \\approx 0$, e.g. an operator with few distinct eigenvalues) the next $q$ is a
    fresh random vector orthogonal to the basis and $\\beta_j$ is set to 0, so T stays exact.
    The loop is one `lax.fori_loop`.

    **Arguments:**

    - `matvec`: $v \\mapsto A v$ for a symmetric A of size `dim`.
    - `start`: the starting vector, shape (dim,), non-zero.
    - `iterations`: k, a static integer with 1 ≤ k ≤ dim.
    - `key`: PRNG key for restart vectors.

    **Returns:** `(alphas, betas)`, both shape (k,); `betas[j]` couples $q_{j+1}$ and $q_{j+2}$
    (the last one is unused by T).

    **Raises:** `ValueError` if k is not in [1, dim].
    """
    dim = start.shape[0]
    if not isinstance(iterations, int) or not 1 <= iterations <= dim:
        raise ValueError(
            f"`iterations` must be an integer in [1, dim = {dim}], got {iterations!r}; "
            "use min(iterations, dim)."
        )
    dtype = start.dtype
    eps = jnp.finfo(dtype).eps
    basis = jnp.zeros((iterations + 1, dim), dtype).at[0].set(start / jnp.linalg.norm(start))
    rows = jnp.arange(iterations + 1)

    def orthogonalise(vector, basis, j):
        mask = (rows <= j).astype(dtype)
        for _ in range(2):
            vector = vector - ((basis @ vector) * mask) @ basis
        return vector

    def body(j, carry):
        basis, alphas, betas, scale = carry
        q = basis[j]
        w = matvec(q)
        alpha = q @ w
        w = orthogonalise(w, basis, j)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(alpha) + beta)
        broke_down = beta <= 10.0 * jnp.sqrt(dim) * eps * scale
        fresh = jax.random.normal(jax.random.fold_in(key, j), (dim,), dtype)
        fresh = orthogonalise(fresh, basis, j)
        fresh = orthogonalise(fresh / jnp.linalg.norm(fresh), basis, j)
        following = jnp.where(
            broke_down, fresh / jnp.linalg.norm(fresh), w / jnp.where(broke_down, 1.0, beta)
        )
        basis = basis.at[j + 1].set(following)
        alphas = alphas.at[j].set(alpha)
        betas = betas.at[j].set(jnp.where(broke_down, 0.0, beta))
        return basis, alphas, betas, scale

    init = (basis, jnp.zeros(iterations, dtype), jnp.zeros(iterations, dtype), jnp.zeros((), dtype))
    _, alphas, betas, _ = jax.lax.fori_loop(0, iterations, body, init)
    return alphas, betas


def _tridiagonal_eigenvalues(alphas, betas):
    off = betas[:-1]
    matrix = jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return jnp.linalg.eigvalsh(matrix)


class SpectrumMethod(eqx.Module):
    """Turns Hessian-vector products into (some of) the eigenvalues, in ascending order."""

    @abc.abstractmethod
    def eigenvalues(self, matvec: MatVec, dim: int, dtype, key: PRNGKeyArray) -> Float[Array, " k"]:
        """Eigenvalues (or Ritz values) of the symmetric map `matvec` of size `dim`."""


class DenseSpectrum(SpectrumMethod):
    """Build the whole $HN \\times HN$ matrix from $HN$ Hessian-vector products and take all
    its eigenvalues (`eigvalsh`). Exact; $O((HN)^3)$ time and $O((HN)^2)$ memory.

    **Arguments:** `chunk`, how many products are vectorised at once.
    """

    chunk: int = 256

    def eigenvalues(self, matvec, dim, dtype, key):
        return jnp.linalg.eigvalsh(_dense_matrix(matvec, dim, dtype, self.chunk))


class LanczosSpectrum(SpectrumMethod):
    """Matrix-free: `iterations` Lanczos steps with full reorthogonalisation from a random
    start; returns the Ritz values. The extreme ones converge first: $\\lambda_{\\max}$ within
    a few tens of steps, $\\lambda_{\\min}$ more slowly when $\\kappa$ is large (convergence goes
    with $\\sqrt{\\kappa}$). Cost: `iterations` products and $O(k \\cdot HN)$ memory.

    **Arguments:** `iterations`, k (capped at HN).
    """

    iterations: int = 128

    def __check_init__(self):
        if not isinstance(self.iterations, int) or self.iterations < 2:
            raise ValueError(f"`iterations` must be an integer ≥ 2, got {self.iterations!r}.")

    def eigenvalues(self, matvec, dim, dtype, key):
        start_key, restart_key = jax.random.split(key)
        start = jax.random.normal(start_key, (dim,), dtype)
        alphas, betas = lanczos_tridiagonal(matvec, start, min(self.iterations, dim), restart_key)
        return _tridiagonal_eigenvalues(alphas, betas)


class HessianSpectrum(NamedTuple):
    """Eigenvalues of each example's activity Hessian.

    **Fields:** `lambda_min`, `lambda_max`, `condition_number`
    ($\\lambda_{\\max}/\\lambda_{\\min}$), each shape (B,),
    and `eigenvalues`, shape (B, k), ascending: all HN eigenvalues for `DenseSpectrum`,
    the k Ritz values for `LanczosSpectrum`.
    """

    lambda_min: Float[Array, " batch"]
    lambda_max: Float[Array, " batch"]
    condition_number: Float[Array, " batch"]
    eigenvalues: Float[Array, "batch k"]


@eqx.filter_jit
def _spectrum(network, inputs, targets, activities, loss, method, key):
    dim = _activity_dim(network, inputs)
    keys = jax.random.split(key, inputs.shape[0])

    def one(x, y, z, k):
        matvec = _example_hvp(network, x, y, z, loss)
        return method.eigenvalues(matvec, dim, network.dtype, k)

    values = jax.vmap(one, in_axes=(0, 0, 1, 0))(inputs, targets, activities, keys)
    lowest, highest = values[:, 0], values[:, -1]
    return HessianSpectrum(lowest, highest, highest / lowest, values)


def hessian_spectrum(
    network: PCNetwork,
    inputs: Inputs,
    targets: Targets,
    activities: Activities | None = None,
    *,
    loss: Loss = MSE(),
    method: SpectrumMethod = DenseSpectrum(),
    key: PRNGKeyArray | None = None,
) -> HessianSpectrum:
    """Extreme eigenvalues and condition number of the activity Hessian, per example.

    $\\kappa_i = \\lambda_{\\max}(\\nabla_z^2 F_i) / \\lambda_{\\min}(\\nabla_z^2 F_i)$,
    evaluated at `activities` (default: the feedforward pass, where inference starts).

    **Arguments:**

    - `network`: the network.
    - `inputs`, `targets`: shapes (B, D) and (B, C); each example is measured separately.
    - `activities`: shape (H, B, N), or None for the feedforward activities.
    - `loss`: the output energy (default `MSE()`).
    - `method`: `DenseSpectrum()` (default, exact) or `LanczosSpectrum(iterations)`.
    - `key`: PRNG key for Lanczos start vectors (default `jax.random.key(0)`).

    **Returns:** a `HessianSpectrum`.

    **Raises:** `ValueError` for mismatched shapes or an unknown method.

    To follow conditioning during training, call it on a fixed probe batch with
    `state.network` (see `track_hessian`).
    """
    check_instance("network", network, PCNetwork, "a mupc network (e.g. mupc.ResNet)")
    if not isinstance(method, SpectrumMethod):
        raise ValueError(
            f"`method` must be a mupc.SpectrumMethod (DenseSpectrum() or LanczosSpectrum()), got "
            f"{method!r}."
        )
    inputs = jnp.asarray(inputs, network.dtype)
    targets = jnp.asarray(targets, network.dtype)
    _check_batch(network, inputs, targets)
    activities = _default_activities(network, inputs, activities)
    key = jax.random.key(0) if key is None else key
    return _spectrum(network, inputs, targets, activities, loss, method, key)


def track_hessian(
    trainer,
    state,
    batches: Iterable[tuple[Inputs, Targets]],
    probe_inputs: Inputs,
    probe_targets: Targets,
    *,
    every: int,
    method: SpectrumMethod = DenseSpectrum(),
    callback: Callable[[int, HessianSpectrum], None] | None = None,
):
    """Train on `batches` and measure the activity Hessian on a fixed probe batch every
    `every` steps (and before the first step and after the last).

    **Arguments:**

    - `trainer`: a `mupc.Trainer` (its `loss` is used for the energy).
    - `state`: the `TrainState` to start from.
    - `batches`: an iterable of `(inputs, targets)`; one training step per batch.
    - `probe_inputs`, `probe_targets`: the fixed probe batch, shapes (P, D) and (P, C).
    - `every`: k ≥ 1, the measurement interval in steps.
    - `method`: a `SpectrumMethod`.
    - `callback`: called as `callback(step, spectrum)` after each measurement (progress).

    **Returns:** `(state, steps, spectra)`: the final state, the list of step numbers measured
    and the list of `HessianSpectrum`, one per measured step.

    **Raises:** `ValueError` if `every` < 1.
    """
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"`every` must be an integer ≥ 1, got {every!r}.")
    steps, spectra = [], []

    def measure(state):
        step = int(state.step)
        spectrum = hessian_spectrum(
            state.network, probe_inputs, probe_targets, loss=trainer.loss, method=method
        )
        steps.append(step)
        spectra.append(spectrum)
        if callback is not None:
            callback(step, spectrum)

    measure(state)
    for inputs, targets in batches:
        state, _ = trainer.step(state, inputs, targets)
        if int(state.step) % every == 0:
            measure(state)
    if steps[-1] != int(state.step):
        measure(state)
    return state, steps, spectra
