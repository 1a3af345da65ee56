"""Issue 13 finding 9, for real: a worker whose broker goes away writes a few lines, not ~150/s.

The test starts its own broker (never the shared one), a real ``em-service worker`` the way the
demo does (``procs.spawn``: ``EM_LOG_FILE``, stdout/stderr in the same file), waits until the
worker is ready, stops the broker and counts the lines written in the next 10 s. Before the
rate limit this was about 1,550 lines (aiokafka logging every reconnect and failed fetch).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from em_service import procs
from em_service.devstack import kafka as devstack
from em_service.settings import Settings
from tests.helpers import unique_name, wait_for

OUTAGE_S = 10.0
#: Lines allowed in OUTAGE_S: each distinct error once, then a summary per key (the old code: ~1,550).
MAX_LINES = 40


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.kafka
@pytest.mark.slow
def test_a_broker_outage_gives_a_bounded_log(kafka_settings: Settings, tmp_path: Path) -> None:
    port, cport, metrics = _free_ports(3)
    broker = kafka_settings.model_copy(
        update={
            "state_dir": tmp_path / "broker",
            "kafka_port": port,
            "kafka_controller_port": cport,
            "kafka_heap": "-Xmx384m -Xms64m",
        }
    )
    state = tmp_path / "svc"
    state.mkdir(mode=0o700)
    tag = unique_name("logs")
    env = {
        "EM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "EM_STATE_DIR": str(state),
        "EM_APP_ID": tag,
        "EM_WORKER_METRICS_PORT": str(metrics),
    }
    log = state / "worker.log"
    devstack.up(broker)
    try:
        procs.spawn("worker", ["worker"], state, env)
        try:
            wait_for(lambda: _ready(metrics), 120, 0.5, what="the worker to be ready")
            devstack.down(broker)
            before = len(log.read_text().splitlines())
            time.sleep(OUTAGE_S)  # the outage itself: nothing to poll for
            text = log.read_text()
        finally:
            procs.stop("worker", state)
    finally:
        devstack.down(broker)
    written = text.splitlines()[before:]
    assert any("aiokafka" in line and "[repeated " in line for line in written), text[-3000:]
    assert len(written) < MAX_LINES, "\n".join(written)
    assert log.stat().st_mode & 0o777 == 0o600
