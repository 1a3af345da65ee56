"""The PostgreSQL devstack: `devstack postgres up|status|down` through the CLI, roles that work."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from tests.service_env import free_port


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "em_service.devstack", "postgres", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _urls(env_file: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in env_file.read_text().splitlines())
    return {k: v for k, _, v in pairs if k.startswith("EM_DATABASE")}


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Not under pytest's tmp dir: as root the server runs as the postgres user, which must reach it.
    path = Path(tempfile.mkdtemp(prefix="em-pg-devstack-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_up_status_down_with_an_owner_and_a_service_role(state_dir: Path) -> None:
    env = {**os.environ, "EM_STATE_DIR": str(state_dir), "EM_POSTGRES_PORT": str(free_port())}
    assert _cli(env, "status").returncode == 1
    up = _cli(env, "up")
    try:
        assert up.returncode == 0, up.stderr
        assert "started" in up.stdout
        assert "already running" in _cli(env, "up").stdout
        assert _cli(env, "status").returncode == 0
        env_file = state_dir / "postgres" / "env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # it holds the passwords
        urls = _urls(env_file)
        owner = create_engine(urls["EM_DATABASE_MIGRATE_URL"])
        service = create_engine(urls["EM_DATABASE_URL"])
        try:
            with owner.begin() as conn:
                conn.execute(text("CREATE TABLE t (a integer)"))
                assert conn.execute(text("SELECT PostGIS_Version()")).scalar()
                names = set(conn.execute(text("SELECT extname FROM pg_extension")).scalars())
                assert {"postgis", "btree_gist"} <= names
            with service.begin() as conn:  # rows: yes
                conn.execute(text("INSERT INTO t VALUES (1)"))
                conn.execute(text("UPDATE t SET a = 2"))
                assert conn.execute(text("SELECT a FROM t")).scalar() == 2
            for ddl in ("CREATE TABLE u (a integer)", "DROP TABLE t", "TRUNCATE t"):
                with pytest.raises(ProgrammingError), service.begin() as conn:  # schema: no
                    conn.execute(text(ddl))
        finally:
            owner.dispose()
            service.dispose()
    finally:
        down = _cli(env, "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert _cli(env, "status").returncode == 1
