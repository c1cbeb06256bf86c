"""What a trained PC network does by inference: reconstruct an image through a decoder's
latent, classify an image by inferring its label."""

import dataclasses
from typing import Any

from jaxtyping import Array

from ._activity_init import forward_network
from ._clamp import Clamp, Direction, check_direction
from ._custom_types import PRNGKeyArray


def _with_clamp(trainer, clamp: Clamp):
    from ._training.pc import PCTrainer

    if not isinstance(trainer, PCTrainer):
        raise ValueError(f"`trainer` must be a mupc.PCTrainer, got {type(trainer).__name__}.")
    prior = trainer.prior if clamp.free_input else None
    return dataclasses.replace(trainer, clamp=clamp, prior=prior)


def reconstruct(
    trainer: Any, model: Any, images: Array, *, key: PRNGKeyArray | None = None
) -> tuple[Array, Array]:
    """Reconstruct images through a generative network's latent: clamp the images at the
    output end, infer the free input end $z_0$ with the trainer's energy (its prior
    included), start and solver, then decode it with the feedforward pass,
    $\\hat x = f(z_0^*)$.

    **Arguments:** `trainer` (a `mupc.PCTrainer`: its `inference`, `activity_init`, `loss`,
    `prior` and `coupling` are used, its clamp pattern replaced), `model` (the decoder, or a
    `mupc.NetworkPair` whose forward network decodes), `images` (B, ...), `key`.

    **Returns:** `(latents, reconstructions)`, shapes (B, latent...) and like `images`.
    """
    inferred = _with_clamp(trainer, Clamp(input="free")).infer(model, None, images, key)
    return inferred.inputs, forward_network(model)(inferred.inputs)


def classify_by_inference(
    trainer: Any,
    model: Any,
    images: Array,
    *,
    direction: Direction = "generative",
    key: PRNGKeyArray | None = None,
) -> Array:
    """Class scores by inference: clamp the images, free the label end, minimise the energy
    and read the label end (argmax for the class).

    **Arguments:**

    - `trainer`: a `mupc.PCTrainer` (energy, start and solver; its clamp pattern replaced).
    - `model`: the network, or a `mupc.NetworkPair` (labels at the input end).
    - `images`: (B, ...).
    - `direction`: `"generative"` (default: labels at the input end, images at the output
      end; the label end starts where `activity_init` says) or `"discriminative"` (images at
      the input end; the label end starts at the prediction and, for a single network, stays
      there: the feedforward pass).
    - `key`: for random starts.

    **Returns:** the label end after inference, (B, C).

    **Raises:** `ValueError` for an unknown direction.
    """
    if check_direction(direction) == "generative":
        return _with_clamp(trainer, Clamp(input="free")).infer(model, None, images, key).inputs
    return _with_clamp(trainer, Clamp(output="free")).infer(model, images, None, key).outputs
