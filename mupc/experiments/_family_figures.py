"""Pictures of a PC-family run (`mupc generative draw`): reconstructions beside the originals,
samples from the prior, latent traversals, class-conditional images."""

import os
from pathlib import Path
from typing import Any, Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np

from .._activity_init import forward_network
from .._by_inference import reconstruct
from .._figures import save_figure
from .._pair import NetworkPair
from .._training import PCTrainer
from ._family import FamilyConfig, FamilyData, build_trainer

Picture = Literal["reconstructions", "samples", "traversals", "classes"]
PICTURES: tuple[Picture, ...] = get_args(Picture)


class NoSuchPicture(ValueError):
    """The run has no such picture (e.g. samples without a prior)."""


def _to_images(centred: Any, data: FamilyData) -> np.ndarray:
    """Mean-centred pixel rows (n, D) → images (n, height, width, channels) in [0, 1]."""
    pixels = np.clip(np.asarray(centred) + data.mean_image, 0.0, 1.0)
    channels, height, width = data.image_shape
    return pixels.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)


def _grid(axes_row, images, labels=None):
    for index, ax in enumerate(axes_row):
        ax.axis("off")
        if index < len(images):
            image = images[index]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
            if labels is not None:
                ax.set_title(labels[index], fontsize=7)


def picture_rows(
    picture: Picture, config: FamilyConfig, data: FamilyData, model: Any, *, count: int = 10,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[str]]:  # fmt: skip
    """The rows of images (each (count, h, w, c) in [0, 1]) and their labels.

    **Raises:** `ValueError` when the run has no such picture (e.g. samples without a
    prior, classes without labels)."""
    key = jax.random.key(seed)
    decoder = forward_network(model)
    if picture == "reconstructions":
        if config.variant not in ("decoder", "autoencoder"):
            raise NoSuchPicture("Reconstructions need a decoder or autoencoder run.")
        originals = jnp.asarray(data.test_images[:count], decoder.dtype)
        if config.variant == "autoencoder":
            recon = model.forward(model.backward(originals))
        else:
            trainer = build_trainer(config, data, config.evaluation_steps)
            recon = reconstruct(trainer, model, originals, key=key)[1]
        return [_to_images(originals, data), _to_images(recon, data)], [
            "original",
            "reconstruction",
        ]
    if picture == "samples":
        if config.variant != "decoder" or config.prior_std is None:
            raise NoSuchPicture("Samples from the prior need a decoder run with a prior (--prior).")
        rows = []
        for index in range(3):
            latents = config.prior_std * jax.random.normal(
                jax.random.fold_in(key, index), (count, config.latent), decoder.dtype
            )
            rows.append(_to_images(decoder(latents), data))
        return rows, ["prior sample"] * 3
    if picture == "traversals":
        if config.variant != "decoder":
            raise NoSuchPicture("Latent traversals need a decoder run.")
        trainer = build_trainer(config, data, config.evaluation_steps)
        test = jnp.asarray(data.test_images[:200], decoder.dtype)
        inferred = np.asarray(reconstruct(trainer, model, test, key=key)[0])
        spread = inferred.std(axis=0)
        centre = inferred[0]
        rows, labels = [], []
        for dim in np.argsort(spread)[::-1][:4]:
            values = np.linspace(-2.5, 2.5, count) * spread[dim]
            grid = np.repeat(centre[None], count, axis=0)
            grid[:, dim] = centre[dim] + values
            rows.append(_to_images(decoder(jnp.asarray(grid, decoder.dtype)), data))
            labels.append(f"latent {dim}: ±2.5 sd")
        return rows, labels
    if picture == "classes":
        if config.variant not in ("supervised", "bpc", "hybrid"):
            raise NoSuchPicture("Class-conditional images need a supervised, bpc or hybrid run.")
        classes = data.num_classes
        eye = jnp.eye(classes, dtype=decoder.dtype)
        rows = [_to_images(decoder(eye), data)]
        labels = ["feedforward from the label"]
        if config.variant == "bpc" and isinstance(model, NetworkPair):
            import dataclasses

            from .._activity_init import FeedforwardInit
            from .._clamp import Clamp

            trainer = build_trainer(config, data, config.evaluation_steps)
            assert isinstance(trainer, PCTrainer)
            generating = dataclasses.replace(
                trainer, clamp=Clamp(output="free"), activity_init=FeedforwardInit()
            )
            rows.append(_to_images(generating.infer(model, eye, None, key=key).outputs, data))
            labels.append("bPC inference, image end free")
        means = np.stack(
            [data.test_images[np.argmax(data.test_labels, 1) == c].mean(0) for c in range(classes)]
        )
        rows.append(_to_images(means, data))
        labels.append("class mean of the test set")
        return rows, labels
    raise ValueError(f"Unknown picture {picture!r}: expected one of {list(PICTURES)}.")


def draw_picture(
    picture: Picture,
    config: FamilyConfig,
    data: FamilyData,
    model: Any,
    path: str | os.PathLike,
    *,
    title: str = "",
    count: int = 10,
) -> Path:
    """Draw `picture` of a run into the PNG `path` (written atomically); return the path."""
    from .._figures import pyplot

    rows, labels = picture_rows(picture, config, data, model, count=count)
    plt = pyplot()
    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(0.9 * columns, 1.05 * len(rows) + 0.3), squeeze=False
    )
    for row, label, axes_row in zip(rows, labels, axes, strict=True):
        _grid(axes_row, row)
        axes_row[0].text(-0.1, 0.5, label, transform=axes_row[0].transAxes, ha="right",
                         va="center", fontsize=7)  # fmt: skip
    if title:
        figure.suptitle(title, fontsize=8)
    figure.subplots_adjust(left=0.2, wspace=0.05, hspace=0.15)
    path = Path(path)
    save_figure(figure, path, dpi=90)
    return path
