"""``em-service``: the one command line of the service.

Sub-commands: ``devstack`` (local Kafka), ``worker`` (streaming rules), ``api`` (HTTP API),
``demo`` (everything, with sample readings), ``schemas`` (write/check the JSON Schemas).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _worker(args: argparse.Namespace) -> int:
    from em_service import worker
    from em_service.limits import LimitsError
    from em_service.settings import get_settings

    try:
        worker.run(get_settings(), loglevel=args.loglevel)
    except LimitsError as exc:
        print(f"em-service worker: refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from em_service import logs
    from em_service.api import access_log
    from em_service.api.main import create_app
    from em_service.settings import get_settings

    settings = get_settings()
    logs.configure(settings, "INFO")
    access_log.install()
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level="info",
        log_config=None,  # uvicorn's loggers go to the root handler of em_service.logs
        timeout_graceful_shutdown=settings.api_shutdown_grace_s,
        proxy_headers=False,  # the client address: EM_API_TRUSTED_PROXIES (api/auth_guard.py)
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from em_service import demo

    return demo.main(stop_all=args.stop)


def _conditions(args: argparse.Namespace) -> int:
    from pathlib import Path

    from em_service.conditions import publish
    from em_service.settings import get_settings

    return publish.main(get_settings(), Path(args.path), dry_run=args.dry_run)


def _schemas(args: argparse.Namespace) -> int:
    from em_service.contracts import schema_export

    return schema_export.main(["--write" if args.write else "--check"])


def _archiver(args: argparse.Namespace) -> int:
    from em_service import archiver
    from em_service.settings import get_settings

    archiver.run(get_settings(), loglevel=args.loglevel)
    return 0


def _store(args: argparse.Namespace) -> int:
    """db upgrade | tokens create/list/renew/expire/revoke | caseload assign | retention | audit verify."""
    from em_service.settings import get_settings
    from em_service.store import commands as c

    settings = get_settings()
    match args.command, getattr(args, "action", None):
        case "db", "upgrade":
            return c.db_upgrade(settings, args.revision)
        case "tokens", "create":
            return c.tokens_create(
                settings,
                role=args.role,
                name=args.name,
                caseload=args.caseload,
                ttl_days=args.ttl_days,
            )
        case "tokens", "revoke":
            return c.tokens_revoke(settings, name=args.name, token_id=args.id)
        case "tokens", "renew":
            return c.tokens_renew(settings, token_id=args.id, ttl_days=args.ttl_days)
        case "tokens", "expire":
            return c.tokens_expire(settings, token_id=args.id)
        case "tokens", "list":
            return c.tokens_list(settings, name=args.name)
        case "caseload", "assign":
            return c.caseload_assign(
                settings, name=args.name, offender_ids=args.offenders, remove=args.remove
            )
        case "retention", _:
            return c.run_retention(settings, older_than_days=args.older_than)
        case "audit", "verify":
            return c.audit_verify(settings)
        case "audit", "checkpoint":
            return c.audit_checkpoint(settings)
    raise AssertionError(f"unhandled command {args.command} {args.action}")


def _add_store_parsers(sub: argparse._SubParsersAction) -> None:
    archiver = sub.add_parser("archiver", help="archive readings, alerts, conditions to the DB")
    archiver.add_argument("--loglevel", default="INFO")
    archiver.set_defaults(func=_archiver)
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    upgrade = db.add_parser("upgrade", help="apply pending migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(func=_store)
    tok = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="action", required=True)
    create = tok.add_parser("create", help="create a token (printed once, stored hashed)")
    create.add_argument(
        "--role", required=True, choices=["officer", "investigator", "ops", "admin", "force-feed"]
    )
    create.add_argument("--name", required=True, help="principal name (created if new)")
    create.add_argument("--caseload", nargs="*", default=[], metavar="OFFENDER")
    ttl = "lifetime in days (default EM_TOKEN_TTL_DAYS, at most EM_TOKEN_MAX_TTL_DAYS)"
    create.add_argument("--ttl-days", type=float, default=None, metavar="DAYS", help=ttl)
    create.set_defaults(func=_store)
    listing = tok.add_parser("list", help="list tokens: id, principal, role, expiry, status")
    listing.add_argument("--name", default=None, help="only this principal's")
    listing.set_defaults(func=_store)
    renew = tok.add_parser("renew", help="let one token (live or expired) work DAYS from now")
    renew.add_argument("--id", type=int, required=True, help="token id (tokens list)")
    renew.add_argument("--ttl-days", type=float, default=None, metavar="DAYS", help=ttl)
    renew.set_defaults(func=_store)
    expire = tok.add_parser("expire", help="make one token expire now (renewable later)")
    expire.add_argument("--id", type=int, required=True, help="token id (tokens list)")
    expire.set_defaults(func=_store)
    revoke = tok.add_parser("revoke", help="revoke one token (--id) or every token of --name")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="revoke every token of this principal")
    which.add_argument("--id", type=int, help="revoke this one token (tokens list)")
    revoke.set_defaults(func=_store)
    case = sub.add_parser("caseload", help="caseloads").add_subparsers(dest="action", required=True)
    assign = case.add_parser("assign", help="put offenders on (or --remove from) a caseload")
    assign.add_argument("--name", required=True, help="principal name")
    assign.add_argument("offenders", nargs="+", metavar="OFFENDER")
    assign.add_argument("--remove", action="store_true")
    assign.set_defaults(func=_store)
    ret = sub.add_parser(
        "retention",
        help="apply retention (trail, alert locations, scenes; month partitions); print counts",
    )
    ret.add_argument("--older-than", type=float, default=None, metavar="DAYS")
    ret.set_defaults(func=_store)
    aud = sub.add_parser("audit", help="audit log").add_subparsers(dest="action", required=True)
    aud.add_parser(
        "verify", help="verify the hash chain and its signed checkpoints (exit 1 if broken)"
    ).set_defaults(func=_store)
    aud.add_parser(
        "checkpoint", help="write a signed checkpoint of the audit head outside the database"
    ).set_defaults(func=_store)


def _scenes(args: argparse.Namespace) -> int:
    """scenes import FILE.csv | evidence verify FILE (em_service/scenes/commands.py)."""
    from pathlib import Path

    from em_service.scenes import commands as c
    from em_service.settings import get_settings

    if args.command == "evidence":
        return c.evidence_verify(Path(args.path), expect_head=args.expect_head)
    if args.action != "import" or args.format == "crime-batch":
        return _batches(args)
    return c.scenes_import(
        get_settings(),
        Path(args.path),
        radius_m=args.radius_m,
        all_types=args.all_types,
        publish=not args.no_publish,
    )


def _batches(args: argparse.Namespace) -> int:
    """Crime batches (em_service/scenes/batches/commands.py)."""
    from pathlib import Path

    from em_service.scenes.batches import commands as b
    from em_service.settings import get_settings

    s = get_settings()
    if args.action == "import":
        return b.batch_import(
            s, Path(args.path), check=args.check, as_json=args.json, publish_=not args.no_publish
        )
    if args.action == "batch-rerun":
        return b.batch_rerun(s, args.batch_id, trigger=args.trigger)
    if args.action == "batch-report":
        out = Path(args.output) if args.output else None
        return b.batch_report(s, args.batch_id, fmt=args.format, output=out)
    return b.watch_batches(s, Path(args.folder) if args.folder else None, once=args.once)


def _add_batch_parsers(scenes: argparse._SubParsersAction) -> None:
    rerun = scenes.add_parser("batch-rerun", help="match a stored crime batch again (a new run)")
    rerun.add_argument("batch_id")
    rerun.add_argument("--trigger", choices=("rerun", "late-data"), default="rerun")
    rerun.set_defaults(func=_scenes)
    rep = scenes.add_parser("batch-report", help="a crime batch's proximity report")
    rep.add_argument("batch_id")
    rep.add_argument("--format", choices=("json", "csv", "geojson"), default="json")
    rep.add_argument("-o", "--output", default=None, help="file (default: stdout)")
    rep.set_defaults(func=_scenes)
    watch = scenes.add_parser("watch-batches", help="import crime batches dropped in FOLDER")
    watch.add_argument("folder", metavar="FOLDER", nargs="?", help="default EM_BATCHES_DROP_FOLDER")
    watch.add_argument("--once", action="store_true", help="one pass, then exit")
    watch.set_defaults(func=_scenes)


def _add_scene_parsers(sub: argparse._SubParsersAction) -> None:
    scenes = sub.add_parser("scenes", help="crime scenes").add_subparsers(
        dest="action", required=True
    )
    imp = scenes.add_parser(
        "import", help="import FILE.csv (data.police.uk street-level, or explicit windows)"
    )
    imp.add_argument("path", metavar="FILE.csv")
    imp.add_argument("--radius-m", type=float, default=None, help="search radius (default 100)")
    imp.add_argument("--all-types", action="store_true", help="also non-acquisitive crime")
    imp.add_argument("--no-publish", action="store_true", help="store only (no matching)")
    imp.add_argument(
        "--format",
        choices=("auto", "crime-batch"),
        default="auto",
        help="crime-batch: MoJ 13 columns",
    )
    imp.add_argument(
        "--check", action="store_true", help="crime-batch: validate only, import nothing"
    )
    imp.add_argument(
        "--json", action="store_true", help="crime-batch: the report as one JSON object"
    )
    imp.set_defaults(func=_scenes)
    _add_batch_parsers(scenes)
    ev = sub.add_parser("evidence", help="exported evidence").add_subparsers(
        dest="action", required=True
    )
    ver = ev.add_parser(
        "verify", help="re-verify an evidence export or pack (.zip) (exit 1 if altered)"
    )
    ver.add_argument("path", metavar="FILE")
    ver.add_argument("--expect-head", default=None, help="head hash from the audit log")
    ver.set_defaults(func=_scenes)


def _dlq(args: argparse.Namespace) -> int:
    """dlq show | replay (em_service/deadletters.py)."""
    from em_service import deadletters
    from em_service.settings import get_settings

    if args.action == "show":
        return deadletters.main_show(get_settings(), args.reason, args.limit, victims=args.victims)
    return deadletters.main_replay(
        get_settings(), args.reason, args.dry_run, args.batch, victims=args.victims
    )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _add_dlq_parsers(sub: argparse._SubParsersAction) -> None:
    from em_service.deadletters import REASONS

    dlq = sub.add_parser("dlq", help="dead letters: show | replay").add_subparsers(
        dest="action", required=True
    )
    show = dlq.add_parser("show", help="dead letters by reason, and the newest ones in full")
    show.add_argument("--reason", choices=REASONS, default=None)
    show.add_argument("--limit", type=int, default=20, help="letters shown in full (newest)")
    show.add_argument(
        "--victims",
        action="store_true",
        help="protected victims' dead letters (metadata only: their bytes are never shown)",
    )
    show.set_defaults(func=_dlq)
    replay = dlq.add_parser(
        "replay", help="re-drive dead letters of one reason to the readings topic, exactly once"
    )
    replay.add_argument("--reason", choices=REASONS, required=True)
    replay.add_argument(
        "--victims", action="store_true", help="victims' dead letters, to the victim topic"
    )
    replay.add_argument("--dry-run", action="store_true", help="count only; send nothing")
    replay.add_argument(
        "--batch", type=_positive, default=500, help="dead letters per transaction (default 500)"
    )
    replay.set_defaults(func=_dlq)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (also used to document the commands)."""
    parser = argparse.ArgumentParser(prog="em-service", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "devstack",
        help="local single-node Kafka: up | down | status | topics",
        add_help=False,
    )
    sub.add_parser(
        "evaluate",
        help="score alerts against a simulator ground truth (evaluate --help)",
        add_help=False,
    )
    sub.add_parser(
        "simulate",
        help="simulated cohort with ground truth, to files or Kafka (simulate --help)",
        add_help=False,
    )
    worker = sub.add_parser(
        "worker", help="run the streaming worker (rules over Kafka, exactly once)"
    )
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=_worker)

    api = sub.add_parser("api", help="run the HTTP API (FastAPI, OpenAPI docs at /docs)")
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None)
    api.set_defaults(func=_api)

    demo = sub.add_parser("demo", help="start Kafka and the worker, send sample readings, report")
    demo.add_argument("--stop", action="store_true", help="stop what the demo started")
    demo.set_defaults(func=_demo)

    conditions = sub.add_parser("conditions", help="per-offender conditions")
    conditions_sub = conditions.add_subparsers(dest="action", required=True)
    load = conditions_sub.add_parser(
        "load", help="validate FILE.json or every *.json in DIR and publish to the conditions topic"
    )
    load.add_argument("path", help="a JSON file (one object or a list) or a directory")
    load.add_argument("--dry-run", action="store_true", help="validate only; publish nothing")
    load.set_defaults(func=_conditions)

    schemas = sub.add_parser("schemas", help="check (default) or --write schemas/*.schema.json")
    schemas.add_argument("--write", action="store_true")
    schemas.set_defaults(func=_schemas)
    _add_store_parsers(sub)
    _add_scene_parsers(sub)
    _add_dlq_parsers(sub)
    return parser


