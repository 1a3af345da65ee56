"""Faust wiring of the tracking domain: thin agents over intake, the engine and the rules.

One agent consumes the readings topic *and* a ticks topic with the same partitioning, so that
timer work (silence checks, reorder flushes, curfew window ends) runs inside the same stream — and
so inside the same Kafka transaction under ``exactly_once`` — as the readings of that partition.
Per-device state lives in the changelogged table ``device-state`` (key = device_id).

Every message this agent sends (alerts, dead letters) goes to the *source partition* number of the
message that caused it: faust picks the transactional producer by destination partition, so this
keeps each output in the transaction that commits its input offset (no loss, no duplicate).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import datetime

import faust

from em_service import metrics
from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import Alert, DeadLetter
from em_service.contracts.codec import Rejected, dead_letter, encode
from em_service.contracts.readings import reading_type
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
    ready = asyncio.Event()
    started = time.monotonic()
    ticks_name = ticks_topic_name(settings)
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(settings.topic_readings, ticks_name, key_type=bytes, value_type=bytes, **raw)
    ticks = app.topic(ticks_name, **raw)
    dlq = app.topic(settings.topic_dlq, **raw)
    alerts_out = app.topic(settings.topic_alerts, **raw)
    watermarks: dict[int, datetime] = {}  # partition -> newest event time seen (event clock)
    states = app.Table(
        "device-state",
        partitions=settings.topic_partitions,
        schema=faust.Schema(key_type=bytes, value_type=bytes, **raw),
    )

    async def send_alerts(alerts: list[Alert], partition: int) -> None:
        for alert in alerts:
            metrics.ALERTS_EMITTED.labels(alert.type, alert.severity).inc()
            await alerts_out.send(
                key=alert.offender_id.encode(), value=encode(alert), partition=partition
            )

    async def on_reading(event: faust.EventT) -> None:
        started_at = time.perf_counter()
        msg = event.message
        now = utc_now()
        outcome = triage(
            event.value, Source(msg.topic, msg.partition, msg.offset, event.key), settings, now
        )
        if isinstance(outcome, DeadLetter):
            metrics.READINGS_REJECTED.labels(outcome.reason).inc()
            log.info("dead-lettered %s@%s: %s", msg.partition, msg.offset, outcome.detail)
            await dlq.send(key=event.key, value=encode(outcome), partition=msg.partition)
            return
        metrics.READINGS_CONSUMED.labels(reading_type(outcome)).inc()
        key = outcome.device_id.encode()
        if event.key != key:
            rejected = Rejected("wrong_key", f"key {event.key!r} is not device_id {key!r}")
            letter = dead_letter(
                event.value,
                rejected,
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                key=event.key,
                now=now,
            )
            metrics.READINGS_REJECTED.labels("wrong_key").inc()
            await dlq.send(key=event.key, value=encode(letter), partition=msg.partition)
            return
        state = load_state(states.get(key))
        state.partition = msg.partition
        stream_now = now
        if settings.rule_clock == "event":
            mark = watermarks.get(msg.partition)
            stream_now = watermarks[msg.partition] = (
                outcome.ts if mark is None else max(mark, outcome.ts)
            )
        rules_began = time.perf_counter()
        result = engine.on_reading(state, outcome, now=now, stream_now=stream_now)
        metrics.RULE_EVALUATION.observe(time.perf_counter() - rules_began)
        if result.unknown_device:
            metrics.UNKNOWN_DEVICES.inc()
            log.warning("reading from unknown device %s", outcome.device_id)
            if settings.dlq_unknown_devices:
                rejected = Rejected(
                    "unknown_device", f"no one is enrolled with {outcome.device_id}"
                )
                letter = dead_letter(
                    event.value,
                    rejected,
                    topic=msg.topic,
                    partition=msg.partition,
                    offset=msg.offset,
                    key=event.key,
                    now=now,
                )
                await dlq.send(key=event.key, value=encode(letter), partition=msg.partition)
            return
        states[key] = dump_state(state)
        await send_alerts(result.alerts, msg.partition)
        metrics.EVENT_LAG.observe((utc_now() - outcome.ts).total_seconds())
        metrics.PROCESSING.observe(time.perf_counter() - started_at)

    async def on_tick(partition: int) -> None:
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
            after = dump_state(state)
            if after != before:
                states[key] = after
            await send_alerts(alerts, partition)
            counts.update(engine.open_episode_kinds(state))
            counts["silent"] += bool(state.silence.open)
        _publish_gauges(partition, counts)

    @app.task
    async def conditions_feed() -> None:
        await follow_conditions(
            registry, settings.kafka_bootstrap, settings.topic_conditions, ready
        )

    @app.timer(interval=settings.tick_interval_s)
    async def tick() -> None:
        now = encode(utc_now())
        for tp in app.assignor.assigned_actives():
            if tp.topic == settings.topic_readings:
                await ticks.send(value=now, partition=tp.partition)

    @app.agent(source, name="tracking")
    async def tracking(stream: faust.StreamT) -> None:
        await ready.wait()
        async for event in stream.events():
            if event.message.topic == ticks_name:
                await on_tick(event.message.partition)
            else:
                await on_reading(event)

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
