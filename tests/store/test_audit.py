"""The audit log is append-only and hash-chained; verify catches any hand edit."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from em_service.store import Store, audit
from tests.store.factories import T0


def _fill(store: Store, n: int = 5) -> None:
    with store.write() as s:
        for i in range(n):
            audit.append(
                s,
                actor="investigator-1",
                role="investigator",
                action="trail.read",
                offender_id=f"off-{i}",
                time_from=T0,
                time_to=T0 + timedelta(hours=1),
                purpose="CR-2026-0042",
                detail={"fixes": i},
            )


def _verify(store: Store) -> audit.Verification:
    with store.read() as s:
        return audit.verify(s)


#: How the table's owner lifts the append-only guards for an edit, per dialect (PostgreSQL puts
#: them back in the same transaction, as a careful forger would).
UNGUARD = {
    "sqlite": ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
    "postgresql": ["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"],
}
REGUARD = {
    "sqlite": [],
    "postgresql": ["ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"],
}


def _by_hand(store: Store, *statements: str) -> None:
    """Tamper as someone with the owner's raw database access would: drop the guards, edit."""
    owner = Store(store.migrate_url)
    try:
        with owner.engine.begin() as conn:
            for statement in [*UNGUARD[store.dialect], *statements, *REGUARD[store.dialect]]:
                conn.execute(text(statement))
    finally:
        owner.dispose()


def test_intact_chain_verifies(store: Store) -> None:
    _fill(store)
    result = _verify(store)
    assert result.ok and result.checked == 5


def test_empty_log_verifies(store: Store) -> None:
    assert _verify(store).ok


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("UPDATE audit_log SET purpose = 'curiosity' WHERE seq = 3", "entry 3: contents"),
        ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1", "entry 1: contents"),
        ("UPDATE audit_log SET at = '2020-01-01 00:00:00.000000' WHERE seq = 5", "entry 5"),
        ("DELETE FROM audit_log WHERE seq = 2", "entries 2..2 are missing"),
        ("DELETE FROM audit_log WHERE seq = 5", "truncated"),
    ],
)
def test_any_hand_edit_is_detected(store: Store, statement: str, problem: str) -> None:
    _fill(store)
    _by_hand(store, statement)
    result = _verify(store)
    assert not result.ok
    assert any(problem in p for p in result.problems), result.problems


def test_rehashing_one_row_still_breaks_the_next_link(store: Store) -> None:
    _fill(store)
    with store.read() as s:
        e = s.get(audit.AuditEntry, 3)
        fields = audit._fields(e) | {"purpose": "curiosity"}
        forged = audit.entry_hash(e.prev_hash, fields)
    _by_hand(store, f"UPDATE audit_log SET purpose='curiosity', hash='{forged}' WHERE seq=3")
    problems = _verify(store).problems
    assert problems == ["entry 4: prev_hash does not match entry before it"]


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET purpose = 'x'", "DELETE FROM audit_log WHERE seq = 1"]
)
def test_database_refuses_updates_and_deletes(store: Store, statement: str) -> None:
    _fill(store, 2)
    with (
        pytest.raises(DBAPIError, match="append-only"),
        store.engine.begin() as conn,
    ):
        conn.execute(text(statement))
    assert _verify(store).ok


def test_cli_audit_verify_fails_after_a_hand_edit(store: Store, tmp_path: Path) -> None:
    _fill(store)
    env = {
        **os.environ,
        "EM_DATABASE_URL": store.url,
        "EM_DATABASE_MIGRATE_URL": store.migrate_url,
        "EM_STATE_DIR": str(tmp_path),
    }
    cmd = [sys.executable, "-m", "em_service.cli", "audit", "verify"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "5 entries verified" in ok.stdout
    _by_hand(store, "UPDATE audit_log SET offender_id = 'off-9' WHERE seq = 4")
    broken = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert broken.returncode == 1
    assert "entry 4: contents do not match its hash" in broken.stderr


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)  # SQLite has no users
@pytest.mark.parametrize(
    "statement",
    [
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "TRUNCATE audit_log",
        "DROP TABLE audit_log",
        "ALTER TABLE audit_log ADD COLUMN x integer",
        "CREATE TABLE audit_shadow (seq integer)",
    ],
)
def test_service_role_cannot_lift_the_guard_on_postgresql(store: Store, statement: str) -> None:
    """The service role (what the services log in as) owns nothing: the guard holds against it."""
    assert store.url != store.migrate_url
    _fill(store, 2)
    with (
        pytest.raises(ProgrammingError, match=r"owner|permission denied"),
        store.engine.begin() as c,
    ):
        c.execute(text(statement))
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET purpose = 'x'"))
    assert _verify(store).ok and _verify(store).checked == 2
