"""``alerts.confirmed`` and ``alerts.suppressed``: set by the archiver's insert from the alert's
details and severity, filled in by migration 0011 for the rows already there, by the same rules
(on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from em_service.store import Store, alerts, migrate
from em_service.store.models import AlertRow, Base, confirmed_of, suppressed_of
from em_service.store.partitions import include_name
from tests.store.factories import T0, alert

SUSPENSION = {"suspension_id": "s-1", "reason": "hospital", "severity": "high"}
#: (details, severity) → (confirmed, suppressed). Confirmed: evidence definite, or no evidence
#: (missing or empty) and severity high. Suppressed: ``details.suppressed`` set (not empty).
CASES: list[tuple[dict, str, bool, bool]] = [
    ({"evidence": "definite"}, "high", True, False),
    ({"evidence": "definite"}, "low", True, False),
    ({"evidence": "possible"}, "high", False, False),
    ({}, "high", True, False),
    ({}, "medium", False, False),
    ({"evidence": ""}, "high", True, False),
    ({"evidence": None}, "info", False, False),
    ({"evidence": "definite", "suppressed": SUSPENSION}, "info", True, True),
    ({"evidence": "possible", "suppressed": SUSPENSION}, "info", False, True),
    ({"suppressed": {}}, "high", True, False),
    ({"suppressed": None}, "low", False, False),
    # A re-alert after the suspension names the suppressed alert: it is not suppressed itself.
    ({"after_suspension": {"suppressed_alert_id": "a-1"}}, "high", True, False),
]


def _flags(store: Store) -> dict[str, tuple[bool, bool]]:
    with store.read() as s:
        return {
            alert_id: (bool(c), bool(p))
            for alert_id, c, p in s.execute(
                select(AlertRow.alert_id, AlertRow.confirmed, AlertRow.suppressed)
            )
        }


def _expected() -> dict[str, tuple[bool, bool]]:
    return {f"alert-{i:02d}": (c, p) for i, (_, _, c, p) in enumerate(CASES)}


@pytest.mark.parametrize(("details", "severity", "confirmed", "suppressed"), CASES)
def test_the_rules(details: dict, severity: str, confirmed: bool, suppressed: bool) -> None:
    assert (confirmed_of(details, severity), suppressed_of(details)) == (confirmed, suppressed)


def test_the_archiver_insert_sets_both(store: Store) -> None:
    with store.write() as s:
        for i, (details, severity, _, _) in enumerate(CASES):
            alerts.apply_alert(
                s,
                alert(f"alert-{i:02d}", details=details, severity=severity),
                now=T0,
            )
    assert _flags(store) == _expected()


def _downgrade(store: Store, revision: str) -> None:
    owner = Store(store.migrate_url)  # PostgreSQL: only the owner may alter tables
    cfg = migrate.alembic_config(owner.url)
    try:
        with owner.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        owner.dispose()


def _alert_columns_and_indexes(store: Store) -> tuple[set[str], set[str]]:
    with store.engine.connect() as conn:
        insp = inspect(conn)
        return (
            {c["name"] for c in insp.get_columns("alerts")},
            {i["name"] for i in insp.get_indexes("alerts")},
        )


def test_migration_0011_fills_in_existing_rows_and_goes_down_and_up(store: Store) -> None:
    """Rows written before 0011 get both columns from their details; down to 0010 drops the
    columns and the index; up again gives the models' schema."""
    _downgrade(store, "0010")
    columns, indexes = _alert_columns_and_indexes(store)
    assert not {"confirmed", "suppressed"} & columns
    assert "ix_alerts_offender_type_occurred" not in indexes
    owner = Store(store.migrate_url)
    try:
        with owner.engine.begin() as conn:
            for i, (details, severity, _, _) in enumerate(CASES):
                at = T0 + timedelta(minutes=i)
                conn.execute(
                    text(
                        "INSERT INTO alerts (alert_id, type, severity, offender_id, occurred_at, "
                        "detected_at, late, details_json, status, status_changed_at, received_at) "
                        "VALUES (:id, 'exclusion_breach', :severity, 'off-1', :at, :at, :late, "
                        ":details, 'open', :at, :at)"
                    ),
                    {
                        "id": f"alert-{i:02d}",
                        "severity": severity,
                        "at": at,
                        "late": False,
                        "details": json.dumps(details, sort_keys=True),
                    },
                )
    finally:
        owner.dispose()
    assert migrate.upgrade(store, "0011") == "0011"
    assert _flags(store) == _expected()
    _downgrade(store, "0010")
    columns, indexes = _alert_columns_and_indexes(store)
    assert not {"confirmed", "suppressed"} & columns
    assert "ix_alerts_offender_type_occurred" not in indexes
    assert "ix_alerts_offender_occurred_cover" in indexes  # the table's other indexes kept
    assert migrate.upgrade(store) == migrate.head_revision()
    assert _flags(store) == _expected()
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": include_name}
            ),
            Base.metadata,
        )
    assert [d for d in diff if d[:1] != ("remove_table",) or d[1].name != "spatial_ref_sys"] == []
