"""Small aiokafka helpers: the one consumer factory, and send, mark, read from a mark.

Every consumer of the service is built by :func:`consumer`, which reads committed records only:
the worker and the scenes consumer write in Kafka transactions, and a record of an aborted
transaction (a zombie worker's half-commit) must never become an alert, a state or a scene.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

if TYPE_CHECKING:
    from em_service.settings import Settings


def consumer(*topics: str, bootstrap: str, **options: Any) -> AIOKafkaConsumer:
    """Return an ``AIOKafkaConsumer`` that reads committed records only (not started).

    Offsets are committed by hand unless ``enable_auto_commit`` says otherwise; the isolation
    level cannot be changed.
    """
    if "isolation_level" in options:
        raise TypeError("consumers always read committed records (isolation_level is fixed)")
    options.setdefault("enable_auto_commit", False)
    return AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, isolation_level="read_committed", **options
    )


def producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """Return an ``AIOKafkaProducer`` of the service (not started): acks=all, idempotent, and
    ``max_request_size`` = ``EM_KAFKA_MAX_MESSAGE_BYTES`` (fixed: the limits are set together,
    see :mod:`em_service.limits`)."""
    if "max_request_size" in options:
        raise TypeError("max_request_size is EM_KAFKA_MAX_MESSAGE_BYTES (em_service.limits)")
    options.setdefault("acks", "all")
    options.setdefault("enable_idempotence", True)
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        max_request_size=settings.kafka_max_message_bytes,
        **options,
    )


async def partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    """Return the partitions of ``topic`` (empty if it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if desc["error_code"]:
        return []
    return [TopicPartition(topic, p["partition"]) for p in desc["partitions"]]


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """Return the current end offset of every partition of ``topic`` (a mark to read from)."""
    tps = await partitions(bootstrap, topic)
    if not tps:
        return {}
    reader = consumer(bootstrap=bootstrap)
    await reader.start()
    try:
        return await reader.end_offsets(tps)
    finally:
        await reader.stop()


async def read_since(
    bootstrap: str,
    topic: str,
    mark: dict[TopicPartition, int] | None,
    *,
    want: int,
    timeout_s: float,
) -> list[ConsumerRecord]:
    """Return the committed records of ``topic`` after ``mark`` (or from the start) until
    ``want`` or timeout."""
    tps = list(mark) if mark else await partitions(bootstrap, topic)
    reader = consumer(bootstrap=bootstrap)
    await reader.start()
    records: list[ConsumerRecord] = []
    try:
        reader.assign(tps)
        for tp in tps:
            if mark:
                reader.seek(tp, mark[tp])
            else:
                await reader.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout_s
        while len(records) < want and time.monotonic() < deadline:
            batch = await reader.getmany(timeout_ms=200)
            records += [m for msgs in batch.values() for m in msgs]
    finally:
        await reader.stop()
    return records


async def send_all(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    *,
    max_request_size: int = 1_048_576,
) -> int:
    """Send ``(key, value)`` pairs with acks=all and wait for all of them; return the count.

    A record larger than ``max_request_size`` (``EM_KAFKA_MAX_MESSAGE_BYTES``) raises
    ``MessageSizeTooLargeError`` before anything is sent.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=max_request_size
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        for fut in futures:
            await fut
    finally:
        await producer.stop()
    return len(futures)


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> list[str]:
    """Create the missing topics among ``names`` (replication 1); return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            await admin.create_topics([NewTopic(n, partitions, 1) for n in missing])
        return missing
    finally:
        await admin.close()
