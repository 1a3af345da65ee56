"""docker-compose's PostgreSQL init script, run for real: on a fresh cluster (as the postgis image
would, with psql and the container's environment) it makes the devstack's two roles; the owner
migrates, the service role writes rows and keeps the month partitions, and may do no DDL."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from em_service.devstack import postgres
from em_service.store import Store, migrate, partitions
from tests.service_env import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"owner": "owner-pw-compose", "service": "service-pw-compose"}


@pytest.fixture
def bare_cluster() -> Iterator[tuple[postgres.PgInfo, dict[str, str]]]:
    """A fresh cluster with only its superuser (what the image has before its init scripts)."""
    root = Path(tempfile.mkdtemp(prefix="em-pg-initdb-"))
    root.chmod(0o711)  # as root the server runs as the postgres user, which must reach it
    paths = postgres.PgPaths(root / "postgres")
    port = free_port()
    try:
        postgres._prepare_root(paths)
        passwords = postgres._initdb(paths)
        postgres._start(paths, port, 60.0, "")
        yield postgres._info(paths, port, "em", started=True), passwords
    finally:
        postgres.down(paths.root)
        shutil.rmtree(root, ignore_errors=True)


def test_the_init_script_makes_the_two_roles(bare_cluster) -> None:
    info, passwords = bare_cluster
    env = {
        "PATH": f"{postgres.bin_dir()}:/usr/bin:/bin",
        "POSTGRES_USER": postgres.ADMIN,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(info.port),
        "PGPASSWORD": passwords[postgres.ADMIN],
        "EM_DB_OWNER_PASSWORD": PASSWORDS["owner"],
        "EM_DB_SERVICE_PASSWORD": PASSWORDS["service"],
    }
    script = ROOT / postgres.INITDB_SCRIPT
    proc = subprocess.run(
        [str(script)], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    base = f"postgresql+psycopg://{{}}:{{}}@127.0.0.1:{info.port}/em"
    store = Store(
        base.format(postgres.SERVICE, PASSWORDS["service"]),
        migrate_url=base.format(postgres.OWNER, PASSWORDS["owner"]),
    )
    try:
        assert migrate.upgrade(store) == migrate.head_revision()
        created = partitions.maintain(store, now=datetime(2031, 1, 15, tzinfo=UTC))
        assert "fixes_p203101" in created  # the service role, through the owner's function
        with store.write() as s:
            s.execute(text("INSERT INTO outlet_cursors (name, last_event_id) VALUES ('a', 1)"))
        for ddl in ("DROP TABLE fixes_default", "CREATE TABLE t (x int)", "TRUNCATE alerts"):
            denied = pytest.raises(ProgrammingError, match=r"permission denied|must be owner")
            with denied, store.write() as s:
                s.execute(text(ddl))
        with store.read() as s:
            assert s.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'"))
    finally:
        store.dispose()
