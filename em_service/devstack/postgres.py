"""A local PostgreSQL + PostGIS cluster from the Debian packages, without Docker.

``up`` runs ``initdb`` under ``<state_dir>/postgres/`` (first time only), starts the server on
127.0.0.1 and ``EM_POSTGRES_PORT`` and creates the database with the PostGIS and btree_gist
extensions and two roles:

* ``em_owner`` owns the database and the schema and runs the migrations
  (``EM_DATABASE_MIGRATE_URL``);
* ``em_service`` is what the worker, archiver and API log in as (``EM_DATABASE_URL``): it may
  select, insert, update and delete rows but owns nothing, so it cannot alter or drop tables or
  triggers, and it has no TRUNCATE; the audit log's append-only trigger therefore holds against it.

Passwords are random, kept in ``<state_dir>/postgres/env`` (mode 0600) with the two URLs.
PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` system user, which
must be able to reach the state dir.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from em_service.devstack.kafka import DevstackError

BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin"))
ADMIN = "em_admin"
OWNER = "em_owner"
SERVICE = "em_service"
RUN_AS = "postgres"  # system user the server runs as when we are root


@dataclass(frozen=True)
class PgPaths:
    """Files of one private cluster."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def env(self) -> Path:
        return self.root / "env"

    @property
    def pid(self) -> Path:
        return self.data / "postmaster.pid"


@dataclass(frozen=True)
class PgInfo:
    """A running (or not) cluster and how to reach it."""

    port: int
    answering: bool
    pid: int | None
    started: bool  # True if this very call launched the server
    paths: PgPaths
    passwords: dict[str, str]
    database: str

    def url(self, role: str = SERVICE, database: str | None = None) -> str:
        """Return the SQLAlchemy URL (psycopg 3) for ``role`` on ``database``."""
        pw = self.passwords[role]
        return f"postgresql+psycopg://{role}:{pw}@127.0.0.1:{self.port}/{database or self.database}"

    def conninfo(self, role: str = ADMIN, database: str = "postgres") -> str:
        """Return a libpq connection string for ``role`` (psycopg.connect)."""
        pw = self.passwords[role]
        return f"host=127.0.0.1 port={self.port} user={role} password={pw} dbname={database}"


