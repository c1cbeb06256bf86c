"""Where the learning signal goes: per layer, how the PC weight gradient compares with
backprop's (docs/method.md, "The learning signal").

For a network, a batch and a PC trainer, with $g_{\\text{PC},l}$ the weight gradient the trainer
steps on (the batch-mean energy's gradient at the activities after inference, or the solver's
own rule, e.g. ePC's) and $g_{\\text{BP},l}$ the backprop gradient of the batch-mean loss of the
same network, every weight layer l = 1..L gets

$$r_l = \\frac{\\lVert g_{\\text{PC},l}\\rVert}{\\lVert g_{\\text{BP},l}\\rVert}, \\qquad
c_l = \\cos(g_{\\text{PC},l}, g_{\\text{BP},l}) =
\\frac{\\langle g_{\\text{PC},l}, g_{\\text{BP},l}\\rangle}
{\\lVert g_{\\text{PC},l}\\rVert\\,\\lVert g_{\\text{BP},l}\\rVert}$$

($c_l = 0$ when either gradient is exactly zero). A layer "learns through PC" when
$c_l$ is close to 1; exact zeros (a layer inference has not reached) give $r_l = c_l = 0$.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from .._custom_types import PRNGKeyArray
from .._loss import MSE, Loss
from .._network.base import PCNetwork
from .._training import BPTrainer, PCTrainer
from .._validation import check_instance


class LearningSignal(NamedTuple):
    """Per weight layer, bottom (input layer) to top (readout), shape (L,) each.

    **Fields:** `pc_norm` $\\lVert g_{\\text{PC},l}\\rVert$, `bp_norm`
    $\\lVert g_{\\text{BP},l}\\rVert$, `ratio` $r_l$ and `cosine` $c_l$.
    """

    pc_norm: Float[Array, " layers"]
    bp_norm: Float[Array, " layers"]
    ratio: Float[Array, " layers"]
    cosine: Float[Array, " layers"]


def compare_gradients(network: PCNetwork, pc_grads, bp_grads) -> LearningSignal:
    """$r_l$ and $c_l$ for two gradients of `network`'s weights (pytrees like the network)."""
    pc_layers = network.layer_weights(pc_grads)
    bp_layers = network.layer_weights(bp_grads)
    pc_norm = jnp.stack([jnp.linalg.norm(g) for g in pc_layers])
    bp_norm = jnp.stack([jnp.linalg.norm(g) for g in bp_layers])
    dot = jnp.stack([jnp.vdot(p, b) for p, b in zip(pc_layers, bp_layers, strict=True)])
    both = (pc_norm > 0) & (bp_norm > 0)
    safe = jnp.where(both, pc_norm * bp_norm, 1.0)
    cosine = jnp.where(both, dot / safe, 0.0)
    ratio = jnp.where(bp_norm > 0, pc_norm / jnp.where(bp_norm > 0, bp_norm, 1.0), 0.0)
    return LearningSignal(pc_norm, bp_norm, ratio, cosine)


@eqx.filter_jit
def _signal(trainer: PCTrainer, network: PCNetwork, inputs, targets, key) -> LearningSignal:
    from .._training.pc import infer_traced

    pc_grads, _ = trainer.gradients(network, inputs, targets, key)
    if trainer.clamp.free_input:
        # The same objective for backprop: the output term at the latent PC inferred (the
        # envelope theorem: its weight gradient is that of min over the latent).
        inputs = jax.lax.stop_gradient(infer_traced(trainer, network, inputs, targets, key).inputs)
    bp_grads, _ = BPTrainer(optimiser=trainer.optimiser, loss=trainer.loss).gradients(
        network, inputs, targets, key
    )
    return compare_gradients(network, pc_grads, bp_grads)


