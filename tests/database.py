"""Test databases on both engines: a fresh, migrated database per test.

SQLite: a copy of a migrated template file. PostgreSQL: ``CREATE DATABASE … TEMPLATE`` of a
migrated template database costs ~0.3–1.5 s, so each test module gets one copy and each test
finds it reset to just-migrated (:class:`PgReset`: every table truncated, identities restarted,
the rows the migrations seeded put back), in ~20–50 ms. Either way the test gets the service
URL and the migration (owner) URL, as a deployment would.
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


#: Tables that are not the service's data (Alembic's revision, PostGIS's reference systems).
KEEP = {"alembic_version", "spatial_ref_sys"}


class PgReset:
    """Puts a just-migrated PostgreSQL database back the way it was (as its owner)."""

    def __init__(self, db: Database) -> None:
        import psycopg

        self.conninfo = db.migrate_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(self.conninfo) as conn:
            # Partitions are emptied with their table (and may be dropped by a test).
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                    "AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY 1"
                )
                if r[0] not in KEEP
            ]
            self.truncate = f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"
            self.seeds: list[tuple[str, list[tuple]]] = []
            for table in tables:
                rows = conn.execute(f"SELECT * FROM {table}").fetchall()  # type: ignore[arg-type]
                if rows:
                    self.seeds.append((table, rows))

    def __call__(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo) as conn:
            conn.execute("SET lock_timeout = '20s'")  # a connection left open fails, not hangs
            conn.execute(self.truncate)  # type: ignore[arg-type]
            for table, rows in self.seeds:
                marks = ", ".join(["%s"] * len(rows[0]))
                with conn.cursor() as cur:
                    cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # type: ignore[arg-type]
