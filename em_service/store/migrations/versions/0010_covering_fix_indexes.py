"""PostgreSQL: the two indexes a scene search reads cover the columns it reads.

A scene search reads (1) the fixes near the scene through the cell index and (2) each
candidate's trail through the ``(device_id, ts_ms, seq)`` unique index. Fixes are stored in
arrival order, so one device's or one cell's consecutive fixes sit on different heap pages: on
5M fixes each index entry cost one heap page visit (721 pages for 302 fixes near one scene).
With the read columns as non-key ``INCLUDE`` columns both reads are index-only scans (once
autovacuum has set the visibility map, which it does on insert-only tables since PostgreSQL 13):

* ``ix_fixes_cell_ts``: ``(cell, ts_ms) INCLUDE (device_id, seq, x_m, y_m)``;
* ``uq_fixes_device_id_ts_ms_seq``: ``UNIQUE (device_id, ts_ms, seq) INCLUDE (x_m, y_m,
  accuracy_m, lon, lat)`` (the same constraint, so ``ON CONFLICT DO NOTHING`` is unchanged).

Both are rebuilt on every partition in this migration's transaction (about 15 s for 5M fixes;
writers wait). SQLite has no ``INCLUDE`` and is unchanged.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 06:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UQ = "uq_fixes_device_id_ts_ms_seq"
CELL = "ix_fixes_cell_ts"
UQ_INCLUDE = "x_m, y_m, accuracy_m, lon, lat"
CELL_INCLUDE = "device_id, seq, x_m, y_m"


def _rebuild(uq_include: str | None, cell_include: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    uq = f" INCLUDE ({uq_include})" if uq_include else ""
    cell = f" INCLUDE ({cell_include})" if cell_include else ""
    op.execute(f"ALTER TABLE fixes DROP CONSTRAINT {UQ}")
    op.execute(f"ALTER TABLE fixes ADD CONSTRAINT {UQ} UNIQUE (device_id, ts_ms, seq){uq}")
    op.execute(f"DROP INDEX {CELL}")
    op.execute(f"CREATE INDEX {CELL} ON fixes (cell, ts_ms){cell}")


def upgrade() -> None:
    _rebuild(UQ_INCLUDE, CELL_INCLUDE)


def downgrade() -> None:
    _rebuild(None, None)
