"""Prometheus for the tests: the Debian ``promtool``/``prometheus`` binaries and a real server.

Missing binaries skip the tests on a developer machine but fail them in CI (``CI=true``), where
``.ci/run`` installs Debian's ``prometheus`` package.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.service_env import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = ROOT / "deploy" / "prometheus.yml"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
RULE_TESTS_DIR = ROOT / "deploy" / "prometheus" / "tests"


def binary(name: str) -> str:
    """Return the path of ``name`` (promtool, prometheus); skip if absent, but fail under CI."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found (Debian: apt-get install prometheus)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def local_config(
    targets: dict[str, str],
    rule_files: list[Path],
    token_file: Path,
    interval_s: float = 1.0,
) -> dict:
    """Return deploy/prometheus.yml with local ``targets`` (job → host:port), rules and token.

    Jobs, metric paths and authorisation stay as deployed, so the test scrapes what compose does.
    """
    config = yaml.safe_load(DEPLOY_CONFIG.read_text())
    every = f"{round(interval_s * 1000)}ms"
    config["global"] = {"scrape_interval": every, "evaluation_interval": every}
    config["rule_files"] = [str(p) for p in rule_files]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        job["scrape_timeout"] = every
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(token_file)
    return config


class PrometheusServer:
    """One ``prometheus`` process on a free port with its own TSDB dir; :meth:`stop` by pid."""

    def __init__(self, config: dict, workdir: Path) -> None:
        self.workdir = workdir
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrometheusServer:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    binary("prometheus"),
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, 60, what="prometheus /-/ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log_path.read_text()[-3000:]}")
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
            return resp.status == 200

    def api(self, path: str, **params: str) -> dict:
        """GET ``/api/v1/<path>`` and return its ``data`` (asserting status success)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


#: Metrics the rules and dashboards use that other parts of the service export (merged
#: separately): processing errors per consumer, and the audit checkpoint of the security work.
EXTERNAL_METRICS = {"em_records_failed_total", "em_audit_checkpoint_timestamp_seconds"}
_METRIC_MODULES = (
    "em_service.metrics",
    "em_service.lag",
    "em_service.tracking.lag",
    "em_service.store.metrics",
    "em_service.scenes.metrics",
    "em_service.api.webhook",
    "em_service.api.http_metrics",
    "em_service.api.alert_stream",
)


def exported_metrics() -> set[str]:
    """Return every sample name the service's metric modules can export."""
    import importlib

    from prometheus_client import REGISTRY

    for module in _METRIC_MODULES:
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        for suffix in suffixes.get(family.type, [""]):
            names.add(family.name + suffix)
    return {n for n in names if n.startswith("em_")}


def recorded_metrics() -> set[str]:
    """Return the names of the recording rules."""
    return {
        rule["record"]
        for path in RULES_DIR.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def metric_names(expr: str) -> set[str]:
    """Return the ``em_…`` and ``em:…`` metric names an expression uses."""
    import re

    return set(re.findall(r"\bem[_:][a-z0-9_:]+", expr))
