"""Schema migrations (Alembic), configured in code so they run from an installed package.

``em-service db upgrade`` calls :func:`upgrade`. The upgrade runs in one write transaction
(``BEGIN IMMEDIATE`` on SQLite), so an API and an archiver starting together do not race.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from em_service.store.db import Store

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """Return an Alembic config for ``url`` with this package's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(store: Store, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision``; return the revision the database is then at.

    They run as ``store.migrate_url`` (on PostgreSQL the schema owner; the service role may not
    create or alter tables). A database already at the head is left alone, so a service that
    logs in as the service role starts without the owner's credentials once migrated.
    """
    if revision == "head" and is_current(store):
        return current_revision(store)
    owner = store if store.migrate_url == store.url else Store(store.migrate_url)
    try:
        cfg = alembic_config(owner.url)
        with owner.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
            if conn.dialect.name == "postgresql":  # one migrator at a time (API + archiver)
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7201400)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if owner is not store:
            owner.dispose()
    return current_revision(store)


def current_revision(store: Store) -> str | None:
    """Return the database's current revision (None before the first upgrade)."""
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """Return the newest revision shipped with the code."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def is_current(store: Store) -> bool:
    """Return True when the database is at the newest revision."""
    return current_revision(store) == head_revision()
