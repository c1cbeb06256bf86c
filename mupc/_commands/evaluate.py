"""`mupc evaluate`: test loss and accuracy of a saved checkpoint, from the file alone."""

import json

from ..experiments._config import DATASETS
from ._arguments import positive_int


def _run(args) -> int:
    import numpy as np

    from .._checkpoint import load_network, read_checkpoint_config, stored_precision
    from .._evaluation import evaluate
    from .._loss import resolve_loss
    from ..experiments._run_data import load_run_data

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
    with stored_precision(args.checkpoint):  # a float64 network needs 64-bit arrays
        network = load_network(args.checkpoint)
        data_dir = args.data_dir or (stored.get("data_dir") if not args.dataset else None)
        config = _data_config(network, dataset, data_dir)
        data = load_run_data(config)
        try:
            labels = data.test_labels[:1]
            if data.vocabulary is not None:  # next-character ids: one-hot for the check
                labels = np.eye(data.num_classes, dtype=np.float32)[labels]
            network.check_batch(data.test_images[:1], labels, check_finite=False)
        except ValueError as error:
            raise ValueError(
                f"The network in {args.checkpoint!r} does not take {dataset}: {error} Pass the "
                "--dataset it was trained on."
            ) from None
        result = evaluate(
            network, data.test_images, data.test_labels,
            loss=resolve_loss(loss), batch_size=args.batch_size,
        )  # fmt: skip
    with np.load(args.checkpoint) as arrays:
        step = int(arrays["step"])
    if args.json:
        print(json.dumps({
            "checkpoint": args.checkpoint, "step": step, "dataset": dataset, "loss": loss,
            "test_loss": result.loss, "test_accuracy": result.accuracy,
            "num_examples": result.num_examples,
            "test_loss_per_position": result.loss_per_position if result.positions > 1 else None,
        }))  # fmt: skip
        return 0
    stored_network = network.config.to_dict()
    if network.kind == "conv-resnet":
        shape = (
            f"{len(stored_network['channels'])} stages of {stored_network['blocks']} blocks, "
            f"channels {stored_network['channels']}"
        )
    elif network.kind == "transformer":
        width = stored_network["heads"] * stored_network["head_dim"]
        shape = f"transformer, {stored_network['blocks']} blocks, d = {width}"
    else:
        shape = f"H = {stored_network['depth']}, N = {stored_network['width']}"
    print(
        f"{args.checkpoint}: step {step}, {shape}, {stored_network['parameterisation']}, "
        f"{stored_network['activation']}"
    )
    if result.positions > 1:
        print(
            f"{dataset} test text ({result.num_examples:,} windows of {result.positions}): "
            f"{loss} {result.loss_per_position:.4f} per character, next-character accuracy "
            f"{100 * result.accuracy:.2f} %"
        )
        return 0
    print(
        f"{dataset} test set ({result.num_examples:,} examples): {loss} loss {result.loss:.6g}, "
        f"accuracy {100 * result.accuracy:.2f} %"
    )
    return 0


def _data_config(network, dataset: str, data_dir):
    """The `RunConfig` whose data (`load_run_data`) the stored `network` takes."""
    from ..experiments._config import RunConfig

    if network.kind == "conv-resnet":
        return RunConfig(dataset=dataset, data_dir=data_dir, network="conv")
    if network.kind == "transformer":
        stored = network.config
        shape = stored.input_shape
        return RunConfig(
            dataset=dataset, data_dir=data_dir, network="transformer",
            width=stored.width, head_dim=stored.head_dim,
            context=shape[0] if stored.tokens else RunConfig().context,
            patch_size=stored.patch_size,
        )  # fmt: skip
    return RunConfig(dataset=dataset, data_dir=data_dir)


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
