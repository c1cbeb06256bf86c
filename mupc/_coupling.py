"""How the two networks of a `mupc.NetworkPair` enter the energy: `mupc.Bidirectional`
(bPC) and `mupc.Amortised` (hybrid PC)."""

import abc
import math

import equinox as eqx

from ._loss import MSE, Loss


def _check_weight(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"`{name}` must be a finite number ≥ 0, got {value!r}.")


class Coupling(eqx.Module):
    """The role of the backward network of a `mupc.NetworkPair`.

    With $F_f$ the forward network's energy on the activities and $F_b$ the backward
    network's energy on the same activities read from the other end, inference minimises
    $\\alpha_f F_f + \\alpha_b F_b$ (`inference_weights`) and the weights step on
    $(\\alpha_f \\nabla_{W_f} F_f, \\beta \\nabla_{W_b} F_b)$ at the final activities
    (`learning_weights`), each network's gradient local to its layers.
    """

    loss: eqx.AbstractVar[Loss]

    @property
    @abc.abstractmethod
    def inference_weights(self) -> tuple[float, float]:
        """$(\\alpha_f, \\alpha_b)$."""

    @property
    @abc.abstractmethod
    def learning_weights(self) -> tuple[float, float]:
        """$(\\alpha_f, \\beta)$."""


class Bidirectional(Coupling):
    """Bidirectional PC (bPC; Oliviers, Tang & Bogacz 2025): both networks predict the shared
    activities and both energies are minimised,

    $$F = \\alpha_f \\Big[\\sum_{l=1}^{H} \\tfrac12\\lVert z_l - f_l(z_{l-1})\\rVert^2
    + \\ell_f(z_L)\\Big] + \\alpha_b \\Big[\\sum_{l=1}^{H} \\tfrac12\\lVert z_l -
    g_{l}(z_{l+1})\\rVert^2 + \\ell_b(z_0)\\Big],$$

    where $g_l$ predicts layer l from the layer above it ($z_{H+1} := z_L$; the backward
    network's readout predicts $z_0$ from $z_1$). Both networks learn from this energy's
    gradient. $\\alpha_f = 0$ is discriminative PC with the backward network alone,
    $\\alpha_b = 0$ PC with the forward network alone.

    **Arguments:** `forward_weight` $\\alpha_f$ and `backward_weight` $\\alpha_b$ (≥ 0, not
    both 0), `loss` the backward network's output term $\\ell_b$ (default `MSE()`).
    """

    forward_weight: float = 1.0
    backward_weight: float = 1.0
    loss: Loss = MSE()

    def __check_init__(self):
        _check_weight("forward_weight", self.forward_weight)
        _check_weight("backward_weight", self.backward_weight)
        if self.forward_weight == 0 and self.backward_weight == 0:
            raise ValueError("`forward_weight` and `backward_weight` cannot both be 0.")

    @property
    def inference_weights(self):
        return (float(self.forward_weight), float(self.backward_weight))

    @property
    def learning_weights(self):
        return (float(self.forward_weight), float(self.backward_weight))


class Amortised(Coupling):
    """Hybrid (amortised) PC (Tschantz et al. 2023): the backward network is an amortiser.
    Its feedforward pass starts inference (`mupc.AmortisedInit`), inference minimises the
    forward network's energy alone, and the amortiser learns a layer-local regression onto
    the equilibrium: the gradient of its own energy
    $\\sum_l \\tfrac12\\lVert z^*_l - g_l(z^*_{l+1})\\rVert^2 + \\ell_b(z^*_0)$ at the final
    activities $z^*$. With no inference steps the result is exactly the amortiser's
    prediction.

    **Arguments:** `loss`, the amortiser's output term (default `MSE()`).
    """

    loss: Loss = MSE()

    @property
    def inference_weights(self):
        return (1.0, 0.0)

    @property
    def learning_weights(self):
        return (1.0, 1.0)
