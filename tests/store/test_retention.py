"""Retention deletes exactly the trail rows older than the cutoff; alerts and audit stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from em_service.clock import wall_now
from em_service.console.sessions import Identity, SessionStore
from em_service.store import Store, alerts, audit, retention, trail
from em_service.store.models import AlcoholSample, AlertRow, ConsoleSessionRow, Fix
from em_service.store.types import from_ms
from tests.store.factories import T0, alcohol, alert, gps

NOW = T0 + timedelta(days=400)
CUTOFF = NOW - timedelta(days=365)


def _seed(store: Store) -> None:
    ms = timedelta(milliseconds=1)
    fix_times = [CUTOFF - timedelta(days=30), CUTOFF - ms, CUTOFF, CUTOFF + ms, NOW]
    with store.write() as s:
        trail.insert_fixes(s, readings=[gps(ts=t) for t in fix_times], crs="EPSG:27700")
        trail.insert_alcohol(s, readings=[alcohol(ts=t) for t in fix_times[:3]])
        where = {"lat": 51.45, "lon": -0.97, "accuracy_m": 8.0}
        alerts.apply_alert(s, alert(occurred_at=CUTOFF - timedelta(days=10), location=where))
        alerts.apply_alert(s, alert("alert-0002", occurred_at=CUTOFF, location=where))


def test_exactly_the_old_rows_go(store: Store) -> None:
    _seed(store)
    report = retention.purge_trail(store, older_than=timedelta(days=365), now=NOW)
    assert (report.fixes_deleted, report.alcohol_deleted, report.cutoff) == (2, 2, CUTOFF)
    with store.read() as s:
        kept = sorted(from_ms(ms) for ms in s.scalars(select(Fix.ts_ms)))
        assert kept == [CUTOFF, CUTOFF + timedelta(milliseconds=1), NOW]
        assert s.scalar(select(func.count()).select_from(AlcoholSample)) == 1
        located = s.execute(
            select(AlertRow.alert_id, AlertRow.lat, AlertRow.lon, AlertRow.accuracy_m).order_by(
                AlertRow.alert_id
            )
        ).all()
        assert located == [  # alerts are kept; the old one without its location
            ("alert-0001", None, None, None),
            ("alert-0002", 51.45, -0.97, 8.0),
        ]
        entries, _ = audit.list_entries(s, action="retention.purge")
        detail = json.loads(entries[0].detail_json)
        assert (detail["fixes"], detail["alcohol_readings"], detail["alert_locations"]) == (2, 2, 1)
        assert audit.verify(s).ok
    again = retention.purge_trail(store, older_than=timedelta(days=365), now=NOW)
    assert (again.fixes_deleted, again.alcohol_deleted) == (0, 0)


def _open_session(store: Store, at: datetime, principal: str) -> str:
    """Sign ``principal`` in at ``at`` (a fixed clock) with a purpose recorded; return the key."""
    sessions = SessionStore(store, idle_s=1800, max_s=12 * 3600, clock=lambda: at.timestamp())
    _, session = sessions.open(Identity(principal, token_sha256="0" * 64))
    sessions.add_purpose(session, "sc-1")
    return session.key


def test_expired_console_sessions_go_with_retention_live_ones_stay(store: Store) -> None:
    """A quiet console (nobody signs in) keeps no expired session nor the purposes in it."""
    live = _open_session(store, NOW - timedelta(minutes=5), "investigator-2")
    # opened after the live one, or the live one's sign-in would have purged it
    _open_session(store, NOW - timedelta(hours=12, seconds=1), "investigator-1")  # expired
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(ConsoleSessionRow)) == 2
    report = retention.purge_trail(store, older_than=timedelta(days=365), now=NOW)
    assert report.counts["console_sessions"] == 1 and report.session_cutoff == NOW
    with store.read() as s:
        assert list(s.scalars(select(ConsoleSessionRow.sid_sha256))) == [live]
        entries, _ = audit.list_entries(s, action="retention.purge")
        assert json.loads(entries[0].detail_json)["console_sessions"] == 1
    later = NOW + timedelta(hours=12)  # a replay's event time is not the sessions' clock
    again = retention.purge_trail(store, older_than=timedelta(days=365), now=NOW, wall=later)
    assert again.counts["console_sessions"] == 1


def test_deletes_in_batches(store: Store, monkeypatch) -> None:
    monkeypatch.setattr(retention, "BATCH_ROWS", 7)
    with store.write() as s:
        trail.insert_fixes(
            s, readings=[gps(ts=T0, seq=i) for i in range(30)] + [gps(ts=NOW)], crs="EPSG:27700"
        )
    report = retention.purge_trail(store, older_than=timedelta(days=1), now=NOW)
    assert report.fixes_deleted == 30


def test_cli_reports_counts(store: Store, tmp_path: Path) -> None:
    now = wall_now()
    with store.write() as s:
        trail.insert_fixes(
            s,
            readings=[gps(ts=now - timedelta(days=40)), gps(ts=now - timedelta(days=1))],
            crs="EPSG:27700",
        )
    env = {**os.environ, "EM_DATABASE_URL": store.url, "EM_STATE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "em_service.cli", "retention", "--older-than", "30"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "deleted 1 fixes and 0 alcohol readings" in proc.stdout
