"""`mupc info`: versions and devices, for bug reports and provenance."""

import json


def versions() -> dict[str, str]:
    """Versions of mupc and its numerical stack."""
    import diffrax
    import equinox
    import jax
    import numpy
    import optax

    import mupc

    return {
        "mupc": mupc.__version__,
        "jax": jax.__version__,
        "equinox": equinox.__version__,
        "optax": optax.__version__,
        "diffrax": diffrax.__version__,
        "numpy": numpy.__version__,
    }


def _run(args) -> int:
    import jax

    print(json.dumps({**versions(), "devices": [str(d) for d in jax.devices()]}, indent=2))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="print versions and devices")
    parser.set_defaults(run=_run)
