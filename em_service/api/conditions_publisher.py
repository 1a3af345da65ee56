"""Publishes conditions to the compacted conditions topic (key = offender_id) for the API.

The aiokafka producer is started in the app lifespan; if Kafka does not answer then, it is
started again on the first publish, so the API comes up (and serves reads) without Kafka.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from em_service.settings import Settings

log = logging.getLogger(__name__)


class PublishFailed(RuntimeError):
    """Kafka did not acknowledge the conditions in time."""


class ConditionsPublisher:
    """A lazily (re)started idempotent producer for the conditions topic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock: asyncio.Lock | None = None

    async def _ensure(self) -> AIOKafkaProducer:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._producer is None:
                timeout_ms = int(self.settings.conditions_publish_timeout_s * 1000)
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.settings.kafka_bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=timeout_ms,
                    client_id=f"{self.settings.app_id}-api",
                )
                try:
                    await asyncio.wait_for(
                        producer.start(), self.settings.conditions_publish_timeout_s
                    )
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def start(self) -> None:
        """Start the producer now if Kafka answers; otherwise leave it for the first publish."""
        try:
            await self._ensure()
        except Exception as exc:
            log.warning("conditions producer not started yet (%s); will retry on publish", exc)

    async def publish(self, offender_id: str, value: bytes) -> RecordMetadata:
        """Send ``value`` keyed by ``offender_id`` and wait for Kafka's acknowledgement."""
        try:
            producer = await self._ensure()
            return await asyncio.wait_for(
                producer.send_and_wait(
                    self.settings.topic_conditions, value, key=offender_id.encode()
                ),
                self.settings.conditions_publish_timeout_s,
            )
        except Exception as exc:
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

    async def stop(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
