"""Follow the compacted conditions topic into the worker's :class:`ConditionsRegistry`.

Every worker reads *all* partitions from the beginning (like a Kafka Streams GlobalKTable whose
changelog is the compacted topic itself), and signals ``ready`` once it has caught up, so no
reading is evaluated before everyone's conditions are known.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

from em_service import kafka_io, metrics
from em_service.conditions.registry import ConditionsRegistry
from em_service.conditions.validate import InvalidConditions
from em_service.text import without_coordinates

log = logging.getLogger(__name__)


async def follow_conditions(
    registry: ConditionsRegistry, bootstrap: str, topic: str, ready: asyncio.Event
) -> None:
    """Apply every conditions event to ``registry`` forever; set ``ready`` when caught up."""
    tps = await kafka_io.partitions(bootstrap, topic)
    consumer = kafka_io.consumer(bootstrap=bootstrap)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=250)
            for records in batch.values():
                for record in records:
                    _apply(registry, record.key, record.value)
            if not ready.is_set() and await _caught_up(consumer, end):
                log.info("conditions loaded for %d offenders", len(registry))
                ready.set()
    finally:
        await consumer.stop()


async def _caught_up(consumer: AIOKafkaConsumer, end: dict) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True


def _apply(registry: ConditionsRegistry, key: bytes | None, value: bytes | None) -> None:
    if key is None:
        metrics.CONDITIONS_REJECTED.inc()
        log.warning("conditions event without a key (offender_id) ignored")
        return
    offender_id = key.decode("utf-8", "replace")
    try:
        registry.apply(offender_id, value)
        metrics.CONDITIONS_APPLIED.inc()
    except InvalidConditions as exc:  # the archiver records it for the API (same check)
        metrics.CONDITIONS_REJECTED.inc()
        log.error(
            "conditions for %s rejected, previous version stays in force: %s",
            offender_id,
            without_coordinates(str(exc)),
        )
