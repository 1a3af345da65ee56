"""Follow the victim topic into every worker's :class:`~em_service.rules.victims.VictimPositions`.

Person and victim devices have different keys, so the two streams are not co-partitioned: a
person's fix is processed by whichever worker owns the person's device partition, and the victim
may be on any partition. Rather than repartition by offender, every worker reads *all* of the
short-retention victim topic into memory (like the conditions registry: a small global table of
victims' recent fixes) before it evaluates any reading, and a restarted worker rebuilds it by
reading the topic again from its beginning (the retention, ``EM_RETENTION_VICTIM_S``).

Bad records are dead-lettered once, by a second consumer in group ``<app_id>-victim-letters``
(each partition read by one worker), to ``em.victim_readings.dlq`` (short retention too: a victim
reading's bytes hold a position); the letters are acknowledged before the offsets are committed,
so none is lost (a crash in between may send one twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import get_args

from em_service import failures, kafka_io, metrics
from em_service.clock import wall_now
from em_service.contracts import DeadLetter
from em_service.contracts.codec import dead_letter_key, encode
from em_service.contracts.dlq import DlqReason
from em_service.rules.victims import VictimFix, VictimPositions
from em_service.settings import Settings
from em_service.tracking.intake import Source, triage_victim
from geofences.projection import Projector, get_projector

log = logging.getLogger(__name__)


async def follow_victims(
    positions: VictimPositions,
    settings: Settings,
    ready: asyncio.Event,
    *,
    clock: Callable[[], datetime | None],
) -> None:
    """Put every valid victim fix into ``positions`` forever; set ``ready`` when caught up.

    ``clock`` is the rule clock (None before the first reading): fixes older than the retention
    behind it are forgotten.
    """
    topic = settings.topic_victim_readings
    projector = get_projector(settings.projected_crs)
    tps = await kafka_io.partitions(settings.kafka_bootstrap, topic)
    if not tps:
        raise RuntimeError(f"topic {topic} does not exist (create the topics)")
    consumer = kafka_io.consumer(bootstrap=settings.kafka_bootstrap)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=250)
            now = wall_now(settings)
            for records in batch.values():
                for rec in records:
                    got = victim_item(rec, settings, now, projector, report=False)
                    if isinstance(got, DeadLetter):
                        continue  # the letter is written by dead_letter_victims
                    positions.put(*got)
                    metrics.VICTIM_FIXES.inc()
            rule_now = clock()
            if rule_now is not None:
                positions.prune(
                    (rule_now - timedelta(seconds=settings.retention_victim_s)).timestamp()
                )
            metrics.VICTIMS_TRACKED.set(len(positions))
            reads, positions.reads = positions.reads, 0
            metrics.VICTIM_READS.inc(reads)
            if not ready.is_set() and await _caught_up(consumer, end):
                log.info("victim positions loaded for %d victims", len(positions))
                ready.set()
    finally:
        await consumer.stop()


def victim_item(
    rec, settings: Settings, now: datetime, projector: Projector, *, report: bool
) -> tuple[str, VictimFix] | DeadLetter:
    """Return a victim record's fix or its dead letter; a record whose handling raises is a
    ``processing_error`` letter (``report``: log and count it; only the letter writer does), so
    no record can stop a worker (``EM_FAIL_FAST`` re-raises)."""
    source = Source(rec.topic, rec.partition, rec.offset, rec.key)
    try:
        return triage_victim(rec.value, source, settings, now, projector)
    except Exception as exc:
        if settings.fail_fast:
            raise
        where = f"victims {rec.partition}@{rec.offset}"
        rejected = (
            failures.record_failed("worker", where, exc)
            if report
            else failures.processing_error(exc)
        )
        return failures.letter_for(rec, rejected, settings, now)


async def _caught_up(consumer, end: dict) -> bool:
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return False
    return True


async def dead_letter_victims(settings: Settings) -> None:
    """Dead-letter invalid records of the victim topic, each once, forever."""
    for reason in get_args(DlqReason):  # exported at 0, so that a first rejection is an increase
        metrics.VICTIM_REJECTED.labels(reason)
    projector = get_projector(settings.projected_crs)
    consumer = kafka_io.consumer(
        settings.topic_victim_readings,
        bootstrap=settings.kafka_bootstrap,
        group_id=f"{settings.app_id}-victim-letters",
        auto_offset_reset="earliest",
    )
    producer = kafka_io.producer(settings)
    await producer.start()
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                continue
            now = wall_now(settings)
            sent = []
            for records in batch.values():
                for rec in records:
                    got = victim_item(rec, settings, now, projector, report=True)
                    if not isinstance(got, DeadLetter):
                        continue
                    metrics.VICTIM_REJECTED.labels(got.reason).inc()
                    log.info(
                        "victim reading dead-lettered %s@%s: %s",
                        rec.partition,
                        rec.offset,
                        got.reason,
                    )
                    key = dead_letter_key(rec.key) if rec.key is not None else None
                    sent.append(
                        await producer.send(settings.topic_victim_dlq, encode(got), key=key)
                    )
            await asyncio.gather(*sent)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
