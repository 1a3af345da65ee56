"""Alerts: ``confirmed`` and ``suppressed`` as columns, and an index that covers the caseload
review's counts.

Both were read from ``details_json`` on every query (``LIKE`` on the JSON text): the review's
count of breaches read every breach row of the period, and the queue and escalation read every
open row, to tell a confirmed breach (``details.evidence`` definite; without evidence, severity
high) and a suppressed one (``details.suppressed``, an approved absence). Details never change
after insert, so the archiver sets both columns when it inserts an alert
(``store.models.confirmed_of`` / ``suppressed_of``); this migration fills them in for the rows
already there with the same rules in SQL (JSON functions of each engine: a JSON value counts as
set as Python's ``bool`` would have it).

``ix_alerts_offender_type_occurred (offender_id, type, occurred_at, confirmed, suppressed)``
lets the review count a period's alerts by person and type in index order, without a sort and
without reading a row.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_alerts_offender_type_occurred"
COLUMNS = ["offender_id", "type", "occurred_at", "confirmed", "suppressed"]


def _sqlite_set(key: str) -> str:
    """SQL: ``details.<key>`` is there and truthy (not null, false, 0, "", [] or {})."""
    kind = f"json_type(nullif(details_json, ''), '$.{key}')"
    value = f"json_extract(nullif(details_json, ''), '$.{key}')"
    return (
        f"coalesce({kind} = 'true' OR ({kind} IN ('text', 'integer', 'real') AND {value} "
        f"NOT IN ('', 0)) OR ({kind} IN ('array', 'object') AND {value} NOT IN ('[]', '{{}}')), 0)"
    )


def _sqlite_backfill() -> tuple[str, str]:
    evidence = "json_extract(nullif(details_json, ''), '$.evidence')"
    kind = "json_type(nullif(details_json, ''), '$.evidence')"
    confirmed = (
        f"CASE WHEN {_sqlite_set('evidence')} THEN coalesce({kind} = 'text' "
        f"AND {evidence} = 'definite', 0) ELSE severity = 'high' END"
    )
    return confirmed, _sqlite_set("suppressed")


def _pg_set(key: str) -> str:
    """SQL: ``details.<key>`` is there and truthy (not null, false, 0, "", [] or {})."""
    value = f"(nullif(details_json, '')::jsonb -> '{key}')"
    return (
        f"coalesce({value} NOT IN ('null'::jsonb, 'false'::jsonb, '0'::jsonb, '\"\"'::jsonb, "
        "'[]'::jsonb, '{}'::jsonb), false)"
    )


def _pg_backfill() -> tuple[str, str]:
    evidence = "(nullif(details_json, '')::jsonb -> 'evidence')"
    confirmed = (
        f"CASE WHEN {_pg_set('evidence')} THEN coalesce({evidence} = '\"definite\"'::jsonb, "
        "false) ELSE severity = 'high' END"
    )
    return confirmed, _pg_set("suppressed")


def upgrade() -> None:
    # ALTER TABLE … ADD COLUMN on both engines (no copy of the table).
    for name in ("confirmed", "suppressed"):
        op.add_column(
            "alerts", sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
        )
    sqlite = op.get_bind().dialect.name == "sqlite"
    confirmed, suppressed = _sqlite_backfill() if sqlite else _pg_backfill()
    # Only the rows with something to set are written (the defaults are false).
    op.execute(
        f"UPDATE alerts SET confirmed = {confirmed}, suppressed = {suppressed} "
        f"WHERE ({confirmed}) OR ({suppressed})"
    )
    op.create_index(INDEX, "alerts", COLUMNS)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="alerts")
    with op.batch_alter_table("alerts") as b:
        b.drop_column("suppressed")
        b.drop_column("confirmed")
