"""Publishing from the API to a keyed topic (conditions, scenes) with acks=all.

The aiokafka producer is started in the app lifespan; if Kafka does not answer then, it is
started again on the first publish, so the API comes up (and serves reads) without Kafka.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from em_service import kafka_io
from em_service.settings import Settings

log = logging.getLogger(__name__)


class PublishFailed(RuntimeError):
    """Kafka did not acknowledge the message in time."""


class TopicPublisher:
    """A lazily (re)started idempotent producer for one topic; waits for each acknowledgement."""

    def __init__(self, settings: Settings, topic: str, timeout_s: float, client: str) -> None:
        self.settings = settings
        self.topic = topic
        self.timeout_s = timeout_s
        self.client = client
        self._producer: AIOKafkaProducer | None = None
        self._lock: asyncio.Lock | None = None

    async def _ensure(self) -> AIOKafkaProducer:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._producer is None:
                producer = kafka_io.producer(
                    self.settings,
                    request_timeout_ms=int(self.timeout_s * 1000),
                    client_id=f"{self.settings.app_id}-{self.client}",
                )
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_s)
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
            log.warning("%s producer not started yet (%s); will retry on publish", self.topic, exc)

    async def send(self, key: bytes, value: bytes) -> RecordMetadata:
        """Send ``value`` keyed by ``key`` and wait for Kafka's acknowledgement."""
        try:
            producer = await self._ensure()
            return await asyncio.wait_for(
                producer.send_and_wait(self.topic, value, key=key), self.timeout_s
            )
        except Exception as exc:
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

    async def stop(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class ConditionsPublisher(TopicPublisher):
    """Publishes conditions to the compacted conditions topic (key = offender_id)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings, settings.topic_conditions, settings.conditions_publish_timeout_s, "api"
        )

    async def publish(self, offender_id: str, value: bytes) -> RecordMetadata:
        """Send ``value`` keyed by ``offender_id``; raise :class:`PublishFailed` on failure."""
        return await self.send(offender_id.encode(), value)
