"""Publishes scenes to the scenes topic (key = scene_id) for the API, with the API's
:class:`~em_service.api.conditions_publisher.TopicPublisher` (started lazily, acks=all)."""

from __future__ import annotations

from aiokafka.structs import RecordMetadata

from em_service.api.conditions_publisher import PublishFailed, TopicPublisher
from em_service.contracts import Scene
from em_service.contracts.codec import encode
from em_service.settings import Settings


class SceneNotPublished(PublishFailed):
    """Kafka did not acknowledge the scene in time."""


class ScenePublisher(TopicPublisher):
    """Send scenes with acks=all and wait for the acknowledgement."""

    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        super().__init__(settings, settings.topic_scenes, timeout_s, "api-scenes")

    async def publish(self, scene: Scene) -> RecordMetadata:
        """Send ``scene`` keyed by its id; raise :class:`SceneNotPublished` on failure."""
        try:
            return await self.send(scene.scene_id.encode(), encode(scene))
        except PublishFailed as exc:
            raise SceneNotPublished(str(exc)) from exc.__cause__