def learning_signal(
    trainer: PCTrainer,
    network: PCNetwork,
    inputs: ArrayLike,
    targets: ArrayLike,
    key: PRNGKeyArray | None = None,
) -> LearningSignal:
    """Compare, layer by layer, the weight gradient `trainer` steps on with backprop's.

    **Arguments:**

    - `trainer`: a `mupc.PCTrainer` (its inference solver, activity initialisation and loss
      define $g_{\\text{PC}}$; the same loss defines $g_{\\text{BP}}$).
    - `network`: the network, e.g. at initialisation.
    - `inputs`, `targets`: one batch (`inputs` None for a decoder, whose input end is free:
      backprop's gradient is then that of the output term at the latent PC inferred, the
      gradient of the same objective, $\\min_{z_0}$ of the loss, by the envelope theorem).
    - `key`: for a random activity initialisation (default `jax.random.key(0)`).

    **Returns:** a `LearningSignal`, one entry per weight layer (L = H + 1 for the MLP).

    **Raises:** `ValueError` for a trainer that is not a `PCTrainer` or a malformed batch.
    """
    if not isinstance(trainer, PCTrainer):
        raise ValueError(
            f"`trainer` must be a mupc.PCTrainer (the PC method to compare with backprop), got "
            f"{type(trainer).__name__}."
        )
    check_instance("network", network, PCNetwork, "a mupc network (e.g. mupc.ResNet)")
    inputs, targets = trainer.prepare_batch(network, inputs, targets)
    key = jax.random.key(0) if key is None else key
    return _signal(trainer, network, inputs, targets, key)


class DecileSummary(NamedTuple):
    """The cosines of ten consecutive groups of layers (bottom 10% first).

    **Fields:** `mean` and `minimum` cosine of each decile (shape (10,), fewer when there are
    fewer than ten layers), and
    `fraction_aligned`, the fraction of all layers with cosine ≥ `threshold`.
    """

    mean: np.ndarray
    minimum: np.ndarray
    fraction_aligned: float


def decile_summary(signal: LearningSignal, threshold: float = 0.9) -> DecileSummary:
    """Summarise `signal.cosine` by deciles of depth (layers split as evenly as possible)."""
    cosine = np.asarray(signal.cosine, np.float64)
    groups = [group for group in np.array_split(cosine, 10) if group.size]
    return DecileSummary(
        np.array([group.mean() for group in groups]),
        np.array([group.min() for group in groups]),
        float(np.mean(cosine >= threshold)),
    )


# ----------------------------------------------------------------------- named settings


class SignalSetting(NamedTuple):
    """One inference setting of the signal diagnostic: a `label` and its `trainer`."""

    label: str
    trainer: PCTrainer


def _number(text: str, spec: str, what: str = "learning rate") -> float:
    try:
        if "/" in text:
            numerator, denominator = text.split("/")
            value = float(numerator) / float(denominator)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"Bad {what} {text!r} in setting {spec!r}.") from None
    if not (0 < value < float("inf")):
        raise ValueError(f"The {what} in setting {spec!r} must be finite and > 0, got {text!r}.")
    return value


SETTING_KINDS = ("gd", "epc", "epc-reparameterised", "epc-then-gd")


def _steps(text: str, depth: int, spec: str) -> int:
    """An inference step count: an integer ≥ 0, or `H` (the depth)."""
    if text == "H":
        return depth
    if text.isdigit():
        return int(text)
    raise ValueError(f"Bad T {text!r} in setting {spec!r}: an integer ≥ 0 or H.")


def _equilibrium_setting(parts: list[str], depth: int, spec: str):
    """`SequentialInference.equilibrium` from `epc-then-gd:LR:T:REFINE_LR:R[:TOL]`: T steps of
    LR on the errors, then at most R steps of REFINE_LR on the activities (stopped below TOL,
    default none). **Returns:** `(inference, label)`."""
    from .._inference import ErrorInference, SequentialInference

    if len(parts) not in (5, 6):
        raise ValueError(
            f"Bad setting {spec!r}: expected epc-then-gd:LR:T:REFINE_LR:R[:TOL], e.g. "
            "epc-then-gd:0.1:20:0.1:50:1e-3."
        )
    warm = ErrorInference.gradient_descent(_number(parts[1], spec), _steps(parts[2], depth, spec))
    refine_lr, refine_steps = _number(parts[3], spec), _steps(parts[4], depth, spec)
    tolerance = _number(parts[5], spec, "tolerance") if len(parts) == 6 else None
    inference = SequentialInference.equilibrium(warm, refine_lr, refine_steps, tolerance)
    until = "" if tolerance is None else f" tol={parts[5]}"
    label = f"epc {parts[1]} T={warm.steps} + gd {parts[3]} R={refine_steps}{until}"
    return inference, label


