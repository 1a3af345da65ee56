"""Shared fixtures: one real Kafka broker and one PostgreSQL cluster for the whole test session,
a fresh database per test on each engine, and unique names."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from em_service.devstack import kafka as devstack
from em_service.devstack import postgres
from em_service.settings import Settings, get_settings
from tests.database import (
    Database,
    PgReset,
    drop_pg_database,
    pg_database,
    pg_template,
    sqlite_database,
)
from tests.helpers import unique_name

#: Test cluster location and port; a cluster already running there is reused and left running.
PG_TEST_DIR = Path(
    os.environ.get(
        "EM_TEST_POSTGRES_DIR", Path(tempfile.gettempdir()) / f"em-test-pg-{os.getuid()}"
    )
)
PG_TEST_PORT = int(os.environ.get("EM_TEST_POSTGRES_PORT", "55433"))
#: A throwaway cluster: durability off (tests never survive a power cut anyway).
PG_TEST_OPTIONS = "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"


@dataclass(frozen=True)
class PgModuleDb:
    db: Database
    reset: PgReset


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of the session broker: reuse one answering on the configured port, else start one.

    A broker this fixture starts keeps its state in a session temp dir and is stopped at the end;
    one it merely reused is left alone. Jars come from (and stay in) the configured cache dir.
    """
    settings = get_settings().model_copy(
        update={"state_dir": tmp_path_factory.mktemp("devstack-state")}
    )
    info = devstack.up(settings)
    try:
        yield settings
    finally:
        if info.started:
            devstack.down(settings)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_settings: Settings) -> str:
    """Bootstrap servers (``127.0.0.1:<kafka_port>``) of the session broker."""
    return f"127.0.0.1:{kafka_settings.kafka_port}"


@pytest.fixture
def unique_topic_prefix() -> str:
    """A uuid-suffixed prefix so that each test's topics and groups are its own."""
    return unique_name("test")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres.PgInfo]:
    """The session PostgreSQL cluster (Debian packages): reuse one running in ``PG_TEST_DIR``,
    else start it there and stop it (by pid) at the end."""
    PG_TEST_DIR.parent.mkdir(parents=True, exist_ok=True)
    lock = PG_TEST_DIR.parent / f"{PG_TEST_DIR.name}.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        info = postgres.up(PG_TEST_DIR, PG_TEST_PORT, options=PG_TEST_OPTIONS)
    try:
        yield info
    finally:
        if info.started:
            postgres.down(PG_TEST_DIR)


@pytest.fixture(scope="session")
def pg_template_db(pg_cluster: postgres.PgInfo) -> Iterator[str]:
    """A migrated template database, dropped at the end of the session."""
    name = pg_template(pg_cluster)
    yield name
    drop_pg_database(pg_cluster, name)


@pytest.fixture(scope="session")
def sqlite_template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqlite-template")


@pytest.fixture(scope="module")
def pg_module_db(pg_cluster: postgres.PgInfo, pg_template_db: str) -> Iterator[PgModuleDb]:
    """One copy of the migrated template per test module, with its reset (tests/database.py)."""
    db, name = pg_database(pg_cluster, pg_template_db)
    try:
        yield PgModuleDb(db, PgReset(db))
    finally:
        drop_pg_database(pg_cluster, name)


@pytest.fixture
def sqlite_db(sqlite_template_dir: Path, tmp_path: Path) -> Database:
    """A fresh, migrated SQLite database (for tests whose subject is not the store)."""
    return sqlite_database(sqlite_template_dir, tmp_path / "em.db")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A fresh, migrated database for one test, on each engine in turn."""
    if request.param == "sqlite":
        return sqlite_database(request.getfixturevalue("sqlite_template_dir"), tmp_path / "em.db")
    module_db: PgModuleDb = request.getfixturevalue("pg_module_db")
    module_db.reset()
    return module_db.db
