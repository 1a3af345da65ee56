"""Monthly partitions of the trail tables on PostgreSQL (migration ``0009_fix_partitions``).

``fixes`` and ``alcohol_readings`` are ``PARTITION BY RANGE (ts_ms)``: one partition per UTC
month (``<table>_pYYYYMM``) and a DEFAULT partition (``<table>_default``) for whatever no month
covers, so an insert never fails for want of a partition. :func:`maintain` (run by the archiver's
retention job and ``em-service retention``) creates the current month and ``MONTHS_AHEAD``
months after it; :func:`drop_before` drops whole months older than a cutoff. Both call
``SECURITY DEFINER`` functions of the schema owner, since the service role may not create or
drop tables. On SQLite there are no partitions and both do nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlalchemy import text

from em_service.store.db import Store

TABLES = ("fixes", "alcohol_readings")
MONTHS_AHEAD = 2
_PARTITION = re.compile(rf"^({'|'.join(TABLES)})_(p\d{{6}}|default)$")


def is_partition(name: str) -> bool:
    """Return True if ``name`` is a partition of a trail table (not a table of its own)."""
    return _PARTITION.match(name) is not None


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's filter: autogenerate compares our tables, not their monthly partitions."""
    return not (type_ == "table" and name is not None and is_partition(name))


def month_of(t: datetime, delta: int = 0) -> date:
    """Return the first day of the UTC month of ``t``, ``delta`` months on."""
    y, m = divmod(t.year * 12 + t.month - 1 + delta, 12)
    return date(y, m + 1, 1)


def partition_name(table: str, month: date) -> str:
    """Return the name of ``table``'s partition for ``month``."""
    return f"{table}_p{month:%Y%m}"


def maintain(store: Store, *, now: datetime, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the month partitions of ``now``'s month and ``months_ahead`` after it (rows of
    those months waiting in the DEFAULT partition move in); return the names created."""
    if store.dialect != "postgresql":
        return []
    created = []
    with store.write() as session:
        for table in TABLES:
            for delta in range(months_ahead + 1):
                name = session.scalar(
                    text("SELECT em_month_partition(:t, :m)"),
                    {"t": table, "m": month_of(now, delta)},
                )
                if name:
                    created.append(name)
    return created


def drop_before(store: Store, table: str, cutoff_ms: int) -> tuple[list[str], int]:
    """Detach and drop ``table``'s month partitions that end at or before ``cutoff_ms``; return
    their names and how many rows they held."""
    if store.dialect != "postgresql":
        return [], 0
    with store.write() as session:
        rows = session.execute(
            text("SELECT dropped, row_count FROM em_drop_partitions_before(:t, :c)"),
            {"t": table, "c": cutoff_ms},
        ).all()
    return [r[0] for r in rows], sum(r[1] for r in rows)


def partitions(store: Store, table: str) -> list[str]:
    """Return the names of ``table``'s partitions (PostgreSQL; empty on SQLite)."""
    if store.dialect != "postgresql":
        return []
    with store.read() as session:
        return list(
            session.scalars(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = CAST(:t AS regclass) ORDER BY c.relname"
                ),
                {"t": table},
            )
        )
