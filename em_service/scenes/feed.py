"""Follow the scenes topic into a worker's :class:`~em_service.scenes.live.LiveMatcher`.

Like the conditions feed: every worker reads *all* partitions from the beginning (no consumer
group), holds the scenes that are open, and keeps following. A null value (tombstone) withdraws
the scene of its key. Closed scenes (judged by the rule clock) are pruned every
``prune_interval_s``. Scenes older than the topic's retention are not seen: ``devstack`` creates
``em.scenes`` compacted by scene_id with a retention of ``open_days`` plus a day. An invalid or
unprojectable scene is logged and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

import msgspec

from em_service import failures, kafka_io
from em_service.clock import wall_now
from em_service.contracts import Scene
from em_service.scenes import metrics
from em_service.scenes.live import LiveMatcher

log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(Scene)


def apply(
    live: LiveMatcher,
    key: bytes | None,
    value: bytes | None,
    *,
    now: datetime | None,
    fail_fast: bool = False,
) -> str | None:
    """Apply one scenes-topic record to ``live`` at rule clock ``now`` (None: no clock yet,
    every scene is open); return the scene id it concerned, if any."""
    if value is None:
        if key:
            live.remove(key.decode("utf-8", "replace"))
            return key.decode("utf-8", "replace")
        return None
    try:
        scene = _decoder.decode(value)
    except (msgspec.MsgspecError, ValueError) as exc:
        metrics.SCENES_INVALID.labels("live").inc()
        log.error("invalid scene ignored by live matching: %s", exc)
        return None
    if not bool(live.projector.to_xy_checked(scene.lon, scene.lat)[2]):
        metrics.SCENES_INVALID.labels("live").inc()
        log.error("unprojectable scene %s ignored by live matching", scene.scene_id)
        return None
    try:
        live.upsert(scene, now=now)
    except Exception as exc:  # one scene must not stop the worker (em_service.failures)
        if fail_fast:
            raise
        failures.RECORDS_FAILED.labels("worker", "processing_error").inc()
        log.error("scene %s ignored by live matching: %r", scene.scene_id, exc, exc_info=exc)
        return None
    return scene.scene_id


async def follow_scenes(
    live: LiveMatcher,
    bootstrap: str,
    topic: str,
    ready: asyncio.Event | None = None,
    *,
    prune_interval_s: float = 60.0,
    clock: Callable[[], datetime | None] = wall_now,
    fail_fast: bool = False,
) -> None:
    """Apply every scene on ``topic`` to ``live`` forever; set ``ready`` once caught up.

    ``clock`` is the rule clock that judges which scenes are open: the wall clock in
    production, the stream's event time in a replay (None before its first event).
    """
    ready = ready or asyncio.Event()
    tps = await kafka_io.partitions(bootstrap, topic)
    consumer = kafka_io.consumer(bootstrap=bootstrap)
    await consumer.start()
    try:
        consumer.assign(tps)
        if tps:
            await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps) if tps else {}
        pruned_at = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=250)
            now = clock()
            for records in batch.values():
                for record in records:
                    apply(live, record.key, record.value, now=now, fail_fast=fail_fast)
            if time.monotonic() - pruned_at >= prune_interval_s:
                live.prune(now)
                pruned_at = time.monotonic()
            metrics.LIVE_OPEN_SCENES.set(len(live))
            if not ready.is_set() and all(
                [await consumer.position(tp) >= off for tp, off in end.items()]
            ):
                log.info("scenes loaded: %d open", len(live))
                ready.set()
    finally:
        await consumer.stop()
