"""Which ends of the network hold data: `mupc.Clamp`.

A PC network's activities run from an input end $z_0$ through the hidden layers $z_1, \\dots,
z_H$ to an output end $z_L$ (predicted by the readout, $\\hat y = r(z_H)$). Each end is either
**clamped** to data or **free**, an activity that inference moves like the hidden ones:

| pattern | input end $z_0$ | output end $z_L$ | e.g. |
|---|---|---|---|
| `Clamp()` | data (image) | data (label) | discriminative training |
| `Clamp(output="free")` | data | free | classifying by inference (= the feedforward pass) |
| `Clamp(input="free")` | free latent | data (image) | a decoder; classifying a generative network |
| `Clamp()` on (label, image) | data (label) | data (image) | supervised generative training |

Which data sits at which end (images at the input: discriminative; labels or a latent at the
input and images at the output: generative) is the caller's choice of `inputs` and `targets`.
"""

from typing import Literal, get_args

import equinox as eqx

End = Literal["clamped", "free"]
"""An end of the network: held at data (`"clamped"`) or moved by inference (`"free"`)."""

Direction = Literal["discriminative", "generative"]
"""Which end holds the images: the input end (`"discriminative"`: image → label) or the output
end (`"generative"`: label or latent → image)."""


def check_direction(direction: object) -> Direction:
    """`direction` itself if it is `"discriminative"` or `"generative"`.

    **Raises:** `ValueError` naming the bad value."""
    if direction not in get_args(Direction):
        raise ValueError(
            f"`direction` must be one of {list(get_args(Direction))}, got {direction!r}."
        )
    return direction  # type: ignore[return-value]


class Clamp(eqx.Module):
    """Which ends of the activities are clamped to data and which are free (module docstring).

    **Arguments:**

    - `input`: the input end $z_0$: `"clamped"` (default: the `inputs` of the batch) or
      `"free"` (a latent that inference moves; its start comes from the activity
      initialisation, its energy from an optional `mupc.GaussianPrior`).
    - `output`: the output end $z_L$: `"clamped"` (default: the `targets`) or `"free"` (an
      activity that starts at the prediction $\\hat y$; with a Gaussian output term it stays
      there unless something else moves $z_H$).

    **Raises:** `ValueError` for another value, or for both ends free (nothing would hold data).
    """

    input: End = "clamped"
    output: End = "clamped"

    def __check_init__(self):
        for name in ("input", "output"):
            value = getattr(self, name)
            if value not in get_args(End):
                raise ValueError(f"`Clamp({name}=...)` must be 'clamped' or 'free', got {value!r}.")
        if self.input == "free" and self.output == "free":
            raise ValueError(
                "Clamp(input='free', output='free') holds no data: clamp at least one end."
            )

    @property
    def free_input(self) -> bool:
        """Whether $z_0$ is free."""
        return self.input == "free"

    @property
    def free_output(self) -> bool:
        """Whether $z_L$ is free."""
        return self.output == "free"
