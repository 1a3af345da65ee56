"""Over the wire: an alert that lands on the alerts topic reaches an SSE client of the real API
within a second (real archiver, real broker, real uvicorn), and a reconnect with Last-Event-ID
gets what was missed."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from pathlib import Path

import httpx
import pytest

from em_service import kafka_io
from em_service.clock import wall_now
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.store import tokens
from tests.database import Database
from tests.service_env import ServiceEnv
from tests.store.factories import alert

pytestmark = pytest.mark.kafka


class SseClient(threading.Thread):
    """Reads one SSE stream in a thread; puts (monotonic time, event dict) on a queue."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.events: queue.Queue = queue.Queue()
        self.connected = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as client,
            client.stream("GET", self.url, headers=self.headers) as response,
        ):
            assert response.status_code == 200
            self.connected.set()
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if not line:
                    if "data" in fields:
                        event = {"id": int(fields["id"]), **json.loads(fields["data"])}
                        self.events.put((time.monotonic(), event))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value

    def next(self, timeout_s: float) -> tuple[float, dict]:
        return self.events.get(timeout=timeout_s)


def test_sse_gets_a_new_alert_within_a_second(
    kafka_bootstrap: str, tmp_path: Path, database: Database
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env |= database.env()
    ensure_topics(env.settings, kafka_bootstrap)
    store = database.store()
    with store.write() as s:
        token = tokens.create_token(s, name="officer-1", role="officer", caseload=["off-1"])
    store.dispose()
    base = f"http://127.0.0.1:{env.api_port}"
    topic = env.settings.topic_alerts
    stream_url = f"{base}/api/v1/alerts/stream"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        env.start_archiver_and_api()
        client = SseClient(stream_url, auth)
        client.start()
        assert client.connected.wait(10)

        def send(a) -> float:
            asyncio.run(kafka_io.send_all(kafka_bootstrap, topic, [(b"off-1", encode(a))]))
            return time.monotonic()  # acknowledged by the broker: the alert has landed

        landed = send(alert("alert-sse-0001", occurred_at=wall_now()))
        received, event = client.next(timeout_s=10)
        assert event["kind"] == "created" and event["alert"]["alert_id"] == "alert-sse-0001"
        print(f"SSE: alert on the topic → client in {received - landed:.3f} s")
        assert received - landed < 1.0, f"took {received - landed:.3f} s"
        client.stop.set()

        # Disconnected: two more alerts (one someone else's), then resume from the last id.
        send(alert("alert-sse-0002", offender_id="off-2"))
        send(alert("alert-sse-0003", offender_id="off-1"))
        resumed = SseClient(stream_url, {**auth, "Last-Event-ID": str(event["id"])})
        resumed.start()
        _, missed = resumed.next(timeout_s=10)
        assert missed["alert"]["alert_id"] == "alert-sse-0003"  # off-2 is not on the caseload
        resumed.stop.set()
    finally:
        env.stop_all()