def configuration_problems() -> list[str]:
    """Return what is wrong with the settings (environment) and the Kafka security files they
    name, as one line each (empty: fine)."""
    from pydantic import ValidationError

    from em_service.kafka_io import KafkaSecurityError, security_options
    from em_service.settings import get_settings

    try:
        security_options(get_settings())
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            field = "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"EM_{field}: {message}" if field else message)
        return problems
    except KafkaSecurityError as exc:
        return [str(exc)]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``em-service`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.umask(0o077)  # every file the service creates (state dir, logs, DB, Kafka data) is private
    if argv and argv[0] not in ("schemas", "-h", "--help"):
        problems = configuration_problems()
        if problems:  # a clear message at start, never a stack trace later
            for problem in problems:
                print(f"em-service: configuration error: {problem}", file=sys.stderr)
            return 2
    from aiokafka.errors import KafkaError

    try:
        return _dispatch(argv)
    except KafkaError as exc:  # refused login, untrusted certificate, broker down: no traceback
        from em_service.settings import get_settings

        error = str(exc) if type(exc).__name__ in str(exc) else f"{type(exc).__name__}: {exc}"
        print(
            f"em-service: cannot use Kafka at {get_settings().kafka_bootstrap}: {error} "
            "(check EM_KAFKA_BOOTSTRAP, EM_KAFKA_SECURITY_PROTOCOL and the EM_KAFKA_SASL_* / "
            "EM_KAFKA_SSL_* settings: SECURITY.md)",
            file=sys.stderr,
        )
        return 1


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "devstack":
        from em_service.devstack import main as devstack_main

        return devstack_main(argv[1:])
    if argv and argv[0] == "evaluate":
        from em_service.evaluate import main as evaluate_main

        return evaluate_main(argv[1:])
    if argv and argv[0] == "simulate":
        from simulator.cli import main as simulate_main

        return simulate_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
