"""The migrations build exactly the models' schema, re-run harmlessly, and set up SQLite well."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from em_service.devstack import postgres
from em_service.store import Store, migrate
from em_service.store.models import Base
from em_service.store.partitions import include_name
from tests.database import create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A database with nothing in it yet, on each engine (PostgreSQL: service and owner roles)."""
    if request.param == "sqlite":
        yield Store(f"sqlite:///{tmp_path / 'em.db'}")
        return
    info = request.getfixturevalue("pg_cluster")
    name = create_pg_database(info)
    yield Store(info.url(postgres.SERVICE, name), migrate_url=info.url(postgres.OWNER, name))
    drop_pg_database(info, name)


def test_upgrade_matches_models_and_is_idempotent(empty_store: Store) -> None:
    store = empty_store
    try:
        assert migrate.current_revision(store) is None
        assert migrate.upgrade(store) == migrate.head_revision()
        assert migrate.upgrade(store) == migrate.head_revision()  # nothing left to do
        with store.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(
                    conn, opts={"compare_type": True, "include_name": include_name}
                ),
                Base.metadata,
            )
        # PostGIS's own table is the extension's, not ours.
        assert [
            d for d in diff if d[:1] != ("remove_table",) or d[1].name != "spatial_ref_sys"
        ] == []
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("journal_mode", "wal"), ("foreign_keys", 1), ("synchronous", 2), ("busy_timeout", 10000)],
)
def test_sqlite_pragmas(tmp_path: Path, pragma: str, expected: object) -> None:
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text(f"PRAGMA {pragma}")).scalar() == expected
    store.dispose()


def test_downgrade_then_upgrade(store: Store) -> None:
    from alembic import command

    owner = Store(store.migrate_url)  # PostgreSQL: only the owner may drop tables
    cfg = migrate.alembic_config(owner.url)
    with owner.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    owner.dispose()
    assert migrate.current_revision(store) is None
    assert migrate.upgrade(store) == migrate.head_revision()


def test_cli_db_upgrade_from_the_installed_package(tmp_path: Path) -> None:
    env = {"EM_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "em_service.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # not the source tree: the migrations must come with the package
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"revision {migrate.head_revision()}" in proc.stdout
    assert (tmp_path / "em.db").exists()


def test_package_data_ships_every_migration_file() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["em_service"]
    package = root / "em_service"
    files = [
        p.relative_to(package).as_posix()
        for p in (package / "store" / "migrations").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert missing == []


def test_new_database_file_is_private(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'private' / 'em.db'}")
    try:
        migrate.upgrade(store)
        for name in ("em.db", "em.db-wal"):
            path = tmp_path / "private" / name
            assert not path.exists() or (path.stat().st_mode & 0o077) == 0, name
    finally:
        store.dispose()
