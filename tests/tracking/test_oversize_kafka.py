"""Oversize readings on the real broker, through the real worker process.

A reading up to Kafka's limit reaches the worker; above ``EM_MAX_MESSAGE_BYTES`` it is
dead-lettered ``oversize`` with its first ``EM_MAX_MESSAGE_BYTES`` bytes, its size and SHA-256,
and the worker stays up and goes on. A reading above Kafka's limit is refused when sent (by our
producer, and by the broker if a producer allows it). A worker whose limits contradict each
other or Kafka's refuses to start.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import MessageSizeTooLargeError

from em_service import kafka_io
from em_service.contracts import DeviceEvent
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.limits import dead_letter_capacity, largest_value
from em_service.scrape import scrape, total
from tests.service_env import ServiceEnv
from tests.tracking.scenarios import Person
from tests.trails import ORIGIN_X, ORIGIN_Y

pytestmark = pytest.mark.kafka

KEY = b"tag-big"
TAMPER_AT = datetime(2026, 10, 24, 15, 0, tzinfo=UTC)


def _env(bootstrap: str, path: Path, **env: str) -> ServiceEnv:
    svc = ServiceEnv(bootstrap, path)
    svc.env.update(EM_TOPIC_PARTITIONS="1", EM_MAX_PAST_AGE_S=str(3 * 365 * 86400), **env)
    svc.settings = svc.settings.model_copy(update={"topic_partitions": 1})
    return svc


def _reading(size: int) -> bytes:
    """A GPS-looking reading of exactly ``size`` bytes (varied padding, so prefixes differ)."""
    head, tail = b'{"type":"gps","device_id":"tag-big","pad":"', b'"}'
    fill = size - len(head) - len(tail)
    return head + (b"0123456789abcdef" * (fill // 16 + 1))[:fill] + tail


def _alerts(svc: ServiceEnv) -> list[dict]:
    records = asyncio.run(
        kafka_io.read_since(svc.bootstrap, svc.settings.topic_alerts, None, want=1, timeout_s=2)
    )
    return [json.loads(r.value) for r in records]


async def _send_unchecked(bootstrap: str, topic: str, value: bytes) -> None:
    """Send with a producer that allows far more than the broker (a misconfigured gateway)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=len(value) * 2
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=KEY)
    finally:
        await producer.stop()


def test_oversize_readings_are_dead_lettered_cut_to_size_and_the_worker_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    svc = _env(kafka_bootstrap, tmp_path)
    s = svc.settings
    ensure_topics(s, kafka_bootstrap)
    person = Person("off-big", KEY.decode(), (ORIGIN_X, ORIGIN_Y))
    conditions = json.dumps(person.conditions(curfews=[])).encode()
    asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_conditions, [(b"off-big", conditions)]))
    limit = s.kafka_max_message_bytes
    near_broker = _reading(largest_value(limit, len(KEY)))  # the largest our producer sends
    over_worker = _reading(s.max_message_bytes + 1)
    huge = _reading(5_000_000)
    assert len(near_broker) > dead_letter_capacity(limit)  # today's letter would not fit
    worker = svc.start("worker", log_name="worker")
    try:
        oversize = [(KEY, near_broker), (KEY, over_worker)]
        asyncio.run(
            kafka_io.send_all(kafka_bootstrap, s.topic_readings, oversize, max_request_size=limit)
        )
        with pytest.raises(MessageSizeTooLargeError, match="max_request_size"):
            asyncio.run(
                kafka_io.send_all(
                    kafka_bootstrap, s.topic_readings, [(KEY, huge)], max_request_size=limit
                )
            )
        with pytest.raises(MessageSizeTooLargeError):  # the topic refuses it too
            asyncio.run(_send_unchecked(kafka_bootstrap, s.topic_readings, huge))
        tamper = DeviceEvent(device_id=KEY.decode(), ts=TAMPER_AT, event="strap_tamper")
        asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_readings, [(KEY, encode(tamper))]))
        alerts = svc.wait_until(
            lambda: [a for a in _alerts(svc) if a["type"] == "strap_tamper"],
            timeout_s=90,
            what="the strap tamper alert sent after the oversize readings",
        )
        samples = scrape(svc.metrics_url)
        letters = asyncio.run(
            kafka_io.read_since(kafka_bootstrap, s.topic_dlq, None, want=3, timeout_s=5)
        )
        assert worker.poll() is None, svc.log("worker")
    finally:
        svc.stop_all()
    assert alerts[0]["offender_id"] == "off-big"
    assert total(samples, "em_readings_rejected_total", reason="oversize") == 2
    assert total(samples, "em_readings_rejected_total") == 2  # the 5 MB one never arrived
    assert len(letters) == 2
    for record, raw in zip(letters, (near_broker, over_worker), strict=True):
        letter = json.loads(record.value)
        assert letter["reason"] == "oversize"
        assert letter["truncated"] is True
        assert base64.b64decode(letter["original_b64"]) == raw[: s.max_message_bytes]
        assert letter["original_size"] == len(raw)
        assert letter["original_sha256"] == hashlib.sha256(raw).hexdigest()
        assert record.key == KEY
        assert len(record.value) < s.max_message_bytes * 4 // 3 + 10_000


def _refused(svc: ServiceEnv) -> str:
    """Start the worker, wait for it to exit, and return its log (it must exit with 2)."""
    worker = svc.start("worker", log_name="worker")
    try:
        code = worker.wait(60)
    finally:
        svc.stop_all()
    log = svc.log("worker")
    assert code == 2, log
    assert "em-service worker: refusing to start:" in log
    return log


def test_worker_refuses_a_reading_limit_no_dead_letter_can_carry(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    svc = _env(kafka_bootstrap, tmp_path, EM_MAX_MESSAGE_BYTES="900000")
    log = _refused(svc)
    assert "EM_MAX_MESSAGE_BYTES=900000 is larger than a dead letter can carry" in log


def test_worker_refuses_a_producer_limit_above_the_topics(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    svc = _env(kafka_bootstrap, tmp_path)
    ensure_topics(svc.settings, kafka_bootstrap)  # topics take 1 MiB batches
    svc.env["EM_KAFKA_MAX_MESSAGE_BYTES"] = "2000000"
    log = _refused(svc)
    assert "EM_KAFKA_MAX_MESSAGE_BYTES=2000000" in log
    assert f"{svc.settings.topic_dlq} (1048576)" in log


async def _create(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    finally:
        await admin.close()


def test_worker_refuses_a_topic_that_takes_less_than_the_producers_send(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    svc = _env(kafka_bootstrap, tmp_path)
    asyncio.run(
        _create(kafka_bootstrap, svc.settings.topic_alerts, {"max.message.bytes": "500000"})
    )
    log = _refused(svc)
    assert f"{svc.settings.topic_alerts} (500000)" in log
    assert svc.settings.topic_dlq + " (" not in log  # only the short one is named
