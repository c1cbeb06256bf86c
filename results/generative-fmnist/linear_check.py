"""The closed-form check of a linear PC decoder (`-H 0 --activation linear`): the decoder is
affine, f(z) = W z + b, so its best reconstruction of a test image is the least-squares
projection onto b + span(W). Prints, for a run folder: the test MSE per pixel of that exact
projection, PCA's with the same latent size, the principal angles between span(W) and PCA's
subspace, λ_max(WᵀW), and the largest step for which gradient descent on the activities is
stable: the dense map's input layer is a PC layer of its own (z_1 = z_0), so inference descends
E = ½‖z_1 − z_0‖² + ½‖x − W z_1 − b‖² over (z_0, z_1), whose Hessian [[I, −I], [−I, I + WᵀW]]
has largest eigenvalue (2 + λ + √(λ² + 4))/2 ≈ λ_max(WᵀW) + 1: steps below 2 over it converge.

Usage: python results/generative-fmnist/linear_check.py RUN [--out FILE.json]
"""

import argparse
import json

import jax.numpy as jnp
import numpy as np

from mupc._atomic import write_json_atomic
from mupc.experiments._family import load_family_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--out")
    args = parser.parse_args()
    config, data, model = load_family_run(args.run)
    k = config.latent
    bias = np.asarray(model(jnp.zeros((1, k))), np.float64)[0]
    weight = (np.asarray(model(jnp.eye(k)), np.float64) - bias).T  # (D, k)
    count = min(config.eval_examples, len(data.test_images))
    test = data.test_images[:count].astype(np.float64)
    z, *_ = np.linalg.lstsq(weight, (test - bias).T, rcond=None)
    exact = float(np.mean(((weight @ z).T + bias - test) ** 2))
    train = data.train_images.astype(np.float64)
    basis = np.linalg.eigh(train.T @ train / len(train))[1][:, ::-1][:, :k]
    pca = float(np.mean((test @ basis @ basis.T - test) ** 2))
    q = np.linalg.qr(weight)[0]
    cosines = np.clip(np.linalg.svd(basis.T @ q, compute_uv=False), 0.0, 1.0)
    angles = np.degrees(np.arccos(cosines))
    eig = np.linalg.eigvalsh(weight.T @ weight)
    eye = np.eye(k)
    hessian = np.block([[eye, -eye], [-eye, eye + weight.T @ weight]])
    hessian_max = float(np.linalg.eigvalsh(hessian).max())
    result = {
        "run": args.run,
        "eval_examples": count,
        "exact_projection_test_mse": exact,
        "pca_test_mse": pca,
        "exact_over_pca": exact / pca,
        "principal_angle_max_deg": float(angles.max()),
        "principal_angle_median_deg": float(np.median(angles)),
        "lambda_max_WtW": float(eig.max()),
        "lambda_min_WtW": float(eig.min()),
        "lambda_max_hessian": hessian_max,
        "stable_activity_lr_below": 2.0 / hessian_max,
    }
    print(json.dumps(result, indent=1))
    if args.out:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
