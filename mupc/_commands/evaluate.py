"""`mupc evaluate`: test loss and accuracy of a saved checkpoint, from the file alone."""

import json

from ..experiments._config import DATASETS
from ._arguments import positive_int


def _run(args) -> int:
    import jax
    import numpy as np

    from .._checkpoint import load_network, read_checkpoint_config
    from .._evaluation import evaluate
    from .._loss import resolve_loss
    from ..experiments._run import RunConfig, load_run_data

    stored_config = read_checkpoint_config(args.checkpoint)
    # Checkpoints written by `mupc train` carry the run's settings; others carry none.
    stored = stored_config.get("metadata", {}).get("run") or {}
    dataset = args.dataset or stored.get("dataset")
    if dataset is None:
        raise ValueError(
            f"{args.checkpoint!r} does not record its dataset; pass --dataset, one of "
            f"{list(DATASETS)}."
        )
    loss = args.loss or stored.get("loss", "mse")
    x64 = jax.config.read("jax_enable_x64")
    if stored_config["dtype"] == "float64":
        jax.config.update("jax_enable_x64", True)  # a float64 network needs 64-bit arrays
    try:
        network = load_network(args.checkpoint)
        data_dir = args.data_dir or (stored.get("data_dir") if not args.dataset else None)
        data = load_run_data(RunConfig(dataset=dataset, data_dir=data_dir))
        if data.input_dim != network.config.input_dim:
            raise ValueError(
                f"The network in {args.checkpoint!r} takes {network.config.input_dim} inputs but "
                f"{dataset} has {data.input_dim}; pass the --dataset it was trained on."
            )
        result = evaluate(
            network, data.test_images, data.test_labels,
            loss=resolve_loss(loss), batch_size=args.batch_size,
        )  # fmt: skip
    finally:
        jax.config.update("jax_enable_x64", x64)
    with np.load(args.checkpoint) as arrays:
        step = int(arrays["step"])
    if args.json:
        print(json.dumps({
            "checkpoint": args.checkpoint, "step": step, "dataset": dataset, "loss": loss,
            "test_loss": result.loss, "test_accuracy": result.accuracy,
            "num_examples": result.num_examples,
        }))  # fmt: skip
        return 0
    config = network.config
    print(
        f"{args.checkpoint}: step {step}, H = {config.depth}, N = {config.width}, "
        f"{config.parameterisation}, {config.activation}"
    )
    print(
        f"{dataset} test set ({result.num_examples:,} examples): {loss} loss {result.loss:.6g}, "
        f"accuracy {100 * result.accuracy:.2f} %"
    )
    return 0


def register(subparsers) -> None:

    parser = subparsers.add_parser(
        "evaluate",
        help="test loss and accuracy of a saved checkpoint",
        description="Rebuild the network stored in CHECKPOINT (mupc.load_network) and print its "
        "feedforward test loss and accuracy (mupc.evaluate). Example: "
        "mupc evaluate runs/h128/checkpoint.npz --dataset mnist",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz checkpoint")
    parser.add_argument("--dataset", choices=DATASETS,
                        help="test set to use (default: the dataset the run recorded)")  # fmt: skip
    parser.add_argument("--data-dir", help="where dataset files are looked for and downloaded")
    parser.add_argument("--loss", choices=("mse", "cross-entropy"),
                        help="loss to report (default: the run's, else mse)")  # fmt: skip
    parser.add_argument("--batch-size", type=positive_int, default=1000,
                        help="examples per compiled batch (default 1000)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON line instead")
    parser.set_defaults(run=_run)
