"""Small aiokafka helpers shared by the demo, tests and benches: send, mark, read from a mark."""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


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
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.end_offsets(tps)
    finally:
        await consumer.stop()


async def read_since(
    bootstrap: str,
    topic: str,
    mark: dict[TopicPartition, int] | None,
    *,
    want: int,
    timeout_s: float,
    isolation_level: str = "read_committed",
) -> list[ConsumerRecord]:
    """Return records of ``topic`` after ``mark`` (or from the start) until ``want`` or timeout.

    Reads committed records only by default: the worker writes in Kafka transactions.
    """
    tps = list(mark) if mark else await partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        consumer.assign(tps)
        for tp in tps:
            if mark:
                consumer.seek(tp, mark[tp])
            else:
                await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout_s
        while len(records) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            records += [m for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
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
