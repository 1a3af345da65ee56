"""``em-service``: the one command line of the service.

Sub-commands: ``devstack`` (local Kafka), ``worker`` (streaming rules), ``api`` (HTTP API),
``demo`` (everything, with sample readings), ``schemas`` (write/check the JSON Schemas).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _worker(args: argparse.Namespace) -> int:
    from em_service import worker
    from em_service.settings import get_settings

    worker.run(get_settings(), loglevel=args.loglevel)
    return 0


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from em_service.api.main import create_app
    from em_service.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level="info",
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from em_service import demo

    return demo.main(stop_all=args.stop)


def _schemas(args: argparse.Namespace) -> int:
    from em_service.contracts import schema_export

    return schema_export.main(["--write" if args.write else "--check"])


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (also used to document the commands)."""
    parser = argparse.ArgumentParser(prog="em-service", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "devstack",
        help="local single-node Kafka: up | down | status | topics",
        add_help=False,
    )
    worker = sub.add_parser("worker", help="run the streaming worker (Faust) on the broker")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=_worker)

    api = sub.add_parser("api", help="run the HTTP API (FastAPI, OpenAPI docs at /docs)")
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None)
    api.set_defaults(func=_api)

    demo = sub.add_parser("demo", help="start Kafka and the worker, send sample readings, report")
    demo.add_argument("--stop", action="store_true", help="stop what the demo started")
    demo.set_defaults(func=_demo)

    schemas = sub.add_parser("schemas", help="check (default) or --write schemas/*.schema.json")
    schemas.add_argument("--write", action="store_true")
    schemas.set_defaults(func=_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``em-service`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "devstack":
        from em_service.devstack import main as devstack_main

        return devstack_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
