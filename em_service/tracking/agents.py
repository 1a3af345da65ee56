"""Faust wiring of the tracking domain: thin agents over ``intake`` and the rule stage."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import faust

from em_service import metrics
from em_service.contracts import DeadLetter
from em_service.contracts.codec import encode
from em_service.contracts.readings import reading_type
from em_service.settings import Settings
from em_service.tracking.intake import Source, triage
from em_service.tracking.rules import NoRules, RuleStage

log = logging.getLogger(__name__)


def register(
    app: faust.App, settings: Settings, rules: RuleStage | None = None
) -> faust.types.AgentT:
    """Define the readings agent on ``app`` and return it."""
    stage = rules or NoRules()
    readings = app.topic(
        settings.topic_readings,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    dlq = app.topic(settings.topic_dlq, key_serializer="raw", value_serializer="raw")
    alerts = app.topic(settings.topic_alerts, key_serializer="raw", value_serializer="raw")

    @app.agent(readings, name="readings")
    async def process_readings(stream: faust.StreamT) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            msg = event.message
            now = datetime.now(UTC)
            outcome = triage(
                event.value, Source(msg.topic, msg.partition, msg.offset, event.key), settings, now
            )
            if isinstance(outcome, DeadLetter):
                metrics.READINGS_REJECTED.labels(outcome.reason).inc()
                log.info("dead-lettered %s@%s: %s", msg.partition, msg.offset, outcome.detail)
                await dlq.send(key=event.key, value=encode(outcome))
            else:
                for alert in await stage.evaluate(outcome):
                    await alerts.send(key=alert.offender_id.encode(), value=encode(alert))
                metrics.READINGS_CONSUMED.labels(reading_type(outcome)).inc()
                metrics.EVENT_LAG.observe((datetime.now(UTC) - outcome.ts).total_seconds())
            metrics.PROCESSING.observe(time.perf_counter() - started)

    return process_readings
