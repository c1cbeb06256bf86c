"""Why μPC + ePC decoders diverge: train a decoder as `mupc generative train decoder` does and,
every `--every` steps, measure the top eigenvalue λ of the Hessian of ePC's energy
F(z_0, ε) = ½Σ‖ε_l‖² + ½‖x − ŷ(z_0, ε)‖² over the latent and the errors, at the point where
inference starts (z_0 = 0, ε = 0; power iteration on Hessian-vector products, one batch of 64
training images). Gradient descent with the error step η is stable near that point only while
η·λ < 2. Writes one CSV row per measurement: step, λ, η·λ, and the training step's energy
before and after inference.

Usage: python results/generative-fmnist/epc_bound.py -H 8 --activity-lr 0.1 --lr 1e-3
[--activation tanh] [--steps 400] [--every 25] --out FILE.csv
"""

import argparse

import jax
import jax.numpy as jnp

from mupc._atomic import write_csv_atomic
from mupc._data import iterate_batches
from mupc._inference.error import _error_energy
from mupc.experiments._family import FamilyConfig, initial_state, load_family_data


def top_eigenvalue(trainer, network, images, iterations=40):
    """λ_max of ∇²F(z_0, ε) at the inference start (power iteration; traceable)."""
    energy, _, states = trainer.begin(network, None, images, jax.random.key(0))
    start = (states.input, jnp.zeros_like(states.hidden))
    gradient = jax.grad(lambda v: jnp.sum(_error_energy(energy, *v)))

    def product(t):
        return jax.jvp(gradient, (start,), (t,))[1]

    def norm(t):
        return jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree.leaves(t)))

    def iterate(_, t):
        h = product(t)
        return jax.tree.map(lambda a: a / norm(h), h)

    keys = jax.random.split(jax.random.key(1), 2)
    t = (jax.random.normal(keys[0], start[0].shape), jax.random.normal(keys[1], start[1].shape))
    t = jax.lax.fori_loop(0, iterations, iterate, t)
    pairs = zip(jax.tree.leaves(product(t)), jax.tree.leaves(t), strict=True)
    return sum(jnp.sum(a * b) for a, b in pairs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", type=int, required=True)
    parser.add_argument("--activity-lr", type=float, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    config = FamilyConfig(
        variant="decoder", depth=args.H, width=128, latent=64, activation=args.activation,
        parameterisation="mupc", prior_std=None, inference="epc", steps=20,
        activity_lr=args.activity_lr, lr=args.lr,
    )  # fmt: skip
    data = load_family_data(config.dataset)
    trainer, state = initial_state(config, data)
    probe = jnp.asarray(data.train_images[:64])
    measure = jax.jit(lambda network: top_eigenvalue(trainer, network, probe))
    rows, step = [], 0
    batches = iterate_batches(data.train_images, data.train_labels, 64, seed=0, epoch=0, start=0)
    for images, _ in batches:
        if step >= args.steps:
            break
        if step % args.every == 0:
            top = float(measure(state.network))
        state, metrics = trainer.step(state, None, images)
        if step % args.every == 0:
            rows.append({"step": step, "lambda": top, "eta_lambda": args.activity_lr * top,
                         "energy_before": float(metrics.energy_before),
                         "energy_after": float(metrics.energy_after)})  # fmt: skip
            print(", ".join(f"{k} {v:.4g}" for k, v in rows[-1].items()), flush=True)
        step += 1
    write_csv_atomic(args.out, list(rows[0]), rows)


if __name__ == "__main__":
    main()
