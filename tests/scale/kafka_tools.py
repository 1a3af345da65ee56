"""Scale-test helpers: read a whole topic, a consumer group's lag, metrics sums (real broker)."""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord

from em_service import kafka_io
from em_service.scrape import scrape, total


async def _read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    tps = await kafka_io.partitions(bootstrap, topic)
    reader = kafka_io.consumer(bootstrap=bootstrap, max_partition_fetch_bytes=4 << 20)
    await reader.start()
    records: list[ConsumerRecord] = []
    try:
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)  # read_committed: the last stable offsets
        while [tp for tp in tps if await reader.position(tp) < ends[tp]]:
            batch = await reader.getmany(timeout_ms=500, max_records=10_000)
            records += [m for msgs in batch.values() for m in msgs]
    finally:
        await reader.stop()
    return records


def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every committed record of ``topic`` up to its last stable offsets now."""
    return asyncio.run(_read_all(bootstrap, topic))


async def _lag(bootstrap: str, group: str, topic: str) -> int:
    tps = await kafka_io.partitions(bootstrap, topic)
    probe = kafka_io.consumer(bootstrap=bootstrap, group_id=group)  # never joins: no subscribe
    await probe.start()
    try:
        ends = await probe.end_offsets(tps)
        lag = 0
        for tp in tps:
            lag += ends[tp] - (await probe.committed(tp) or 0)
        return lag
    finally:
        await probe.stop()


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of ``topic`` after ``group``'s committed offsets (0: all consumed)."""
    return asyncio.run(_lag(bootstrap, group, topic))


def metric_sum(urls: list[str], name: str) -> float:
    """Sum of a counter over several processes' /metrics (a dead one counts 0)."""
    got = 0.0
    for url in urls:
        try:
            got += total(scrape(url), name)
        except OSError:
            continue
    return got
