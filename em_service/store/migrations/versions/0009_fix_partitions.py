"""PostgreSQL: the trail tables (``fixes``, ``alcohol_readings``) partitioned by month of event time.

Each table becomes ``PARTITION BY RANGE (ts_ms)`` with one partition per UTC month
(``<table>_pYYYYMM``, bounds in epoch ms) and a DEFAULT partition (``<table>_default``) that
takes anything no month partition covers, so late or far-future data never fails an insert. A
primary key or unique constraint of a partitioned table must include the partition key: the
primary key becomes ``(id, ts_ms)`` (ids still come from the one sequence, so ``id`` stays
unique); ``(device_id, ts_ms, seq)`` already includes it. Rows move over in the migration's one
transaction; the months of the existing rows and the previous, current and next month get
partitions.

The service role may not create or drop tables, so two ``SECURITY DEFINER`` functions, owned by
the schema owner that runs this migration, do it for it (EXECUTE granted to the roles that may
write the trail, revoked from PUBLIC):

* ``em_month_partition(parent, month)`` creates a month's partition (moving that month's rows
  out of the DEFAULT partition first); it does nothing if it exists;
* ``em_drop_partitions_before(parent, cutoff_ms)`` detaches and drops every month partition
  that ends at or before ``cutoff_ms`` and returns their names and row counts.

Both accept only the two trail tables and give up after 10 s waiting for a lock (DETACH locks
the whole table; the job tries again next interval rather than stall the archiver). SQLite is
unchanged.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 16:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {
    "fixes": {
        "pk": "pk_fixes",
        "uq": "uq_fixes_device_id_ts_ms_seq",
        "indexes": {"ix_fixes_cell_ts": "(cell, ts_ms)", "ix_fixes_ts": "(ts_ms)"},
    },
    "alcohol_readings": {
        "pk": "pk_alcohol_readings",
        "uq": "uq_alcohol_readings_device_id_ts_ms_seq",
        "indexes": {"ix_alcohol_readings_ts": "(ts_ms)"},
    },
}

#: Epoch ms of the first instant of a month (a DATE), UTC.
_MS = "(extract(epoch FROM ({0})::timestamp AT TIME ZONE 'UTC') * 1000)::bigint"

FUNCTIONS = [
    f"""
CREATE FUNCTION em_month_partition(parent text, month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '10s'
AS $fn$
DECLARE
    part text := parent || '_p' || to_char(month, 'YYYYMM');
    lo bigint := {_MS.format("month")};
    hi bigint := {_MS.format("month + interval '1 month'")};
BEGIN
    IF parent IS NULL OR parent NOT IN ('fixes', 'alcohol_readings') THEN
        RAISE EXCEPTION 'not a partitioned trail table: %', parent;
    END IF;
    IF month IS NULL OR month <> date_trunc('month', month)::date THEN
        RAISE EXCEPTION 'not the first day of a month: %', month;
    END IF;
    -- Inserts of this month wait (they would go to the default partition) while its rows move;
    -- a second caller waits here, then finds the partition made.
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', parent || '_default');
    IF to_regclass(part) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', part, parent);
    EXECUTE format(
        'WITH moved AS (DELETE FROM %I WHERE ts_ms >= %s AND ts_ms < %s RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', parent || '_default', lo, hi, part);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                   parent, part, lo, hi);
    RETURN part;
END
$fn$""",
    f"""
