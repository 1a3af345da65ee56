"""End to end on the real broker: the archiver stores every valid reading, alert and condition
exactly once — through duplicates on the topic, a crash (SIGKILL) and a full re-delivery."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from em_service import kafka_io
from em_service.clock import wall_now
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from em_service.store import Store
from em_service.store.models import AlcoholSample, AlertEvent, AlertRow, DeviceAssignment, Fix
from tests.database import Database
from tests.service_env import ServiceEnv, free_port
from tests.store.factories import alert, conditions, ended

pytestmark = pytest.mark.kafka
N_FIXES = 120


def _messages(now: datetime) -> tuple[list, list, list]:
    readings = [
        (
            b"tag-1",
            json.dumps(
                {
                    "type": "gps",
                    "device_id": "tag-1",
                    "ts": (now - timedelta(seconds=N_FIXES - i)).isoformat(),
                    "lat": 51.45 + i * 1e-5,
                    "lon": -0.97,
                    "accuracy_m": 6.0,
                    "seq": i,
                }
            ).encode(),
        )
        for i in range(N_FIXES)
    ]
    readings += [
        (
            b"scram-1",
            json.dumps(
                {
                    "type": "alcohol",
                    "device_id": "scram-1",
                    "ts": now.isoformat(),
                    "tac_g_dl": 0.0,
                    "skin_temp_c": 33.0,
                    "ir_value": 900.0,
                }
            ).encode(),
        ),
        (b"tag-1", b"{not json"),  # the worker dead-letters it; the archiver skips it
        (b"tag-1", json.dumps({"type": "gps", "device_id": "tag-1"}).encode()),
        (
            b"tag-1",
            json.dumps(
                {
                    "type": "event",
                    "device_id": "tag-1",
                    "ts": now.isoformat(),
                    "event": "battery_low",
                }
            ).encode(),
        ),
    ]
    first = alert("alert-arch-01", occurred_at=now - timedelta(minutes=5))
    alerts = [
        (b"off-1", encode(m)) for m in (first, first, ended(first, after=timedelta(minutes=1)))
    ]
    conds = [(b"off-1", encode(conditions("off-1", ["tag-1", "scram-1"])))]
    return readings, alerts, conds


def _counts(store: Store) -> dict[str, int]:
    with store.read() as s:
        return {
            name: s.scalar(select(func.count()).select_from(model))
            for name, model in [
                ("fixes", Fix),
                ("alcohol", AlcoholSample),
                ("alerts", AlertRow),
                ("events", AlertEvent),
                ("assignments", DeviceAssignment),
            ]
        }


EXPECTED = {"fixes": N_FIXES, "alcohol": 1, "alerts": 1, "events": 2, "assignments": 2}


def test_archiver_is_idempotent_under_redelivery(
    kafka_bootstrap: str, tmp_path: Path, database: Database
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env |= database.env()
    port = free_port()
    env.env["EM_ARCHIVER_METRICS_PORT"] = str(port)
    env.env["EM_ARCHIVER_RETENTION_INTERVAL_S"] = "3600"
    url = f"http://127.0.0.1:{port}/metrics"
    ensure_topics(env.settings, kafka_bootstrap)
    readings, alerts, conds = _messages(wall_now())
    s = env.settings

    def send_all() -> None:
        async def go() -> None:
            await kafka_io.send_all(kafka_bootstrap, s.topic_conditions, conds)
            await kafka_io.send_all(kafka_bootstrap, s.topic_readings, readings)
            await kafka_io.send_all(kafka_bootstrap, s.topic_alerts, alerts)

        asyncio.run(go())

    def offered(at_least: int) -> bool:
        samples = scrape(url)
        return (
            total(samples, "em_archiver_records_total", topic="readings", outcome="fixes_offered")
            >= at_least
            and total(samples, "em_archiver_lag_records") == 0
        )

    store = database.store()
    try:
        archiver = env.start("archiver", log_name="archiver")
        send_all()
        send_all()  # every message twice on the topics
        env.wait_until(lambda: offered(2 * N_FIXES), 60, what="both copies archived")
        assert _counts(store) == EXPECTED
        samples = scrape(url)
        assert total(samples, "em_archiver_records_total", topic="readings", outcome="invalid") == 4
        assert total(samples, "em_db_write_batch_rows_count") > 0
        assert total(samples, "em_db_write_seconds_count") > 0

        # A crash: SIGKILL, restart in the same group, and the same messages a third time.
        env.stop(archiver, sig=signal.SIGKILL)
        env.procs.remove(archiver)
        archiver = env.start("archiver", log_name="archiver")
        send_all()
        env.wait_until(lambda: offered(N_FIXES), 60, what="the third copy archived")
        assert _counts(store) == EXPECTED

        # Full re-delivery: a new consumer group reads all three copies from the start.
        env.stop(archiver)
        env.procs.remove(archiver)
        env.env["EM_APP_ID"] = f"em-test-{env.tag}-replay"
        env.start("archiver", log_name="archiver")
        env.wait_until(lambda: offered(3 * N_FIXES), 60, what="the full replay archived")
        assert _counts(store) == EXPECTED
        with store.read() as ses:
            row = ses.get(AlertRow, "alert-arch-01")
        assert row.ended_alert_id == "alert-arch-01-ended" and row.status == "open"
    finally:
        env.stop_all()
        store.dispose()


def test_a_failed_batch_is_rewound_only_on_partitions_still_held(
    kafka_bootstrap: str, unique_topic_prefix: str
) -> None:
    """A rebalance during a failed write took a partition away: seeking it raised
    IllegalStateError and stopped the archiver (seen with two archivers on PostgreSQL)."""
    from aiokafka import TopicPartition
    from aiokafka.structs import ConsumerRecord

    from em_service.kafka_io import rewind

    topic = f"{unique_topic_prefix}.alerts"

    def record(partition: int, offset: int) -> ConsumerRecord:
        return ConsumerRecord(topic, partition, offset, 0, 0, None, b"{}", None, 2, 0, [])

    async def go() -> int:
        await kafka_io.send_all(kafka_bootstrap, topic, [(b"k", b"{}")] * 5)
        consumer = kafka_io.consumer(bootstrap=kafka_bootstrap, group_id=None)
        await consumer.start()
        try:
            held, gone = TopicPartition(topic, 0), TopicPartition(topic, 1)
            consumer.assign([held])
            await consumer.seek_to_end(held)
            rewind(consumer, {held: [record(0, 2), record(0, 3)], gone: [record(1, 7)]})
            return await consumer.position(held)
        finally:
            await consumer.stop()

    assert asyncio.run(go()) == 2
