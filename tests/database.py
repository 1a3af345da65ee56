"""Test databases on both engines: a fresh, migrated database per test from a session template.

SQLite: a copy of a migrated template file. PostgreSQL: ``CREATE DATABASE … TEMPLATE`` of a
migrated template database on the session cluster (tests/conftest.py), dropped after the test.
Either way the test gets the service URL and the migration (owner) URL, as a deployment would.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from em_service.devstack import postgres
from em_service.store import Store, migrate


@dataclass(frozen=True)
class Database:
    """One test database: the service role's URL and the migration owner's URL."""

    url: str
    migrate_url: str

    @property
    def dialect(self) -> str:
        return "postgresql" if self.url.startswith("postgresql") else "sqlite"

    def store(self) -> Store:
        """Return a store logged in as the service role (migrations as the owner)."""
        return Store(self.url, migrate_url=self.migrate_url)

    def env(self) -> dict[str, str]:
        """Environment variables that point a service process at this database."""
        return {"EM_DATABASE_URL": self.url, "EM_DATABASE_MIGRATE_URL": self.migrate_url}


def sqlite_template(template_dir: Path) -> Path:
    """Return a migrated SQLite template file (created once per directory)."""
    template = template_dir / "template.db"
    if not template.exists():
        store = Store(f"sqlite:///{template}")
        migrate.upgrade(store)
        store.dispose()
    return template


def sqlite_database(template_dir: Path, target: Path) -> Database:
    """Return a database on a copy of the migrated SQLite template."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sqlite_template(template_dir), target)
    url = f"sqlite:///{target}"
    return Database(url, url)


def create_pg_database(info: postgres.PgInfo, template: str | None = None) -> str:
    """Create a database owned by the migration owner (from ``template`` or ready for the two
    roles, as the devstack makes it) and return its name."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with postgres.admin_connection(info) as conn:
        if template:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template} OWNER {postgres.OWNER}")
            return name
        conn.execute(f"CREATE DATABASE {name} OWNER {postgres.OWNER}")
    with postgres.admin_connection(info, name) as conn:
        for statement in postgres.database_sql():
            conn.execute(statement)
    return name


def drop_pg_database(info: postgres.PgInfo, name: str) -> None:
    """Drop a test database, ending any session still connected to it."""
    with postgres.admin_connection(info) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pg_template(info: postgres.PgInfo) -> str:
    """Create and migrate (as the owner) a template database; return its name."""
    name = create_pg_database(info)
    store = Store(info.url(postgres.SERVICE, name), migrate_url=info.url(postgres.OWNER, name))
    try:
        migrate.upgrade(store)
    finally:
        store.dispose()
    return name


def pg_database(info: postgres.PgInfo, template: str) -> tuple[Database, str]:
    """Return a fresh copy of the migrated template and its name (for dropping)."""
    name = create_pg_database(info, template)
    db = Database(info.url(postgres.SERVICE, name), info.url(postgres.OWNER, name))
    return db, name
