"""Faust wiring of the tracking domain: thin agents over intake, the engine and the rules.

One agent consumes the readings topic *and* a ticks topic with the same partitioning, so that
timer work (silence checks, reorder flushes, curfew window ends) runs inside the same stream — and
so inside the same Kafka transaction under ``exactly_once`` — as the readings of that partition.
Per-device state lives in the changelogged table ``device-state`` (key = device_id).

Events are taken in small batches (``batch_max`` / ``batch_within_s``): the zone verdicts of all
fixes in a batch are evaluated at once (vectorised), then every event is applied in order, and
each device's state is written once per batch.

Every message this agent sends (alerts, dead letters) goes to the *source partition* number of the
message that caused it: faust picks the transactional producer by destination partition, so this
keeps each output in the transaction that commits its input offset (no loss, no duplicate).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from datetime import datetime

import faust
from aiokafka import AIOKafkaProducer
from faust.streams import _current_event

from em_service import metrics
from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import Alert, DeadLetter, GpsReading, Reading
from em_service.contracts.codec import Rejected, dead_letter, encode
from em_service.contracts.readings import reading_type
from em_service.scenes.config import get_scene_settings
from em_service.scenes.feed import follow_scenes
from em_service.scenes.live import LiveMatcher
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state, load_state, utc_now
from em_service.tracking.feed import follow_conditions
from em_service.tracking.intake import Source, triage

log = logging.getLogger(__name__)


def ticks_topic_name(settings: Settings) -> str:
    """Return the internal ticks topic of this app (same partition count as readings)."""
    return f"{settings.app_id}-ticks"


def register(app: faust.App, settings: Settings) -> faust.types.AgentT:
    """Define the tracking agent, its table, timer and conditions feed on ``app``."""
    registry = ConditionsRegistry(settings.projected_crs)
    engine = Engine(registry, settings)
    live = LiveMatcher(
        get_scene_settings(), crs=settings.projected_crs, late_after_s=settings.late_after_s
    )
    ready = asyncio.Event()  # conditions loaded
    scenes_ready = asyncio.Event()  # open scenes loaded
    started = time.monotonic()
    ticks_name = ticks_topic_name(settings)
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(settings.topic_readings, ticks_name, key_type=bytes, value_type=bytes, **raw)
    dlq = app.topic(settings.topic_dlq, **raw)
    alerts_out = app.topic(settings.topic_alerts, **raw)
    watermarks: dict[int, datetime] = {}  # partition -> newest event time seen (event clock)
    states = app.Table(
        "device-state",
        partitions=settings.topic_partitions,
        key_type=bytes,  # bytes → the "raw" serializer, also when recovering the changelog
        value_type=bytes,
    )

    async def send_alerts(alerts: list[Alert], partition: int) -> None:
        for alert in alerts:
            metrics.ALERTS_EMITTED.labels(alert.type, alert.severity).inc()
            await alerts_out.send(
                key=alert.offender_id.encode(), value=encode(alert), partition=partition
            )

    def write_state(event: faust.EventT, key: bytes, state: DeviceState) -> None:
        # The table writes its changelog to the partition of the "current event"; in a batch
        # that is the last event, so name the event this key's state came from.
        token = _current_event.set(weakref.ref(event))
        try:
            states[key] = dump_state(state)
        finally:
            _current_event.reset(token)

    async def dead_letter_out(event: faust.EventT, letter: DeadLetter) -> None:
        metrics.READINGS_REJECTED.labels(letter.reason).inc()
        msg = event.message
        log.info("dead-lettered %s@%s: %s", msg.partition, msg.offset, letter.detail)
        await dlq.send(key=event.key, value=encode(letter), partition=msg.partition)

    def intake(event: faust.EventT, now: datetime) -> Reading | DeadLetter:
        msg = event.message
        source = Source(msg.topic, msg.partition, msg.offset, event.key)
        outcome = triage(event.value, source, settings, now)
        if isinstance(outcome, DeadLetter):
            return outcome
        metrics.READINGS_CONSUMED.labels(reading_type(outcome)).inc()
        if event.key != outcome.device_id.encode():
            reason = f"key {event.key!r} is not device_id {outcome.device_id!r}"
            return dead_letter(
                event.value,
                Rejected("wrong_key", reason),
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                key=event.key,
                now=now,
            )
        return outcome

    async def process_batch(events: list[faust.EventT]) -> None:
        began = time.perf_counter()
        now = utc_now()
        items = [None if e.message.topic == ticks_name else intake(e, now) for e in events]
        readings = [i if not isinstance(i, DeadLetter) else None for i in items]
        rules_began = time.perf_counter()
        verdicts = engine.evaluate_batch(readings)
        pending: dict[bytes, tuple[faust.EventT, DeviceState]] = {}
        for pos, (event, item) in enumerate(zip(events, items, strict=True)):
            if item is None:  # a tick: bring the table up to date first
                for key, (last, state) in pending.items():
                    write_state(last, key, state)
                pending.clear()
                await on_tick(event)
            elif isinstance(item, DeadLetter):
                await dead_letter_out(event, item)
            else:
                key = item.device_id.encode()
                cached = pending.get(key)
                state = cached[1] if cached else load_state(states.get(key))
                state.partition = event.message.partition
                result = engine.on_reading(
                    state,
                    item,
                    now=now,
                    stream_now=stream_clock(event, item, now),
                    verdicts=verdicts.get(pos),
                )
                if result.unknown_device:
                    await unknown_device(event, item, now)
                    continue
                pending[key] = (event, state)
                await send_alerts(result.alerts, event.message.partition)
                if isinstance(item, GpsReading) and state.offender_id:
                    state.scenes, near = live.on_fix(state.offender_id, item, state.scenes, now=now)
                    await send_alerts(near, event.message.partition)
                metrics.EVENT_LAG.observe((now - item.ts).total_seconds())
        for key, (last, state) in pending.items():
            write_state(last, key, state)
        n = max(len(events), 1)
        metrics.RULE_EVALUATION.observe((time.perf_counter() - rules_began) / n)
        metrics.PROCESSING.observe((time.perf_counter() - began) / n)

    def stream_clock(event: faust.EventT, reading: Reading, now: datetime) -> datetime:
        if settings.rule_clock == "wall":
            return now
        p = event.message.partition
        mark = watermarks.get(p)
        watermarks[p] = reading.ts if mark is None else max(mark, reading.ts)
        return watermarks[p]

    async def unknown_device(event: faust.EventT, reading: Reading, now: datetime) -> None:
        metrics.UNKNOWN_DEVICES.inc()
        log.warning("reading from unknown device %s", reading.device_id)
        if settings.dlq_unknown_devices:
            msg = event.message
            rejected = Rejected("unknown_device", f"no one is enrolled with {reading.device_id}")
            await dead_letter_out(
                event,
                dead_letter(
                    event.value,
                    rejected,
                    topic=msg.topic,
                    partition=msg.partition,
                    offset=msg.offset,
                    key=event.key,
                    now=now,
                ),
            )

    async def on_tick(event: faust.EventT) -> None:
        partition = event.message.partition
        metrics.TICKS.inc()
        wall = utc_now()
        mine: list[tuple[bytes, bytes, DeviceState]] = []
        for key, value in list(states.items()):
            state = load_state(value)
            if state.partition == partition:
                mine.append((key, value, state))
        rule_now = wall
        if settings.rule_clock == "event":
            seen = [s.silence.last_ts for _, _, s in mine if s.silence.last_ts]
            if partition in watermarks:
                seen.append(watermarks[partition])
            rule_now = max(seen) if seen else wall
        check_silence = (
            settings.rule_clock == "event" or time.monotonic() - started >= settings.startup_grace_s
        )
        counts: Counter[str] = Counter()
        for key, before, state in mine:
            alerts = engine.on_tick(
                state, key.decode(), now=rule_now, detected_at=wall, check_silence=check_silence
            )
            if dump_state(state) != before:
                write_state(event, key, state)
            await send_alerts(alerts, partition)
            counts.update(engine.open_episode_kinds(state))
            counts["silent"] += bool(state.silence.open)
        _publish_gauges(partition, counts)

    @app.task
    async def scenes_feed() -> None:
        await follow_scenes(live, settings.kafka_bootstrap, settings.topic_scenes, scenes_ready)

    @app.task
    async def conditions_feed() -> None:
        await follow_conditions(
            registry, settings.kafka_bootstrap, settings.topic_conditions, ready
        )

    @app.task
    async def tick() -> None:
        # Ticks go through a plain (non-transactional) producer: a timer must never hold a
        # Kafka transaction open while the stream is idle (it would time out and be fenced).
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
        await producer.start()
        try:
            while True:
                await asyncio.sleep(settings.tick_interval_s)
                now = encode(utc_now())
                for tp in app.assignor.assigned_actives():
                    if tp.topic == settings.topic_readings:
                        await producer.send(ticks_name, now, partition=tp.partition)
        finally:
            await producer.stop()

    @app.agent(source, name="tracking")
    async def tracking(stream: faust.StreamT) -> None:
        await ready.wait()
        await scenes_ready.wait()
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            await process_batch(list(events))

    return tracking


_gauge_counts: dict[int, Counter[str]] = {}


def _publish_gauges(partition: int, counts: Counter[str]) -> None:
    """Set the worker-wide gauges from the latest per-partition counts."""
    _gauge_counts[partition] = counts
    total: Counter[str] = Counter()
    for c in _gauge_counts.values():
        total.update(c)
    metrics.DEVICES_SILENT.set(total.pop("silent", 0))
    for kind in ("exclusion", "inclusion", "curfew"):
        metrics.OPEN_EPISODES.labels(kind).set(total.get(kind, 0))
