"""Engine and sessions: one :class:`Store` per database, with read and write transactions.

SQLite (the embedded default) runs in WAL mode so readers never block the writer. Python's
sqlite3 driver is put in autocommit mode and transactions are begun explicitly: reads with a
plain ``BEGIN`` and writes with ``BEGIN IMMEDIATE``, which takes the write lock up front (waiting
up to ``busy_timeout``) instead of failing later when a read transaction tries to upgrade.
On PostgreSQL none of this applies and both are ordinary transactions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from em_service.settings import Settings


def _sqlite_pragmas(busy_timeout_s: float, synchronous: str) -> list[str]:
    return [
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={synchronous}",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA cache_size=-65536",  # KiB: 64 MiB page cache per connection
    ]


def _configure_sqlite(engine: Engine, busy_timeout_s: float, synchronous: str) -> None:
    pragmas = _sqlite_pragmas(busy_timeout_s, synchronous)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
        cursor = dbapi_conn.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (personal data); SQLite gives its
    -wal and -shm files the same permissions. An existing file is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


class Store:
    """A database: engine plus read and write session factories."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_s: float = 10.0,
        sqlite_synchronous: str = "FULL",
        echo: bool = False,
        migrate_url: str | None = None,
    ) -> None:
        parsed = make_url(url)
        self.url = url
        self.migrate_url = migrate_url or url  # who runs migrations (PostgreSQL: the owner role)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _create_private(Path(parsed.database).expanduser())
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_s}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, busy_timeout_s, sqlite_synchronous)
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(writer, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Yield a session for reading; closing it ends (rolls back) its transaction.

        Objects loaded stay usable after the block (closed, not expired).
        """
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Yield a session in a write transaction; commit on success, roll back on error."""
        with self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def open_store(settings: Settings) -> Store:
    """Return the :class:`Store` of ``settings.resolved_database_url()``."""
    return Store(
        settings.resolved_database_url(),
        busy_timeout_s=settings.sqlite_busy_timeout_s,
        sqlite_synchronous=settings.sqlite_synchronous,
        migrate_url=settings.database_migrate_url,
    )
