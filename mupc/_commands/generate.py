"""`mupc generate`: sample text from a language-model checkpoint (`mupc.generate`)."""

import sys

from ._arguments import non_negative_int


def _run(args) -> int:
    import jax

    from .._checkpoint import load_network, read_checkpoint_config, stored_precision
    from .._generate import generate

    metadata = read_checkpoint_config(args.checkpoint).get("metadata", {})
    vocabulary = metadata.get("vocabulary")
    if vocabulary is None:
        raise ValueError(
            f"{args.checkpoint!r} records no vocabulary: it is not a language model trained by "
            "`mupc train` on a text corpus (--dataset austen, ...)."
        )
    prompt = args.prompt if args.prompt is not None else "\n"
    index = {c: i for i, c in enumerate(vocabulary)}
    unknown = sorted(set(prompt) - set(index))
    if unknown:
        raise ValueError(f"--prompt holds characters {unknown!r} outside the vocabulary.")
    if not prompt:
        raise ValueError("--prompt must hold at least one character.")
    if not (0 <= args.temperature < float("inf")):
        raise ValueError(f"--temperature must be finite and ≥ 0, got {args.temperature!r}.")
    with stored_precision(args.checkpoint):
        network = load_network(args.checkpoint)
        ids = generate(
            network, [index[c] for c in prompt], args.length,
            temperature=args.temperature, key=jax.random.key(args.seed),
        )  # fmt: skip
    text = "".join(vocabulary[int(i)] for i in ids)
    sys.stdout.write(("" if args.no_prompt else prompt) + text + "\n")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="sample text from a language-model checkpoint",
        description="Continue --prompt with --length characters drawn from the transformer "
        "language model in CHECKPOINT (trained by `mupc train --network transformer` on a text "
        "corpus), at --temperature (0: the most likely character each time). Example: "
        "mupc generate runs/lm/checkpoint.npz --prompt 'It is a truth' --length 300",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .npz checkpoint")
    parser.add_argument("--prompt", help="the text to continue (default: a newline)")
    parser.add_argument("--length", type=non_negative_int, default=200,
                        help="characters to draw (default 200)")  # fmt: skip
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="softmax temperature (default 0.8; 0 = greedy)")  # fmt: skip
    parser.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed")
    parser.add_argument("--no-prompt", action="store_true", help="print only the drawn text")
    parser.set_defaults(run=_run)
