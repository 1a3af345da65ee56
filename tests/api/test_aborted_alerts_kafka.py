"""Over the wire: an alert written in a Kafka transaction that was then aborted (a zombie
worker's half-commit) never becomes an alert — not in the store, not at ``GET /alerts/{id}``,
not on the SSE stream, not at a webhook — while committed alerts around it do (real archiver,
real API, real broker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from em_service.contracts import Alert
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.store import Store, tokens
from em_service.store.models import AlertEvent, AlertRow, OutletCursor
from tests.api.test_sse_kafka import SseClient
from tests.database import Database
from tests.helpers import unique_name
from tests.service_env import ServiceEnv
from tests.store.factories import alert, ended

pytestmark = pytest.mark.kafka
SECRET = "test-only-webhook-key"  # simulated


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.put(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class _Sse(SseClient):
    """An SSE reader whose stream may be cut when the API stops at the end of the test."""

    def run(self) -> None:
        with contextlib.suppress(httpx.TransportError):
            super().run()


@pytest.fixture
def hook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.bodies = queue.Queue()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def _zombie_then_committed(bootstrap: str, topic: str, steps: list[tuple[Alert, bool]]):
    """Send each alert in its own transaction, committed or aborted, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique_name("tx"))
    await producer.start()
    try:
        for message, commit in steps:
            await producer.begin_transaction()
            await (await producer.send(topic, encode(message), key=b"off-1"))
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()


def _cursors(store: Store) -> int:
    with store.read() as s:
        return s.query(OutletCursor).count()


async def _raw_alert_ids(bootstrap: str, topic: str) -> list[str]:
    """Every alert id physically on ``topic``, aborted ones included (read_uncommitted)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        isolation_level="read_uncommitted",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=unique_name("raw"),
    )
    await consumer.start()
    ids: list[str] = []
    try:
        async with asyncio.timeout(20):
            while len(ids) < 4:
                batch = await consumer.getmany(timeout_ms=200)
                ids += [json.loads(r.value)["alert_id"] for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return ids


def test_aborted_alerts_are_never_stored_served_or_pushed(
    kafka_bootstrap: str, tmp_path: Path, hook: ThreadingHTTPServer, database: Database
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env |= database.env()
    hook_url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    env.env |= {
        "EM_WEBHOOKS": json.dumps([{"name": "iom", "url": hook_url, "principal": "officer-1"}]),
        "EM_WEBHOOK_SECRET": SECRET,
        "EM_WEBHOOK_POLL_INTERVAL_S": "0.05",
    }
    ensure_topics(env.settings, kafka_bootstrap)
    store = database.store()
    with store.write() as s:
        token = tokens.create_token(s, name="officer-1", role="officer", caseload=["off-1"])
    base = f"http://127.0.0.1:{env.api_port}"
    auth = {"Authorization": f"Bearer {token}"}
    topic = env.settings.topic_alerts
    real, later = alert("alert-real-0001"), alert("alert-real-0002")
    steps = [
        (alert("alert-ghost-0001"), False),  # a zombie's alert, aborted
        (real, True),
        (ended(real), False),  # a zombie closing a real alert, aborted
        (later, True),
    ]
    try:
        env.start_archiver_and_api()
        env.wait_until(lambda: _cursors(store) == 1, 30, what="the webhook outlet to start")
        client = _Sse(f"{base}/api/v1/alerts/stream", auth)
        client.start()
        assert client.connected.wait(10)

        asyncio.run(_zombie_then_committed(kafka_bootstrap, topic, steps))
        # The aborted records are on the topic: only the isolation level keeps them out.
        raw = asyncio.run(_raw_alert_ids(kafka_bootstrap, topic))
        assert raw == [m.alert_id for m, _ in steps]

        def get(alert_id: str) -> httpx.Response:
            return httpx.get(f"{base}/api/v1/alerts/{alert_id}", headers=auth, timeout=5)

        env.wait_until(lambda: get(later.alert_id).status_code == 200, 30, what="the 2nd alert")
        # Same partition, in order: the archiver has passed both aborted transactions.
        assert get("alert-ghost-0001").status_code == 404
        assert get(real.alert_id).json()["status"] == "open"
        with store.read() as s:
            stored = {row.alert_id: row.status for row in s.query(AlertRow)}
            kinds = [(e.kind, e.alert_id) for e in s.query(AlertEvent).order_by(AlertEvent.id)]
        assert stored == {real.alert_id: "open", later.alert_id: "open"}
        assert kinds == [("created", real.alert_id), ("created", later.alert_id)]

        streamed = [client.next(timeout_s=10)[1] for _ in range(2)]
        assert [(e["kind"], e["alert"]["alert_id"]) for e in streamed] == kinds
        pushed = [hook.bodies.get(timeout=10) for _ in range(2)]  # type: ignore[attr-defined]
        assert [(b["kind"], b["alert"]["alert_id"]) for b in pushed] == kinds
        client.stop.set()
    finally:
        env.stop_all()
        store.dispose()
