"""``python -m em_service.devstack up|down|status|topics`` (also behind ``em-service devstack``)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from em_service.devstack.kafka import DevstackError, down, ensure_topics, plaintext, status, up
from em_service.settings import Settings, get_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run one devstack command; return the process exit code (status: 0 answering, 1 not)."""
    parser = argparse.ArgumentParser(
        prog="em-service devstack",
        description="Local single-node Apache Kafka and PostgreSQL (no Docker).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser(
        "up", help="fetch jars if needed, start Kafka, create the service topics"
    )
    up_parser.add_argument(
        "--secure",
        action="store_true",
        help="also a SASL_SSL listener on EM_KAFKA_SECURE_PORT (SCRAM users, ACLs, private CA)",
    )
    sub.add_parser("down", help="stop the Kafka that `up` started")
    sub.add_parser("status", help="say whether Kafka answers, with pid and version")
    sub.add_parser("topics", help="create the missing service topics")
    pg = sub.add_parser("postgres", help="local PostgreSQL + PostGIS (Debian packages)")
    pg.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    try:
        if args.command == "postgres":
            return _postgres(settings, args.action)
        if args.command == "up":
            began = time.monotonic()
            info = up(settings, secure=args.secure)
            created = ensure_topics(plaintext(settings), info.bootstrap)
            print(f"{info.note}; bootstrap {info.bootstrap} ({time.monotonic() - began:.1f} s)")
            print(f"topics created: {', '.join(created) or 'none (all present)'}")
            print(f"broker log: {info.log_file}")
            if info.secure_dir:
                print(
                    f"SASL_SSL {info.secure_bootstrap}: CA, passwords and one env file per user "
                    f"in {info.secure_dir} (e.g. `set -a; . {info.secure_dir}/worker.env`)"
                )
        elif args.command == "down":
            print("stopped" if down(settings) else "no devstack broker was running")
        elif args.command == "status":
            info = status(settings)
            state = "answering" if info.answering else "not answering"
            print(f"{info.bootstrap}: {state}; {info.note}; version {info.version or 'unknown'}")
            return 0 if info.answering else 1
        else:
            created = ensure_topics(settings)
            print(f"topics created: {', '.join(created) or 'none (all present)'}")
    except DevstackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _postgres(settings: Settings, action: str) -> int:
    from em_service.devstack import postgres

    root = settings.resolved_state_dir() / "postgres"
    port = settings.postgres_port
    if action == "up":
        began = time.monotonic()
        info = postgres.up(root, port)
        note = "started" if info.started else "already running"
        print(f"PostgreSQL {note} on 127.0.0.1:{port} ({time.monotonic() - began:.1f} s)")
        print(f"URLs (service and migration roles): {info.paths.env}")
        print(f"server log: {info.paths.log}")
    elif action == "down":
        print("stopped" if postgres.down(root) else "no devstack PostgreSQL was running")
    else:
        info = postgres.status(root, port)
        state = "answering" if info.answering and info.pid else "not running"
        print(f"127.0.0.1:{port}: {state}; pid {info.pid}; URLs in {info.paths.env}")
        return 0 if info.answering and info.pid else 1
    return 0
