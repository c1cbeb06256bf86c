"""Array shape annotations used throughout the library (defined once, as in diffrax).

Dimension names: ``batch`` examples, ``input`` = D, ``width`` = N, ``output`` = C,
``depth`` = H hidden layers, ``hidden`` = H - 1 hidden-to-hidden weight matrices.
"""

from jaxtyping import Array, Float, PRNGKeyArray

Inputs = Float[Array, "batch input"]
Targets = Float[Array, "batch output"]
Outputs = Float[Array, "batch output"]
Activities = Float[Array, "depth batch width"]
"""Hidden activities $z_1, \\dots, z_H$ stacked along the first axis."""
InputWeights = Float[Array, "width input"]
HiddenWeights = Float[Array, "hidden width width"]
OutputWeights = Float[Array, "output width"]
Scalar = Float[Array, ""]
PerExample = Float[Array, " batch"]

__all__ = [
    "Activities",
    "HiddenWeights",
    "InputWeights",
    "Inputs",
    "OutputWeights",
    "Outputs",
    "PerExample",
    "PRNGKeyArray",
    "Scalar",
    "Targets",
]
