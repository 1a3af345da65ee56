"""What the store's CLI sub-commands do (``em-service db|tokens|caseload|retention|audit``).

Each function takes the settings and plain arguments, prints a short result and returns the
process exit code; ``em_service.cli`` only parses arguments and calls these.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Sequence
from datetime import timedelta

from em_service.clock import wall_now
from em_service.settings import Settings
from em_service.store import audit, checkpoints, migrate, open_store, retention, tokens


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _ready_store(settings: Settings):
    store = open_store(settings)
    if settings.db_auto_upgrade:
        migrate.upgrade(store)
    return store


def db_upgrade(settings: Settings, revision: str = "head") -> int:
    """Apply pending migrations; print the revision reached."""
    store = open_store(settings)
    try:
        print(f"database at revision {migrate.upgrade(store, revision)}")
    finally:
        store.dispose()
    return 0


def tokens_create(settings: Settings, *, role: str, name: str, caseload: Sequence[str]) -> int:
    """Create a token for ``name`` (creating the principal) and print it once."""
    store = _ready_store(settings)
    try:
        with store.write() as session:
            token = tokens.create_token(
                session, name=name, role=role, caseload=caseload, actor=_actor()
            )
    except tokens.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    print(token)
    print(
        f"(token for {name!r}, role {role}: shown once, only its hash is stored)", file=sys.stderr
    )
    return 0


def tokens_revoke(settings: Settings, *, name: str) -> int:
    """Revoke every token of ``name``."""
    store = _ready_store(settings)
    try:
        with store.write() as session:
            n = tokens.revoke_tokens(session, name=name, actor=_actor())
    except tokens.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    print(f"revoked {n} token(s) of {name!r}")
    return 0


def caseload_assign(
    settings: Settings, *, name: str, offender_ids: Sequence[str], remove: bool = False
) -> int:
    """Add (or remove) offenders on ``name``'s caseload; print the caseload."""
    store = _ready_store(settings)
    try:
        with store.write() as session:
            current = tokens.assign_caseload(
                session, name=name, offender_ids=offender_ids, remove=remove, actor=_actor()
            )
    except tokens.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    print(f"caseload of {name!r}: {', '.join(current) or '(empty)'}")
    return 0


def run_retention(settings: Settings, *, older_than_days: float | None) -> int:
    """Apply the retention table (``store/retention.py``): trail rows and alert locations older
    than the given days (default: the configured retention), scenes by their own setting."""
    from em_service.scenes.batches.config import get_batch_settings

    days = settings.trail_retention_days if older_than_days is None else older_than_days
    if days <= 0:
        print("error: --older-than must be positive", file=sys.stderr)
        return 2
    periods = retention.periods(settings)
    if older_than_days is not None:
        periods["older_than"] = timedelta(days=days)
    store = _ready_store(settings)
    try:
        report = retention.purge_trail(
            store, **periods, actor=_actor(), drop_folder=get_batch_settings().drop_folder
        )
    finally:
        store.dispose()
    print(
        f"deleted {report.fixes_deleted} fixes and {report.alcohol_deleted} alcohol readings "
        f"older than {report.cutoff.isoformat()}"
    )
    others = {k: v for k, v in report.counts.items() if k not in ("fixes", "alcohol_readings")}
    print(", ".join(f"{k}: {v}" for k, v in others.items()))
    if report.partitions_dropped:
        print(f"partitions dropped: {', '.join(report.partitions_dropped)}")
    return 0


def audit_verify(settings: Settings) -> int:
    """Verify the audit hash chain and the signed checkpoints outside the database; exit 1 and
    list problems (truncated, rolled back, rebuilt, forged, edited) if anything is wrong."""
    try:
        key = checkpoints.load_key(settings)
    except checkpoints.CheckpointError as exc:
        print(f"audit verify: {exc}", file=sys.stderr)
        return 2
    path = checkpoints.checkpoint_path(settings)
    store = open_store(settings)
    try:
        with store.read() as session:
            result = audit.verify(session)
            if key is not None:
                result.problems.extend(checkpoints.verify(session, path, key))
    finally:
        store.dispose()
    if key is None:
        print(
            "audit verify: no checkpoint key (EM_AUDIT_CHECKPOINT_KEY_FILE): only the chain's "
            "own consistency is checked; truncation, rollback and rebuilding are not provable",
            file=sys.stderr,
        )
    elif not path.exists():
        print(f"audit verify: no checkpoints yet at {path}", file=sys.stderr)
    if result.ok:
        checked = "" if key is None else " and against the signed checkpoints"
        print(f"audit log intact: {result.checked} entries verified{checked}")
        return 0
    print(f"audit log BROKEN ({result.checked} entries checked):", file=sys.stderr)
    for problem in result.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def audit_checkpoint(settings: Settings) -> int:
    """Write one signed checkpoint of the audit head (for cron; the API also writes them)."""
    try:
        key = checkpoints.load_key(settings)
    except checkpoints.CheckpointError as exc:
        print(f"audit checkpoint: {exc}", file=sys.stderr)
        return 2
    if key is None:
        print("audit checkpoint: set EM_AUDIT_CHECKPOINT_KEY_FILE first", file=sys.stderr)
        return 2
    store = open_store(settings)
    try:
        with store.read() as session:
            cp = checkpoints.write(session, checkpoints.checkpoint_path(settings), key, wall_now())
    finally:
        store.dispose()
    print(f"audit checkpoint written: entry {cp.seq} {cp.hash[:16]}…")
    return 0