CREATE FUNCTION em_drop_partitions_before(parent text, cutoff_ms bigint)
RETURNS TABLE (dropped text, row_count bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '10s'
AS $fn$
DECLARE
    part text;
    hi bigint;
BEGIN
    IF parent IS NULL OR parent NOT IN ('fixes', 'alcohol_readings') THEN
        RAISE EXCEPTION 'not a partitioned trail table: %', parent;
    END IF;
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass AND c.relname ~ ('^' || parent || '_p[0-9]{{6}}$')
        ORDER BY c.relname
    LOOP
        hi := {_MS.format("to_date(right(part, 6), 'YYYYMM') + interval '1 month'")};
        IF hi <= cutoff_ms THEN
            EXECUTE format('SELECT count(*) FROM %I', part) INTO row_count;
            EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, part);
            EXECUTE format('DROP TABLE %I', part);
            dropped := part;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$fn$""",
]
SIGNATURES = ("em_month_partition(text, date)", "em_drop_partitions_before(text, bigint)")


def _months_around_now() -> list[str]:
    now = datetime.now(UTC)
    months = []
    for delta in (-1, 0, 1):
        y, m = divmod(now.year * 12 + now.month - 1 + delta, 12)
        months.append(f"{y:04d}-{m + 1:02d}-01")
    return months


def _writers(table: str) -> list[str]:
    """Roles other than the owner that may insert into ``table`` (the service role)."""
    rows = op.get_bind().exec_driver_sql(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
        f"WHERE table_schema = current_schema() AND table_name = '{table}' "
        "AND privilege_type = 'INSERT' AND grantee <> current_user"
    )
    return [r[0] for r in rows]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    writers = sorted({w for table in TABLES for w in _writers(table)})
    for sql in FUNCTIONS:
        op.execute(sql)
    for signature in SIGNATURES:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        for role in writers:
            op.execute(f'GRANT EXECUTE ON FUNCTION {signature} TO "{role}"')
    for table, spec in TABLES.items():
        _partition(table, spec)


def _grants(table: str) -> list[str]:
    """The GRANT statements that give others what they may do on ``table`` now."""
    rows = op.get_bind().exec_driver_sql(
        "SELECT grantee, string_agg(privilege_type, ', ') FROM information_schema.role_table_grants "
        f"WHERE table_schema = current_schema() AND table_name = '{table}' "
        "AND grantee <> current_user GROUP BY grantee"
    )
    return [f'GRANT {privileges} ON {table} TO "{grantee}"' for grantee, privileges in rows]


def _partition(table: str, spec: dict) -> None:
    conn = op.get_bind()
    grants = _grants(table)
    old = f"{table}_unpartitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {spec['pk']} TO {spec['pk']}_old")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {spec['uq']} TO {spec['uq']}_old")
    for index in spec["indexes"]:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_old")
    seq = conn.exec_driver_sql(f"SELECT pg_get_serial_sequence('{old}', 'id')").scalar()
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE (ts_ms)")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {spec['pk']} PRIMARY KEY (id, ts_ms)")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {spec['uq']} UNIQUE (device_id, ts_ms, seq)")
    for index, columns in spec["indexes"].items():
        op.execute(f"CREATE INDEX {index} ON {table} {columns}")
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    months = conn.exec_driver_sql(
        "SELECT DISTINCT to_char(date_trunc('month', to_timestamp(ts_ms / 1000.0) "
        f"AT TIME ZONE 'UTC'), 'YYYY-MM-DD') FROM {old}"
    )
    for month in sorted({r[0] for r in months} | set(_months_around_now())):
        op.execute(f"SELECT em_month_partition('{table}', DATE '{month}')")
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    if seq:
        op.execute(f"ALTER SEQUENCE {seq} OWNED BY {table}.id")
    op.execute(f"DROP TABLE {old}")
    for grant in grants:
        op.execute(grant)


def _unpartition(table: str, spec: dict) -> None:
    conn = op.get_bind()
    grants = _grants(table)
    seq = conn.exec_driver_sql(f"SELECT pg_get_serial_sequence('{table}', 'id')").scalar()
    old = f"{table}_partitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {spec['pk']} TO {spec['pk']}_old")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {spec['uq']} TO {spec['uq']}_old")
    for index in spec["indexes"]:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_old")
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS)")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {spec['pk']} PRIMARY KEY (id)")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {spec['uq']} UNIQUE (device_id, ts_ms, seq)")
    for index, columns in spec["indexes"].items():
        op.execute(f"CREATE INDEX {index} ON {table} {columns}")
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    if seq:
        op.execute(f"ALTER SEQUENCE {seq} OWNED BY {table}.id")
    op.execute(f"DROP TABLE {old}")  # and its partitions
    for grant in grants:
        op.execute(grant)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, spec in TABLES.items():
        _unpartition(table, spec)
    for signature in SIGNATURES:
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
