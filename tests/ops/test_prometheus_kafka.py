"""A real Prometheus scrapes the real worker, archiver and API, and pages when the worker dies.

Prometheus (Debian's binary) runs with deploy/prometheus.yml's jobs pointed at this test's
services, scraping and evaluating every second, and a copy of the deployed rules whose ``for:``
is shortened to seconds. All targets come up (the API's /metrics with an ops token, as
deployed), WorkerDown stays quiet while the worker consumes, then the worker is killed and
WorkerDown fires in Prometheus's /api/v1/alerts.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from em_service.devstack import ensure_topics
from em_service.store import Store, migrate, tokens
from tests.ops.prom import RULES_DIR, PrometheusServer, local_config
from tests.service_env import ServiceEnv, free_port, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SHORT_FOR = "3s"


def short_rules(tmp_path: Path) -> list[Path]:
    """Copies of the deployed rule files with every ``for:`` set to :data:`SHORT_FOR`."""
    out = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = SHORT_FOR
        copy = tmp_path / path.name
        copy.write_text(yaml.safe_dump(doc))
        out.append(copy)
    return out


def _firing(prom: PrometheusServer, name: str) -> list[dict]:
    return [
        a
        for a in prom.api("alerts")["alerts"]
        if a["labels"]["alertname"] == name and a["state"] == "firing"
    ]


def test_prometheus_sees_the_services_and_fires_worker_down(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    archiver_port = free_port()
    env.env["EM_ARCHIVER_METRICS_PORT"] = str(archiver_port)
    ensure_topics(env.settings, kafka_bootstrap)
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    migrate.upgrade(store)
    with store.write() as session:
        token = tokens.create_token(session, name="prometheus", role="ops", caseload=[])
    store.dispose()
    token_file = tmp_path / "ops-token"
    token_file.write_text(token)
    targets = {
        "em-worker": f"127.0.0.1:{env.metrics_port}",
        "em-archiver": f"127.0.0.1:{archiver_port}",
        "em-api": f"127.0.0.1:{env.api_port}",
    }
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    prom = PrometheusServer(
        local_config(targets, short_rules(tmp_path), token_file, interval_s=1.0), prom_dir
    )
    try:
        worker = env.start("worker", log_name="worker")
        env.start("archiver", log_name="archiver")
        env.start("api", log_name="api")
        prom.start()

        def all_up() -> bool:
            active = prom.api("targets")["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in active}
            return health == dict.fromkeys(targets, "up")

        env.wait_until(all_up, 120, what="every target up in Prometheus", interval_s=0.5)
        env.wait_until(
            lambda: prom.api("query", query='em_worker_up{job="em-worker"} == 1')["result"],
            120,
            what="the worker consuming, seen by Prometheus",
            interval_s=0.5,
        )
        env.wait_until(
            lambda: not _firing(prom, "WorkerDown") and not _firing(prom, "ArchiverDown"),
            30,
            what="no WorkerDown/ArchiverDown while they run",
        )

        env.stop(worker, sig=signal.SIGKILL)
        firing = wait_until(
            lambda: _firing(prom, "WorkerDown"), 60, what="WorkerDown firing", interval_s=0.5
        )
        assert [a["labels"]["instance"] for a in firing] == [targets["em-worker"]]
        assert firing[0]["labels"]["severity"] == "page"
        assert firing[0]["annotations"]["runbook_url"] == "docs/runbook.md#workerdown"
        assert not _firing(prom, "ArchiverDown") and not _firing(prom, "ApiDown")
    finally:
        prom.stop()
        env.stop_all()
