"""Two networks that share their activities: `mupc.NetworkPair`."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ._network.base import PCNetwork


class NetworkPair(eqx.Module):
    """A forward network $f$ (input end $z_0$ → output end $z_L$) and a backward network $g$
    ($z_L$ → $z_0$) over the same activities: the backward network's layer l is the forward
    network's layer H + 1 − l, its input is the forward network's output end and its output is
    the forward network's input end.

    Bidirectional PC (`mupc.Bidirectional`) adds both networks' energies; hybrid PC
    (`mupc.Amortised`) starts inference from the backward network's feedforward pass and
    trains it to predict the equilibrium. In the generative direction the forward network is
    the generator (label or latent → image) and the backward one the recogniser (image →
    label or latent).

    **Arguments:** `forward` and `backward`, two `PCNetwork`s with the same number of layers
    and activities of the same shape (e.g. two `ResNet`s of the same width and depth with
    swapped input and output sizes).

    **Raises:** `ValueError` if they are not networks or their depths differ.
    """

    forward: PCNetwork
    backward: PCNetwork

    def __check_init__(self):
        for name in ("forward", "backward"):
            if not isinstance(getattr(self, name), PCNetwork):
                raise ValueError(
                    f"`{name}` must be a mupc network (e.g. mupc.ResNet), got "
                    f"{type(getattr(self, name)).__name__}."
                )
        if self.forward.num_layers != self.backward.num_layers:
            raise ValueError(
                f"The two networks of a NetworkPair must have the same number of layers, got "
                f"{self.forward.num_layers} (forward) and {self.backward.num_layers} (backward)."
            )

    @property
    def num_layers(self) -> int:
        """H, the number of shared activity layers."""
        return self.forward.num_layers

    @property
    def dtype(self) -> jnp.dtype:
        """The forward network's floating dtype."""
        return self.forward.dtype

    def check_batch(self, inputs: Any, targets: Any, *, check_finite: bool = True) -> None:
        """Raise `ValueError` unless (`inputs`, `targets`) fit the forward network and
        (`targets`, `inputs`) the backward one."""
        self.forward.check_batch(inputs, targets, check_finite=check_finite)
        self.backward.check_batch(targets, inputs, check_finite=False)
        forward = jax.eval_shape(lambda x: self.forward.feedforward(x)[0], inputs)
        backward = jax.eval_shape(lambda y: self.backward.feedforward(y)[0], targets)
        if str(jax.tree.structure(forward)) != str(jax.tree.structure(backward)) or any(
            a.shape != b.shape
            for a, b in zip(jax.tree.leaves(forward), jax.tree.leaves(backward), strict=True)
        ):
            raise ValueError(
                "The two networks of a NetworkPair must have activities of the same shape: got "
                f"{[a.shape for a in jax.tree.leaves(forward)]} (forward) and "
                f"{[b.shape for b in jax.tree.leaves(backward)]} (backward)."
            )
