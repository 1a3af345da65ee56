"""Webhook outlet against a local receiver on 127.0.0.1 that checks the HMAC-SHA256 signature:
caseload filtering, retry after a failure, give-up recorded, a dead receiver blocks no one."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from em_service.api import webhook
from em_service.settings import WebhookTarget
from em_service.store import alerts
from em_service.store.models import OutletFailure
from tests.api.conftest import Api, make_api
from tests.database import Database
from tests.service_env import free_port, wait_until
from tests.store.factories import alert

SECRET = "test-only-webhook-key"  # simulated; real keys come from EM_WEBHOOK_SECRET


class Receiver(ThreadingHTTPServer):
    """Answers 500 to the first POST, then 200; keeps (headers, body, signature ok) of each."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes, bool]] = []
        self.posts = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Receiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.posts += 1
        if server.posts == 1:
            self.send_response(500)
            self.end_headers()
            return
        ts = self.headers["X-EM-Timestamp"]
        expected = (
            "sha256="
            + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        ok = hmac.compare_digest(expected, self.headers["X-EM-Signature"])
        ok = ok and abs(time.time() - int(ts)) < 60
        server.received.append((dict(self.headers), body, ok))
        self.send_response(204 if ok else 401)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hooked_api(tmp_path: Path, database: Database, receiver: Receiver) -> Iterator[Api]:
    targets = [
        WebhookTarget(name="iom-a", url=receiver.url, principal="officer-1"),
        WebhookTarget(name="dead", url=f"http://127.0.0.1:{free_port()}/gone"),
    ]
    yield from make_api(
        tmp_path,
        database,
        None,
        webhooks=targets,
        webhook_secret=SECRET,
        webhook_backoff_initial_s=0.05,
        webhook_max_attempts=3,
        webhook_poll_interval_s=0.05,
        webhook_timeout_s=2.0,
    )


def _metric(name: str, target: str) -> float:
    return REGISTRY.get_sample_value(name, {"target": target}) or 0.0


def test_signed_deliveries_with_retry_and_give_up(hooked_api: Api, receiver: Receiver) -> None:
    failed_before = _metric("em_webhook_attempt_failures_total", "iom-a")
    given_up_before = _metric("em_webhook_failures_total", "dead")
    wait_until(lambda: _count_cursors(hooked_api) == 2, 10, what="both targets to start")
    with hooked_api.store.write() as s:
        alerts.apply_alert(s, alert("alert-hook-1", offender_id="off-1"))
        alerts.apply_alert(s, alert("alert-hook-2", offender_id="off-2"))  # not officer-1's
    hooked_api.client.post(
        "/api/v1/alerts/alert-hook-1/acknowledge", headers=hooked_api.headers("officer")
    )
    wait_until(lambda: len(receiver.received) >= 2, 15, what="two deliveries")
    bodies = [json.loads(body) for _, body, _ in receiver.received]
    assert all(ok for _, _, ok in receiver.received)
    assert [(b["kind"], b["alert"]["alert_id"]) for b in bodies] == [
        ("created", "alert-hook-1"),
        ("acknowledged", "alert-hook-1"),
    ]
    assert "location" not in bodies[0]["alert"]
    headers = receiver.received[0][0]
    assert int(headers["X-EM-Event-Id"]) == bodies[0]["event_id"]
    assert _metric("em_webhook_attempt_failures_total", "iom-a") == failed_before + 1  # the 500
    # The dead receiver gives up on each of its 3 events, recorded for replay.
    wait_until(
        lambda: _metric("em_webhook_failures_total", "dead") >= given_up_before + 3,
        20,
        what="the dead target to give up",
    )
    with hooked_api.store.read() as s:
        failures = s.scalars(select(OutletFailure)).all()
    assert {f.outlet for f in failures} == {"webhook:dead"} and len(failures) == 3
    assert all(f.attempts == 3 for f in failures)


def _count_cursors(api: Api) -> int:
    from em_service.store.models import OutletCursor

    with api.store.read() as s:
        return len(s.scalars(select(OutletCursor)).all())


@pytest.mark.parametrize(
    ("shift_s", "tamper", "ok"),
    [(0, False, True), (0, True, False), (-400, False, False), (400, False, False)],
)
def test_verify_signature(shift_s: int, tamper: bool, ok: bool) -> None:
    now = 1_800_000_000
    body = b'{"event_id":1}'
    signature = webhook.sign(b"k", now + shift_s, body)
    sent = body + b" " if tamper else body
    assert (
        webhook.verify_signature(
            b"k", timestamp=str(now + shift_s), body=sent, signature=signature, now=now
        )
        is ok
    )
