"""The energy's distance from its minimum at the point where the weights update:
`python results/equilibrium-fmnist/distance.py RUNS CSV`.

For the network at initialisation and at the kept checkpoints of the equilibrium run (steps
100, 300 and the last one), on one fixed batch (the first 64 Fashion-MNIST training images),
each inference setting is run from the feedforward pass and measured where the weights would update:

- `energy`: the batch-mean energy $\\bar F$ there, and `energy_feedforward`, at the start
  (the loss);
- `grad_max`, `grad_mean`: the largest and the mean per-example activity-gradient norm
  $\\lVert\\nabla_{z^{(i)}} F_i\\rVert$ (zero at an interior minimum; ReLU's kinks keep it
  from vanishing, so the energy gap below is the measure that counts);
- `gap`: $\\bar F - \\bar F_{\\text{ref}}$, with $F_{\\text{ref},i}$ each example's lowest
  energy found by any setting or by two long reference solvers (2,000 Adam steps of 1e-3 on
  the errors; 1,000 gradient steps of 0.1 on the errors): an upper bound on the minimum, so
  `gap` is a lower bound on the distance from it; `gap_fraction` = gap / ($\\bar F_{\\text{ff}} -
  \\bar F_{\\text{ref}}$), the share of the possible descent not made.

Per network, also the output covariance $S = I + \\sum_l J_l J_l^\\top$ ($J_l = \\partial\\hat y /
\\partial z_l$ at the feedforward pass; the equilibrium energy of a linear network is
$\\tfrac12 r^\\top S^{-1} r$, docs/method.md): `s_mean`, the mean eigenvalue over the batch,
and `s_max`, the largest.

Resumable: rows of a network already in the CSV are kept; the CSV is rewritten atomically
after each network.
"""

import csv
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import mupc
from mupc._atomic import write_csv_atomic
from mupc._inference.base import gradient_norms
from mupc.experiments import RunConfig
from mupc.experiments._run_data import load_run_data

H, N, BATCH = 128, 128, 64
COLUMNS = (
    "network", "setting", "steps", "energy_feedforward", "energy", "reference", "gap",
    "gap_fraction", "grad_max", "grad_mean", "s_mean", "s_max", "seconds",
)  # fmt: skip


def settings():
    """The inference settings measured: the equilibrium schedule at its defaults, its warm
    start alone, ePC as trained (one step of 0.001) and μPC as published (T = H)."""
    warm = mupc.ErrorInference.gradient_descent(0.1, 20)
    return {
        "equilibrium (epc 0.1 T=20 + gd 0.1 R=50 tol=1e-3)": mupc.SequentialInference.equilibrium(
            warm, 0.1, 50, 1e-3
        ),
        "warm start alone (epc 0.1 T=20)": warm,
        "epc 0.001 T=1": mupc.ErrorInference.gradient_descent(0.001, 1),
        "mupc published (gd 0.5/64 T=H)": mupc.DiscreteInference.gradient_descent(0.5 / 64, H),
    }


REFERENCES = {
    "adam 1e-3 on the errors, 2000 steps": mupc.ErrorInference(optax.adam(1e-3), 2000),
    "gd 0.1 on the errors, 1000 steps": mupc.ErrorInference.gradient_descent(0.1, 1000),
}


def measure(network, inputs, targets, solver):
    """`(per-example energy, per-example activity-gradient norm, steps, seconds)` after
    `solver`'s inference from the feedforward pass."""
    trainer = mupc.PCTrainer(inference=solver)
    started = time.perf_counter()
    inferred = trainer.infer(network, inputs, targets)
    x, y = trainer.prepare_batch(network, inputs, targets)
    energy, _, _ = trainer.begin(network, x, y, jax.random.key(0))
    norms = gradient_norms(energy.gradient(inferred.states))
    values = np.asarray(inferred.energy, np.float64), np.asarray(norms, np.float64)
    return (*values, int(inferred.steps), time.perf_counter() - started)


def output_covariance_eigenvalues(network, inputs):
    """The eigenvalues of $S = I + J J^\\top$ per example, shape (B, C), with J = ∂ŷ/∂ε the
    Jacobian of the error-perturbed forward pass at ε = 0 (its block l is $J_l$)."""
    depth, width = network.config.depth, network.config.width

    def covariance(x):
        def output(errors):
            return network.feedforward(x[None], errors[:, None, :])[1][0]

        jacobian = jax.jacrev(output)(jnp.zeros((depth, width), x.dtype)).reshape(-1, depth * width)
        return jnp.linalg.eigvalsh(jnp.eye(jacobian.shape[0]) + jacobian @ jacobian.T)

    return np.asarray(jax.jit(jax.vmap(covariance))(jnp.asarray(inputs)), np.float64)


def networks(runs: Path, data):
    """`(name, network)`: at initialisation (the run's own, seed 0) and at each checkpoint."""
    config = RunConfig(dataset="fashion-mnist", depth=H, width=N, seed=0)
    key = jax.random.split(jax.random.key(config.seed))[0]  # as `mupc train` builds it
    shape = data.train_images.shape[1:]
    yield (
        "step 0",
        lambda: config.build_network(shape, data.num_classes, key=key, dtype=jnp.float32),
    )
    for kept in ("100", "300", "last"):
        path = runs / "checkpoints" / f"equilibrium-{kept}.npz"
        with np.load(path) as stored:
            step = int(stored["step"])
        yield f"step {step}", lambda path=path: mupc.load_network(path)


def main(runs: Path, out: Path) -> None:
    data = load_run_data(RunConfig(dataset="fashion-mnist", depth=H, width=N))
    inputs, targets = data.train_images[:BATCH], data.train_labels[:BATCH]
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    for name, build in networks(runs, data):
        if any(row["network"] == name for row in rows):
            continue
        network = build()
        measured = {label: measure(network, inputs, targets, s) for label, s in settings().items()}
        references = [measure(network, inputs, targets, s)[0] for s in REFERENCES.values()]
        reference = np.minimum.reduce([*references, *(m[0] for m in measured.values())])
        eigenvalues = output_covariance_eigenvalues(network, inputs)
        ff = measure(network, inputs, targets, mupc.DiscreteInference.gradient_descent(1.0, 0))[0]
        for label, (energy, norms, steps, seconds) in measured.items():
            gap = float(np.mean(energy - reference))
            rows.append({
                "network": name, "setting": label, "steps": steps,
                "energy_feedforward": float(np.mean(ff)), "energy": float(np.mean(energy)),
                "reference": float(np.mean(reference)), "gap": gap,
                "gap_fraction": gap / float(np.mean(ff - reference)),
                "grad_max": float(norms.max()), "grad_mean": float(norms.mean()),
                "s_mean": float(eigenvalues.mean()), "s_max": float(eigenvalues.max()),
                "seconds": round(seconds, 2),
            })  # fmt: skip
            print(
                f"{name:9s} {label:52s} F = {np.mean(energy):.5f} (ff {np.mean(ff):.5f}, ref "
                f"{np.mean(reference):.5f}) gap {gap:.2e} |∇F| max {norms.max():.2e} "
                f"S mean {eigenvalues.mean():.2f}",
                flush=True,
            )
        write_csv_atomic(out, COLUMNS, rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
