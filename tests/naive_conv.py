"""A deliberately naive conv ResNet PCN (docs/method.md, "Convolutional ResNets"): Python loops
over stages and blocks, one
`lax.conv` per layer with XLA's own autodiff, pooling written as a reshape and mean, and the
multipliers typed in from docs/method.md. An independent oracle for `mupc.ConvResNet`."""

import math

import jax
import jax.numpy as jnp

GAIN = {"linear": 1.0, "relu": math.sqrt(2.0), "tanh": 5.0 / 3.0}
PHI = {"linear": lambda v: v, "relu": lambda v: jnp.maximum(v, 0.0), "tanh": jnp.tanh}


def conv(images, kernel):
    return jax.lax.conv_general_dilated(
        images, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def pool(images):
    b, h, w, c = images.shape
    h2, w2 = h // 2, w // 2
    cropped = images[:, : 2 * h2, : 2 * w2, :]
    return cropped.reshape(b, h2, 2, w2, 2, c).mean(axis=(2, 4))


def spec_multipliers(param, image_channels, channels, kernel, activation):
    """([stage convolution multipliers], readout multiplier) of docs/method.md: g/√(C_in k²) with
    gain 1 on the raw image, 1/c for the μPC readout, 1/√c for NTP, all 1 under sp."""
    if param == "sp":
        return [1.0] * len(channels), 1.0
    g = GAIN[activation]
    fan_ins = [image_channels * kernel**2] + [c * kernel**2 for c in channels[:-1]]
    stage = [1.0 / math.sqrt(fan_ins[0])] + [g / math.sqrt(f) for f in fan_ins[1:]]
    readout = 1.0 / channels[-1] if param == "mupc" else 1.0 / math.sqrt(channels[-1])
    return stage, readout


def residual_multiplier(param, channels_s, blocks_total, kernel, activation):
    """g/√(c k²)/√L_res with L_res the residual blocks of the whole network (1 under sp)."""
    if param == "sp":
        return 1.0
    return GAIN[activation] / math.sqrt(channels_s * kernel**2) / math.sqrt(blocks_total)


def layers(network):
    """[(kind, stage, kernel)] bottom to top, and the readout weights."""
    out = []
    for stage, (first, blocks) in enumerate(
        zip(network.stage_weights, network.block_weights, strict=True)
    ):
        out.append(("stage", stage, first))
        out.extend(("block", stage, blocks[i]) for i in range(blocks.shape[0]))
    return out, network.output_weights


def forward(network, x, errors=None):
    """The list of activities (each (B, h, w, c)) and the outputs, one layer at a time."""
    cfg = network.config
    stage_mults, readout = spec_multipliers(
        cfg.parameterisation, cfg.input_shape[2], cfg.channels, cfg.kernel_size, cfg.activation
    )
    phi = PHI[cfg.activation]
    total = len(cfg.channels) * cfg.blocks
    layer_list, w_out = layers(network)
    acts, z = [], None
    for index, (kind, stage, kernel) in enumerate(layer_list):
        if kind == "stage":
            source = x if stage == 0 else pool(phi(z))
            z = stage_mults[stage] * conv(source, kernel)
        else:
            a = residual_multiplier(
                cfg.parameterisation, cfg.channels[stage], total, cfg.kernel_size, cfg.activation
            )
            z = z + a * conv(phi(z), kernel)
        if errors is not None:
            z = z + errors[index]
        acts.append(z)
    outputs = readout * (phi(z).mean(axis=(1, 2)) @ w_out.T)
    return acts, outputs


def energies(network, acts, x, y):
    """Per-example PC energy with MSE output, errors z_l − μ_l(z_{l−1}) layer by layer."""
    cfg = network.config
    stage_mults, readout = spec_multipliers(
        cfg.parameterisation, cfg.input_shape[2], cfg.channels, cfg.kernel_size, cfg.activation
    )
    phi = PHI[cfg.activation]
    total = len(cfg.channels) * cfg.blocks
    layer_list, w_out = layers(network)
    energy = 0.0
    previous = None
    for (kind, stage, kernel), z in zip(layer_list, acts, strict=True):
        if kind == "stage":
            source = x if stage == 0 else pool(phi(previous))
            prediction = stage_mults[stage] * conv(source, kernel)
        else:
            a = residual_multiplier(
                cfg.parameterisation, cfg.channels[stage], total, cfg.kernel_size, cfg.activation
            )
            prediction = previous + a * conv(phi(previous), kernel)
        energy = energy + 0.5 * jnp.sum((z - prediction) ** 2, axis=(1, 2, 3))
        previous = z
    outputs = readout * (phi(previous).mean(axis=(1, 2)) @ w_out.T)
    return energy + 0.5 * jnp.sum((y - outputs) ** 2, axis=1)


def stack(network, flat):
    """A per-layer list → the library's tuple of per-stage stacks."""
    n = network.config.blocks + 1
    return tuple(jnp.stack(flat[s * n : (s + 1) * n]) for s in range(len(network.config.channels)))


def unstack(activities):
    return [stage[i] for stage in activities for i in range(stage.shape[0])]
