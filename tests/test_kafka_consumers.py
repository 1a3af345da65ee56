"""Every Kafka consumer of the service reads committed records only: it is built by
``kafka_io.consumer``, which fixes the isolation level (an aborted transaction's records —
a zombie worker's half-commit — must never become alerts, states or scenes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from em_service import kafka_io
from em_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("em_service", "bench", "simulator", "scripts")
FACTORY = ROOT / "em_service" / "kafka_io.py"


def test_no_consumer_is_built_outside_the_factory() -> None:
    built = re.compile(r"AIOKafkaConsumer\s*\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in SOURCES
        for path in sorted((ROOT / top).rglob("*.py"))
        if path != FACTORY
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if built.search(line)
    ]
    assert offenders == [], "build consumers with kafka_io.consumer (reads committed only)"
    assert built.search(FACTORY.read_text())  # the scan looks for the right thing


async def test_the_factory_reads_committed_and_cannot_be_told_otherwise() -> None:
    consumer = kafka_io.consumer("t", bootstrap="127.0.0.1:1", group_id="g")
    assert consumer._isolation_level == "read_committed"
    assert consumer._enable_auto_commit is False  # offsets are committed after the work
    with pytest.raises(TypeError, match="read committed"):
        kafka_io.consumer(bootstrap="127.0.0.1:1", isolation_level="read_uncommitted")


def test_the_service_builds_producers_only_with_the_size_limit_factory() -> None:
    # Every producer of em_service sends at most EM_KAFKA_MAX_MESSAGE_BYTES (em_service.limits).
    built = re.compile(r"AIOKafkaProducer\s*\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "em_service").rglob("*.py"))
        if path != FACTORY
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if built.search(line)
    ]
    assert offenders == [], "build producers with kafka_io.producer (the size limit is fixed)"


async def test_the_producer_factory_fixes_the_size_limit() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", kafka_max_message_bytes=2_000_000)
    producer = kafka_io.producer(settings, transactional_id="t")
    assert producer._max_request_size == 2_000_000
    with pytest.raises(TypeError, match="EM_KAFKA_MAX_MESSAGE_BYTES"):
        kafka_io.producer(settings, max_request_size=5)
