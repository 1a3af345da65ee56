"""Column types and small portable SQL helpers shared by the store modules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import DateTime, Insert, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime: stored as UTC (naive on SQLite), always read back aware.

    Naive datetimes are refused on the way in: every time in the service carries its offset.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times must carry an offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(ts: datetime) -> int:
    """Return epoch milliseconds (UTC, floored, exact integer arithmetic) of an aware datetime."""
    return (ts - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Return the aware UTC datetime of epoch milliseconds."""
    return _EPOCH + ms * _MS


def insert_ignore(table: Table, dialect_name: str) -> Insert:
    """Return ``INSERT … ON CONFLICT DO NOTHING`` for ``table`` (SQLite and PostgreSQL).

    Its ``rowcount`` (1 inserted, 0 a duplicate) is kept: psycopg loses it once SQLAlchemy closes
    a cursor that returns no rows.
    """
    module: Any = postgresql if dialect_name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)


@lru_cache(maxsize=32)
def _bulk_sql(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, tuple]:
    stmt = insert_ignore(table, dialect.name).values({c: bindparam(c) for c in columns})
    compiled = stmt.compile(dialect=dialect)
    order = tuple(compiled.positiontup or ()) if compiled.positional else ()
    return compiled.string, order


def bulk_insert_ignore(
    session: Session, table: Table, columns: tuple[str, ...], rows: list[tuple]
) -> None:
    """Insert plain-value ``rows`` (tuples in ``columns`` order), skipping duplicates.

    The hot path of the archive: the statement is compiled once per dialect and the rows go
    straight to the driver's ``executemany``, skipping per-row parameter processing (values
    must already be what the driver takes: str, int, float, bool, None).
    """
    if not rows:
        return
    conn = session.connection()
    sql, order = _bulk_sql(table, columns, conn.dialect)
    if order:  # positional paramstyle (SQLite's qmark)
        index = [columns.index(name) for name in order]
        params: list[Any] = (
            rows
            if index == list(range(len(columns)))
            else [tuple(row[i] for i in index) for row in rows]
        )
    else:  # named paramstyle (psycopg)
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    conn.exec_driver_sql(sql, params)


def iso(ts: datetime | None) -> str | None:
    """Return a canonical RFC 3339 UTC string (microseconds) or None."""
    return None if ts is None else ts.astimezone(UTC).isoformat(timespec="microseconds")
