"""Escalation with real processes (broker, archiver, API): an unacknowledged critical alert is
escalated at EM_ESCALATE_AFTER_S and again at twice that, across restarts of the archiver and
the API, exactly once per level even with two archivers — seen over SSE, by a signed duty-channel
webhook on a local receiver, in the audit log and in em_alerts_escalated_total.

Time is moved by restarting the processes with ``EM_WALL_CLOCK_OFFSET_S`` (no sleeping ten
minutes): the alerts are stored at offset 0, then the clock is 11 and 21 minutes later."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from em_service import kafka_io
from em_service.clock import wall_now
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from em_service.store import audit, tokens
from em_service.store.models import AlertEvent, AlertRow, AuditEntry
from tests.database import Database
from tests.service_env import ServiceEnv, free_port
from tests.store.factories import alert

pytestmark = pytest.mark.kafka
SECRET = "test-only-duty-key"  # simulated
AFTER_S = 600


class Duty(ThreadingHTTPServer):
    """The duty channel: keeps (event JSON, signature ok) of each POST."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bool]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/duty"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Duty = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ts = self.headers["X-EM-Timestamp"]
        mac = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256)
        ok = hmac.compare_digest("sha256=" + mac.hexdigest(), self.headers["X-EM-Signature"])
        server.received.append((json.loads(body), ok))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def duty() -> Iterator[Duty]:
    server = Duty()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _escalated(store) -> list[tuple[str, int]]:
    with store.read() as s:
        q = select(AlertEvent).where(AlertEvent.kind == "escalated").order_by(AlertEvent.id)
        return [(e.alert_id, e.level) for e in s.scalars(q)]


def _sse_until_escalated(url: str, auth: dict[str, str]) -> list[dict]:
    """Read the SSE stream from the start until an escalated event; return the events read."""
    seen: list[dict] = []
    headers = {**auth, "Last-Event-ID": "0"}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(5, read=30)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1]["kind"] == "escalated":
                    return seen
    raise AssertionError(f"stream ended without an escalated event: {seen}")


def test_escalation_survives_restarts_and_happens_once(
    kafka_bootstrap: str, tmp_path: Path, database: Database, duty: Duty
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env |= database.env() | {
        "EM_ESCALATE_AFTER_S": str(AFTER_S),
        "EM_ESCALATION_INTERVAL_S": "0.3",
        "EM_ESCALATION_WEBHOOK_URL": duty.url,
        "EM_WEBHOOK_SECRET": SECRET,
        "EM_WEBHOOK_POLL_INTERVAL_S": "0.2",
    }
    ensure_topics(env.settings, kafka_bootstrap)
    store = database.store()
    with store.write() as s:
        token = tokens.create_token(s, name="officer-1", role="officer", caseload=["off-1"])
    auth = {"Authorization": f"Bearer {token}"}
    archiver_metrics: list[str] = []

    def start(offset_s: float, archivers: int = 1) -> str:
        env.env["EM_WALL_CLOCK_OFFSET_S"] = str(offset_s)
        archiver_metrics.clear()
        env.env["EM_ARCHIVER_METRICS_PORT"] = str(free_port())
        archiver_metrics.append(f"http://127.0.0.1:{env.env['EM_ARCHIVER_METRICS_PORT']}/metrics")
        base = env.start_archiver_and_api()
        for i in range(1, archivers):  # more archivers: same group, own metrics port
            env.env["EM_ARCHIVER_METRICS_PORT"] = str(free_port())
            archiver_metrics.append(
                f"http://127.0.0.1:{env.env['EM_ARCHIVER_METRICS_PORT']}/metrics"
            )
            env.start("archiver", log_name=f"archiver{i}")
        return base

    def escalation_runs_after(t: float) -> bool:
        """True once every archiver has finished an escalation run that began after ``t``."""
        return all(
            total(scrape(url), "em_escalation_last_run_timestamp_seconds") > t + 1
            for url in archiver_metrics
        )

    def restart(offset_s: float, archivers: int = 1) -> str:
        env.stop_all()
        env.procs.clear()
        return start(offset_s, archivers)

    ids = {
        "open": "alert-esc-open-0001",
        "ackd": "alert-esc-ackd-0001",
        "warn": "alert-esc-warn-0001",
        "supp": "alert-esc-supp-0001",
    }
    messages = [
        alert(ids["open"], occurred_at=wall_now()),
        alert(ids["ackd"], type="curfew_breach", occurred_at=wall_now()),
        alert(ids["warn"], type="battery_low", occurred_at=wall_now()),
        alert(ids["supp"], details={"suppressed": {"suspension_id": "s-1"}}),
    ]
    try:
        base = start(0)
        asyncio.run(
            kafka_io.send_all(
                kafka_bootstrap,
                env.settings.topic_alerts,
                [(b"off-1", encode(m)) for m in messages],
            )
        )

        def stored() -> bool:
            with store.read() as s:
                return len(s.scalars(select(AlertRow.alert_id)).all()) == len(messages)

        env.wait_until(stored, 30, what="the alerts to be stored")
        r = httpx.post(f"{base}/api/v1/alerts/{ids['ackd']}/acknowledge", headers=auth, timeout=5)
        assert r.status_code == 200, r.text
        t = time.time()
        env.wait_until(lambda: escalation_runs_after(t), 30, what="an escalation run")
        assert _escalated(store) == []  # nothing is due yet

        # 11 minutes later (restarted): level 1 for the open critical alert only.
        base = restart(AFTER_S + 60)
        env.wait_until(lambda: duty.received, 30, what="the duty channel")
        seen = _sse_until_escalated(f"{base}/api/v1/alerts/stream", auth)
        assert [(e["alert"]["alert_id"], e["level"]) for e in seen if e["kind"] == "escalated"] == [
            (ids["open"], 1)
        ]
        assert seen[-1]["alert"]["escalation_level"] == 1
        event, ok = duty.received[0]
        assert ok and (event["kind"], event["level"]) == ("escalated", 1)
        assert event["alert"]["alert_id"] == ids["open"]

        # Restarted again at the same time: level 1 is not raised twice.
        restart(AFTER_S + 60)
        t = time.time()
        env.wait_until(lambda: escalation_runs_after(t), 30, what="an escalation run")
        assert _escalated(store) == [(ids["open"], 1)]

        # 21 minutes later, two archivers: level 2, once.
        restart(2 * AFTER_S + 60, archivers=2)
        env.wait_until(lambda: len(duty.received) >= 2, 30, what="the level-2 duty call")
        t = time.time()
        env.wait_until(lambda: escalation_runs_after(t), 30, what="both archivers to run")
        time.sleep(1.0)  # give a duplicate duty call (there must be none) time to arrive
        assert _escalated(store) == [(ids["open"], 1), (ids["open"], 2)]
        assert [(e["alert"]["alert_id"], e["level"]) for e, _ in duty.received] == [
            (ids["open"], 1),
            (ids["open"], 2),
        ]
        assert all(ok for _, ok in duty.received)
        raised = sum(
            total(scrape(url), "em_alerts_escalated_total", level="2") for url in archiver_metrics
        )
        assert raised == 1
        with store.read() as s:
            logged = s.scalars(
                select(AuditEntry.detail_json).where(AuditEntry.action == "alert.escalate")
            ).all()
            assert sorted(json.loads(d)["level"] for d in logged) == [1, 2]
            assert audit.verify(s).ok
            assert s.get(AlertRow, ids["ackd"]).escalation_level == 0
            assert s.get(AlertRow, ids["supp"]).escalation_level == 0
    finally:
        env.stop_all()
        store.dispose()
