"""``/readyz`` of the worker and the archiver: what each waits for, in fixed words.

Unit: the health app and the worker's readiness states. Real broker: the real worker and
archiver become ready (every check ``ok``) once they consume.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from em_service.devstack import ensure_topics
from em_service.health import Readiness, serve
from em_service.settings import Settings
from em_service.tracking.loop import TrackingLoop
from em_service.tracking.tracker import PartitionWork
from tests.service_env import ServiceEnv, free_port


def _get(url: str) -> tuple[int, dict | str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as err:
        body, status = err.read().decode(), err.code
    try:
        return status, json.loads(body)
    except json.JSONDecodeError:
        return status, body


def test_health_app_reports_waiting_then_ready_and_serves_metrics() -> None:
    ready = Readiness("broker", "database")
    port = free_port()
    server = serve(port, "127.0.0.1", ready)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _get(f"{base}/healthz") == (200, {"status": "ok"})
        assert _get(f"{base}/readyz") == (
            503,
            {"status": "waiting", "checks": {"broker": "waiting", "database": "waiting"}},
        )
        ready.set("broker")
        ready.set("database", "write failing")
        assert _get(f"{base}/readyz")[0] == 503
        ready.set("database")
        assert _get(f"{base}/readyz") == (
            200,
            {"status": "ok", "checks": {"broker": "ok", "database": "ok"}},
        )
        status, metrics = _get(f"{base}/metrics")
        assert status == 200 and "python_info" in metrics
    finally:
        server.shutdown()
        server.server_close()


def test_a_check_that_fails_is_not_ready_and_shows_no_error_text() -> None:
    def broken() -> dict[str, str]:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    port = free_port()
    server = serve(port, "127.0.0.1", broken)
    try:
        status, body = _get(f"http://127.0.0.1:{port}/readyz")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 503 and body == {"status": "waiting", "checks": {"checks": "unavailable"}}


def test_worker_readiness_words(tmp_path: Path) -> None:
    loop = TrackingLoop(Settings(state_dir=tmp_path))
    assert loop.readiness() == {
        "broker": "connecting",
        "group": "joining",
        "conditions": "loading",
        "scenes": "loading",
        "victims": "loading",
        "state": "ok",
    }
    loop._consuming = loop._assigned = True
    loop._conditions_ready.set()
    loop._scenes_ready.set()
    loop._victims_ready.set()
    loop.works[0] = PartitionWork(0, ready=False)
    loop.works[1] = PartitionWork(1, ready=True)
    assert loop.readiness()["state"] == "restoring 1 partitions"
    loop.works[0].ready = True
    assert set(loop.readiness().values()) == {"ok"}
    loop.stop()
    assert loop.readiness()["broker"] == "stopping"


@pytest.mark.kafka
def test_worker_and_archiver_become_ready(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    archiver_port = free_port()
    env.env["EM_ARCHIVER_METRICS_PORT"] = str(archiver_port)
    ensure_topics(env.settings, kafka_bootstrap)
    worker_ready = f"http://127.0.0.1:{env.metrics_port}/readyz"
    archiver_ready = f"http://127.0.0.1:{archiver_port}/readyz"
    try:
        env.start("worker", log_name="worker")
        env.start("archiver", log_name="archiver")
        worker = env.wait_until(
            lambda: (r := _get(worker_ready))[0] == 200 and r, 90, "worker ready"
        )
        archiver = env.wait_until(
            lambda: (r := _get(archiver_ready))[0] == 200 and r, 90, "archiver ready"
        )
    finally:
        env.stop_all()
    assert worker[1] == {
        "status": "ok",
        "checks": dict.fromkeys(
            ["broker", "group", "conditions", "scenes", "victims", "state"], "ok"
        ),
    }
    assert archiver[1] == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