def bin_dir() -> Path:
    """Return the directory of initdb and pg_ctl (Debian's postgresql-15 or -16)."""
    for candidate in BIN_DIRS:
        if (candidate / "initdb").exists():
            return candidate
    raise DevstackError(
        "PostgreSQL binaries not found: apt-get install -y postgresql postgresql-15-postgis-3"
    )


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DevstackError(f"{what} failed ({shlex.join(cmd)}): {proc.stderr.strip()[-2000:]}")


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def read_pid(paths: PgPaths) -> int | None:
    """Return the postmaster pid of this cluster if it is alive, else None."""
    try:
        pid = int(paths.pid.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _read_env(paths: PgPaths) -> dict[str, str]:
    out: dict[str, str] = {}
    if paths.env.exists():
        for line in paths.env.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.startswith("PW_"):
                out[key.removeprefix("PW_").lower()] = value
    return out


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _prepare_root(paths: PgPaths) -> None:
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.geteuid() == 0:
        user = pwd.getpwnam(RUN_AS)
        os.chown(paths.root, user.pw_uid, user.pw_gid)
        probe = subprocess.run(
            ["runuser", "-u", RUN_AS, "--", "test", "-w", str(paths.root)], check=False
        )
        if probe.returncode != 0:
            raise DevstackError(
                f"the {RUN_AS} user cannot reach {paths.root}: use a state dir (EM_STATE_DIR) "
                "whose parents it can traverse"
            )


def _initdb(paths: PgPaths) -> dict[str, str]:
    passwords = {
        ADMIN: secrets.token_urlsafe(18),
        OWNER: secrets.token_urlsafe(18),
        SERVICE: secrets.token_urlsafe(18),
    }
    pwfile = paths.root / "admin.pw"
    _write_private(pwfile, passwords[ADMIN] + "\n")
    if os.geteuid() == 0:
        user = pwd.getpwnam(RUN_AS)
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    try:
        _run(
            [
                str(bin_dir() / "initdb"),
                "-D",
                str(paths.data),
                "-U",
                ADMIN,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )
    finally:
        pwfile.unlink(missing_ok=True)
    env = "".join(f"PW_{role.upper()}={pw}\n" for role, pw in passwords.items())
    _write_private(paths.env, env)
    return passwords


def _start(paths: PgPaths, port: int, timeout_s: float, options: str) -> None:
    opts = f"-p {port} -k {paths.root} -h 127.0.0.1 {options}".strip()
    _run(
        [
            str(bin_dir() / "pg_ctl"),
            "-D",
            str(paths.data),
            "-o",
            opts,
            "-l",
            str(paths.log),
            "-w",
            "-t",
            str(int(timeout_s)),
            "start",
        ],
        "pg_ctl start",
    )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def cluster_sql(database: str, owner_password: str, service_password: str) -> list[str]:
    """Statements on the maintenance database that create the two roles and ``database``; the
    passwords are SQL expressions (a quoted literal, or a psql variable such as ``:'pw'``)."""
    return [
        f"CREATE ROLE {OWNER} LOGIN PASSWORD {owner_password}",
        f"CREATE ROLE {SERVICE} LOGIN PASSWORD {service_password}",
        f"CREATE DATABASE {database} OWNER {OWNER}",
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC",
        f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {SERVICE}",
    ]


def setup_sql(database: str, passwords: dict[str, str]) -> tuple[list[str], list[str]]:
    """Return (statements on the maintenance database, statements in ``database``)."""
    owner, service = _literal(passwords[OWNER]), _literal(passwords[SERVICE])
    return cluster_sql(database, owner, service), database_sql()


#: Where docker-compose.yml mounts the init script for the postgis/postgis image.
INITDB_SCRIPT = Path("deploy/postgres/initdb/20-em-roles.sh")


def initdb_script(database: str = "em") -> str:
    """The same SQL as :func:`up`, as a script for the official PostgreSQL image's
    ``/docker-entrypoint-initdb.d/`` (run once, on an empty data directory): passwords from the
    container's ``EM_DB_OWNER_PASSWORD`` and ``EM_DB_SERVICE_PASSWORD`` (psql variables, never
    in the file). ``python3 -m em_service.devstack.postgres > INITDB_SCRIPT`` regenerates it."""
    statements = cluster_sql(database, ":'owner_password'", ":'service_password'")
    statements += [f"\\connect {database}", *database_sql()]
    body = "\n".join(s if s.startswith("\\") else s + ";" for s in statements)
    return (
        "#!/bin/sh\n"
        "# Generated by `python3 -m em_service.devstack.postgres` (the devstack's SQL): do not edit.\n"
        'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \\\n'
        '  -v owner_password="$EM_DB_OWNER_PASSWORD" -v service_password="$EM_DB_SERVICE_PASSWORD" '
        "<<'SQL'\n"
        f"{body}\n"
        "SQL\n"
    )


def database_sql() -> list[str]:
    """Statements (as the superuser) that make a new database ready for the two roles."""
    return [
        "CREATE EXTENSION IF NOT EXISTS postgis",
        "CREATE EXTENSION IF NOT EXISTS btree_gist",
        f"ALTER SCHEMA public OWNER TO {OWNER}",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {SERVICE}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {SERVICE}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public "
        f"GRANT USAGE, SELECT ON SEQUENCES TO {SERVICE}",
    ]


def _exec(conninfo: str, statements: list[str]) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _roles_exist(info: PgInfo) -> bool:
    import psycopg

    with psycopg.connect(info.conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SERVICE,)).fetchone()
    return row is not None


def _info(paths: PgPaths, port: int, database: str, started: bool) -> PgInfo:
    return PgInfo(
        port=port,
        answering=_port_open(port),
        pid=read_pid(paths),
        started=started,
        paths=paths,
        passwords=_read_env(paths),
        database=database,
    )


def up(
    root: Path, port: int, database: str = "em", timeout_s: float = 60.0, options: str = ""
) -> PgInfo:
    """Start (initialising on first use) the cluster under ``root``; reuse it if running.

    ``options`` are extra server options (``-c name=value …``), e.g. for a throwaway test
    cluster that need not survive a power cut.
    """
    paths = PgPaths(root)
    if read_pid(paths) is not None:
        return _info(paths, port, database, started=False)
    if _port_open(port):
        raise DevstackError(f"port {port} is taken by another server (set EM_POSTGRES_PORT)")
    _prepare_root(paths)
    fresh = not (paths.data / "PG_VERSION").exists()
    if fresh:
        _initdb(paths)
    _start(paths, port, timeout_s, options)
    info = _info(paths, port, database, started=True)
    if fresh or not _roles_exist(info):
        cluster, in_db = setup_sql(database, info.passwords)
        _exec(info.conninfo(), cluster)
        _exec(info.conninfo(database=database), in_db)
        lines = [
            f"EM_DATABASE_URL={info.url(SERVICE)}",
            f"EM_DATABASE_MIGRATE_URL={info.url(OWNER)}",
        ]
        _write_private(paths.env, paths.env.read_text() + "\n".join(lines) + "\n")
    return info


def down(root: Path, timeout_s: float = 30.0) -> bool:
    """Stop the cluster under ``root`` (fast shutdown); return False if it was not running."""
    paths = PgPaths(root)
    pid = read_pid(paths)
    if pid is None:
        return False
    os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint, exit
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGQUIT)
    return True


def status(root: Path, port: int, database: str = "em") -> PgInfo:
    """Say whether the cluster under ``root`` runs and answers."""
    return _info(PgPaths(root), port, database, started=False)


@contextlib.contextmanager
def admin_connection(info: PgInfo, database: str = "postgres") -> Iterator[object]:
    """Yield an autocommit psycopg connection as the cluster superuser."""
    import psycopg

    with psycopg.connect(info.conninfo(ADMIN, database), autocommit=True) as conn:
        yield conn


if __name__ == "__main__":
    import sys

    sys.stdout.write(initdb_script())
