"""`mupc info`: versions and devices, for bug reports and provenance."""

import json

from .._version import versions


def _run(args) -> int:
    import jax

    print(json.dumps({**versions(), "devices": [str(d) for d in jax.devices()]}, indent=2))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="print versions and devices")
    parser.set_defaults(run=_run)
