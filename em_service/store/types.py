"""Column types and small portable SQL helpers shared by the store modules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
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
    """Return ``INSERT … ON CONFLICT DO NOTHING`` for ``table`` (SQLite and PostgreSQL)."""
    module: Any = postgresql if dialect_name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def iso(ts: datetime | None) -> str | None:
    """Return a canonical RFC 3339 UTC string (microseconds) or None."""
    return None if ts is None else ts.astimezone(UTC).isoformat(timespec="microseconds")
