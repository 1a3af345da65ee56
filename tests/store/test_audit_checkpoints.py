"""Issue 13 finding 2: the audit chain is provable from outside. Signed checkpoints in a file
the database user cannot write let ``audit verify`` detect the four attacks of the issue on a
copy of the database — delete the tail and move the head back, delete everything and reset the
head, remove the trail reads and re-chain, restore an older copy — and say which."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from em_service.settings import Settings
from em_service.store import Store, alerts, audit, checkpoints, commands
from em_service.store.models import AuditEntry
from tests.database import Database
from tests.store.factories import T0, alert


@pytest.fixture
def store(sqlite_db: Database) -> Iterator[Store]:
    """SQLite only: the attacks below edit and copy the database file as an insider would."""
    store = sqlite_db.store()
    yield store
    store.dispose()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "audit.key"
    path.parent.mkdir()
    path.write_text(secrets.token_hex(32))
    return path


def _settings(db: Path, key_file: Path | None, tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{db}",
        state_dir=tmp_path / "state",
        audit_checkpoint_key_file=key_file,
        db_auto_upgrade=False,
    )


def _fill(store: Store, n: int, start: int = 0) -> None:
    with store.write() as s:
        for i in range(start, start + n):
            alerts.apply_alert(s, alert(f"alert-{i:04d}", offender_id="off-1"))
            audit.append(
                s,
                actor="investigator-1",
                role="investigator",
                action="trail.read" if i % 2 else "alert.read",
                offender_id="off-1",
                time_from=T0,
                time_to=T0 + timedelta(hours=1),
                purpose="CR/2026/42",
                detail={"i": i},
                at=T0 + timedelta(minutes=i),
            )


def _checkpoint(settings: Settings, store: Store, minutes: int) -> None:
    key = checkpoints.load_key(settings)
    assert key is not None
    with store.read() as s:
        checkpoints.write(
            s, checkpoints.checkpoint_path(settings), key, T0 + timedelta(minutes=minutes)
        )


def _by_hand(db: Path, *statements: str) -> None:
    """What an insider with database access does: drop the triggers, then edit."""
    store = Store(f"sqlite:///{db}")
    with store.engine.begin() as c:
        c.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        c.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for st in statements:
            c.execute(text(st))
    store.dispose()


def _rechain_without_trail_reads(db: Path) -> None:
    store = Store(f"sqlite:///{db}")
    with store.read() as s:
        kept = [e for e in s.scalars(select_all()).all() if e.action != "trail.read"]
        rows = [
            {c.name: getattr(e, c.key) for c in AuditEntry.__table__.columns if c.key} for e in kept
        ]
    store.dispose()
    _by_hand(db, "DELETE FROM audit_log")
    store = Store(f"sqlite:///{db}")
    with store.write() as s:
        prev = audit.GENESIS
        for seq, row in enumerate(rows, 1):
            e = AuditEntry(**{**row, "seq": seq, "prev_hash": prev})
            e.hash = audit.entry_hash(prev, audit._fields(e))
            s.add(e)
            prev = e.hash
        s.execute(
            text("UPDATE audit_head SET seq = :n, hash = :h WHERE id = 1"),
            {"n": len(rows), "h": prev},
        )
    store.dispose()


def select_all():
    from sqlalchemy import select

    return select(AuditEntry).order_by(AuditEntry.seq)


@pytest.fixture
def scene(tmp_path: Path, store: Store, key_file: Path):
    """A database with 6 entries and alerts, a copy of it then, 6 more and checkpoints."""
    db = Path(store.engine.url.database)
    settings = _settings(db, key_file, tmp_path)
    _fill(store, 6)
    _checkpoint(settings, store, 10)
    store.dispose()
    shutil.copy(db, tmp_path / "older.db")
    _fill(store, 6, start=6)
    _checkpoint(settings, store, 20)
    store.dispose()
    return settings, db


def _verify(settings: Settings, capsys) -> tuple[int, str]:
    code = commands.audit_verify(settings)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_intact_log_verifies_and_the_metric_is_set(scene, capsys) -> None:
    settings, _ = scene
    code, out = _verify(settings, capsys)
    assert code == 0 and "12 entries verified and against the signed checkpoints" in out
    value = REGISTRY.get_sample_value("em_audit_checkpoint_timestamp_seconds")
    assert value == (T0 + timedelta(minutes=20)).timestamp()
    assert checkpoints.checkpoint_path(settings).stat().st_mode & 0o777 == 0o600


def test_truncated_tail_is_detected(scene, capsys) -> None:
    settings, db = scene
    _by_hand(
        db,
        "DELETE FROM audit_log WHERE seq = 12",
        "UPDATE audit_head SET seq = 11, hash = (SELECT hash FROM audit_log WHERE seq = 11)",
    )
    code, out = _verify(settings, capsys)
    assert code == 1 and "truncated: entries 12..12" in out


def test_everything_deleted_is_detected(scene, capsys) -> None:
    settings, db = scene
    _by_hand(db, "DELETE FROM audit_log", f"UPDATE audit_head SET seq = 0, hash = '{'0' * 64}'")
    code, out = _verify(settings, capsys)
    assert code == 1 and "truncated: every entry" in out


def test_rechained_log_without_trail_reads_is_detected(scene, capsys) -> None:
    settings, db = scene
    _rechain_without_trail_reads(db)
    with Store(f"sqlite:///{db}").read() as s:
        assert audit.verify(s).ok  # the chain alone is fooled
    code, out = _verify(settings, capsys)
    assert code == 1 and "rebuilt: entry 6" in out


def test_older_copy_of_the_database_is_detected(scene, tmp_path: Path, capsys) -> None:
    settings, db = scene
    shutil.copy(tmp_path / "older.db", db)
    code, out = _verify(settings, capsys)
    assert code == 1 and "rolled back" in out and "an older copy was restored" in out


def test_forged_or_dropped_checkpoints_are_detected(scene, capsys) -> None:
    settings, _ = scene
    path = checkpoints.checkpoint_path(settings)
    first, second = path.read_text().splitlines()
    forged = json.loads(second) | {"seq": 6}
    path.write_text(first + "\n" + json.dumps(forged) + "\n")
    code, out = _verify(settings, capsys)
    assert code == 1 and "forged: checkpoint 2" in out
    path.write_text(second + "\n")  # the first line dropped
    code, out = _verify(settings, capsys)
    assert code == 1 and "does not follow" in out


def test_a_wrong_key_cannot_verify(scene, tmp_path: Path, capsys) -> None:
    settings, _ = scene
    other = tmp_path / "other.key"
    other.write_text(secrets.token_hex(32))
    code, out = _verify(settings.model_copy(update={"audit_checkpoint_key_file": other}), capsys)
    assert code == 1 and "invalid signature" in out


def test_cli_checkpoint_and_verify(scene, tmp_path: Path) -> None:
    settings, db = scene
    env = {
        **os.environ,
        "EM_DATABASE_URL": settings.database_url,
        "EM_STATE_DIR": str(settings.state_dir),
        "EM_AUDIT_CHECKPOINT_KEY_FILE": str(settings.audit_checkpoint_key_file),
        "EM_DB_AUTO_UPGRADE": "false",
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "em_service.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert cli("audit", "checkpoint").returncode == 0
    ok = cli("audit", "verify")
    assert ok.returncode == 0 and "intact" in ok.stdout
    _by_hand(db, "DELETE FROM audit_log", f"UPDATE audit_head SET seq = 0, hash = '{'0' * 64}'")
    bad = cli("audit", "verify")
    assert bad.returncode == 1 and "truncated: every entry" in bad.stderr
