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


def _ttl(settings: Settings) -> dict[str, float]:
    return {
        "default_ttl_days": settings.token_ttl_days,
        "max_ttl_days": settings.token_max_ttl_days,
    }


def _token_command(settings: Settings, action) -> int:
    """Run ``action(session, now)`` in a write transaction; print a TokenError as exit 2."""
    store = _ready_store(settings)
    try:
        with store.write() as session:
            out = action(session, wall_now(settings))
    except tokens.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    print(out)
    return 0


def tokens_create(
    settings: Settings,
    *,
    role: str,
    name: str,
    caseload: Sequence[str],
    ttl_days: float | None = None,
) -> int:
    """Create a token for ``name`` (creating the principal) and print it once."""
    store = _ready_store(settings)
    try:
        with store.write() as session:
            now = wall_now(settings)
            token = tokens.create_token(
                session,
                name=name,
                role=role,
                caseload=caseload,
                actor=_actor(),
                ttl_days=ttl_days,
                now=now,
                **_ttl(settings),
            )
            made = tokens.list_tokens(session, name=name)[-1]
    except tokens.TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    print(token)
    print(
        f"(token {made.id} for {name!r}, role {role}, expires {made.expires_at:%Y-%m-%d %H:%M}Z: "
        "shown once, only its hash is stored)",
        file=sys.stderr,
    )
    return 0


def tokens_revoke(
    settings: Settings, *, name: str | None = None, token_id: int | None = None
) -> int:
    """Revoke every token of ``name``, or the one token ``token_id``."""
    if token_id is not None:
        return _token_command(
            settings,
            lambda s, now: (
                f"revoked token {token_id} of "
                f"{tokens.revoke_token(s, token_id=token_id, actor=_actor(), now=now)!r}"
            ),
        )
    return _token_command(
        settings,
        lambda s, now: (
            f"revoked {tokens.revoke_tokens(s, name=name, actor=_actor())} token(s) of {name!r}"
        ),
    )


def tokens_renew(settings: Settings, *, token_id: int, ttl_days: float | None = None) -> int:
    """Let token ``token_id`` work ``ttl_days`` (default EM_TOKEN_TTL_DAYS) from now."""

    def renew(session, now) -> str:
        until = tokens.renew_token(
            session, token_id=token_id, actor=_actor(), ttl_days=ttl_days, now=now, **_ttl(settings)
        )
        return f"token {token_id} now expires {until:%Y-%m-%d %H:%M}Z"

    return _token_command(settings, renew)


def tokens_expire(settings: Settings, *, token_id: int) -> int:
    """Make token ``token_id`` expire now (renewable later)."""

    def expire(session, now) -> str:
        tokens.expire_token(session, token_id=token_id, actor=_actor(), now=now)
        return f"token {token_id} expired"

    return _token_command(settings, expire)


def tokens_list(settings: Settings, *, name: str | None = None) -> int:
    """Print every token (id, principal, role, created, expires, status), never its text."""
    store = _ready_store(settings)
    try:
        with store.read() as session:
            rows = tokens.list_tokens(session, name=name)
    finally:
        store.dispose()
    now = wall_now(settings)
    print(
        f"{'id':>5}  {'principal':<24} {'role':<12} {'created (UTC)':<17} {'expires (UTC)':<17} status"
    )
    for t in rows:
        print(
            f"{t.id:>5}  {t.principal:<24} {t.role:<12} {t.created_at:%Y-%m-%d %H:%M}  "
            f"{t.expires_at:%Y-%m-%d %H:%M}  {t.status(now)}"
        )
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