def parse_setting(spec: str, depth: int, loss: Loss | None = None) -> SignalSetting:
    """A setting from `KIND:LR[:T]`: KIND is `gd` (gradient descent on the activities), `epc`
    (gradient descent on the errors, local weight gradient) or `epc-reparameterised`; LR is
    the per-example step (`0.5/64` allowed); T an integer or `H` (default: H for gd, 5 for
    ePC). Learning at PC's equilibrium is `epc-then-gd:LR:T:REFINE_LR:R[:TOL]`: ePC's T steps
    of LR, then at most R activity steps of REFINE_LR (until every example's activity
    gradient norm is below TOL). `loss`: the output term of the energy (default `mupc.MSE()`).

    **Raises:** `ValueError` naming the bad part.
    """
    from .._inference import DiscreteInference, ErrorInference, InferenceSolver

    parts = spec.split(":")
    loss = MSE() if loss is None else loss
    if parts[0] == "epc-then-gd":
        schedule, label = _equilibrium_setting(parts, depth, spec)
        return SignalSetting(label, PCTrainer(inference=schedule, loss=loss))
    if len(parts) not in (2, 3) or parts[0] not in SETTING_KINDS:
        raise ValueError(
            f"Bad setting {spec!r}: expected KIND:LR[:T] with KIND one of {list(SETTING_KINDS)}, "
            "e.g. gd:0.5/64:H or epc:0.1:5."
        )
    kind, lr = parts[0], _number(parts[1], spec)
    default = depth if kind == "gd" else 5
    steps = _steps(parts[2] if len(parts) == 3 else str(default), depth, spec)
    inference: InferenceSolver
    if kind == "gd":
        inference = DiscreteInference.gradient_descent(lr, steps)
    else:
        gradient = "local" if kind == "epc" else "reparameterised"
        inference = ErrorInference.gradient_descent(lr, steps, weight_gradient=gradient)
    return SignalSetting(f"{kind} {parts[1]} T={steps}", PCTrainer(inference=inference, loss=loss))


SIGNAL_COLUMNS = ["setting", "layer", "kind", "pc_norm", "bp_norm", "ratio", "cosine"]


def signal_rows(network: PCNetwork, label: str, signal: LearningSignal) -> list[dict]:
    """One CSV row per weight layer (1-based `layer`, its `kind` from the layer specs)."""
    kinds = [spec.kind for spec in network.layer_specs()]
    values = {name: np.asarray(getattr(signal, name), np.float64) for name in signal._fields}
    return [
        {
            "setting": label,
            "layer": index + 1,
            "kind": kinds[index],
            **{name: float(values[name][index]) for name in signal._fields},
        }
        for index in range(len(kinds))
    ]


def plot_signal(rows: list[dict], path, title: str = "") -> None:
    """Two panels against the layer index, one line per setting: $r_l$ (log scale, exact
    zeros drawn at the bottom edge) and $c_l$."""
    from .._figures import pyplot, save_figure

    plt = pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6), sharex=True)
    labels = list(dict.fromkeys(row["setting"] for row in rows))
    positive = [row["ratio"] for row in rows if row["ratio"] > 0]
    floor = min(positive) / 10 if positive else 1e-12
    for label in labels:
        mine = [row for row in rows if row["setting"] == label]
        layers = [row["layer"] for row in mine]
        ratios = [row["ratio"] if row["ratio"] > 0 else floor for row in mine]
        top.plot(layers, ratios, label=label, linewidth=1.2)
        bottom.plot(layers, [row["cosine"] for row in mine], label=label, linewidth=1.2)
    top.set_yscale("log")
    top.set_ylabel("‖g_PC‖ / ‖g_BP‖ (exact 0 at bottom)")
    bottom.set_ylabel("cos(g_PC, g_BP)")
    bottom.set_xlabel("weight layer l (1 = input, L = readout)")
    bottom.axhline(0.9, color="grey", linestyle=":", linewidth=0.8)
    bottom.set_ylim(-0.05, 1.05)
    top.legend(fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_figure(figure, path)
