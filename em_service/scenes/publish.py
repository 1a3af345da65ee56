"""Publishes scenes to the scenes topic (key = scene_id) for the API: a lazily (re)started,
idempotent producer, so the API comes up (and serves reads) without Kafka."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from em_service.contracts import Scene
from em_service.contracts.codec import encode
from em_service.settings import Settings

log = logging.getLogger(__name__)


class SceneNotPublished(RuntimeError):
    """Kafka did not acknowledge the scene in time."""


class ScenePublisher:
    """Send scenes with acks=all and wait for the acknowledgement."""

    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock: asyncio.Lock | None = None

    async def _ensure(self) -> AIOKafkaProducer:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.settings.kafka_bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=int(self.timeout_s * 1000),
                    client_id=f"{self.settings.app_id}-api-scenes",
                )
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_s)
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def start(self) -> None:
        """Start now if Kafka answers; otherwise on the first publish."""
        try:
            await self._ensure()
        except Exception as exc:
            log.warning("scene producer not started yet (%s); will retry on publish", exc)

    async def publish(self, scene: Scene) -> RecordMetadata:
        """Send ``scene`` keyed by its id; raise :class:`SceneNotPublished` on failure."""
        try:
            producer = await self._ensure()
            return await asyncio.wait_for(
                producer.send_and_wait(
                    self.settings.topic_scenes, encode(scene), key=scene.scene_id.encode()
                ),
                self.timeout_s,
            )
        except Exception as exc:
            raise SceneNotPublished(f"{type(exc).__name__}: {exc}") from exc

    async def stop(self) -> None:
        """Flush and stop the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
