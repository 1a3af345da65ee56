"""Poison scenes: live matching ignores a scene it cannot project; the scene consumer (on the real
broker) dead-letters a scene whose search raises and goes on with the next."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest

from em_service import kafka_io
from em_service.contracts import Scene
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.scenes import store as scene_store
from em_service.scenes.config import SceneSettings
from em_service.scenes.consumer import SceneConsumer
from em_service.scenes.feed import apply
from em_service.scenes.live import LiveMatcher
from em_service.store import Store
from tests.scenes.helpers import W1, scene_msg
from tests.service_env import ServiceEnv


def test_live_matching_ignores_a_scene_it_cannot_project() -> None:
    live = LiveMatcher(SceneSettings())
    far = msgspec.structs.replace(scene_msg("sc-far"), lat=0.0, lon=88.0)  # infinite metres
    assert apply(live, b"sc-far", encode(far), now=W1) is None and len(live) == 0
    assert apply(live, b"sc-1", encode(scene_msg("sc-1")), now=W1) == "sc-1" and "sc-1" in live


class _Poisoned(SceneConsumer):
    """The real scene consumer, except that searching scene ``sc-bad`` raises."""

    def search(self, scene: Scene) -> None:
        if scene.scene_id == "sc-bad":
            raise RuntimeError("poisoned scene")
        super().search(scene)


@pytest.mark.kafka
def test_a_scene_whose_search_raises_is_dead_lettered_and_the_next_searched(
    kafka_bootstrap: str, store: Store, tmp_path: Path
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    s = env.settings
    ensure_topics(s, kafka_bootstrap)
    bad, good = scene_msg("sc-bad"), scene_msg("sc-good", dx_m=300.0)

    def stored(scene_id: str) -> bool:
        with store.read() as ses:
            return scene_store.get_scene(ses, scene_id) is not None

    async def go() -> list:
        stop = asyncio.Event()
        task = asyncio.create_task(_Poisoned(s, store).run(stop))
        try:
            await kafka_io.send_all(
                kafka_bootstrap,
                s.topic_scenes,
                [(b"sc-bad", encode(bad)), (b"sc-good", encode(good))],
            )
            letters = await kafka_io.read_since(
                kafka_bootstrap, s.topic_dlq, None, want=1, timeout_s=60
            )
            for _ in range(300):
                if stored("sc-good") or task.done():
                    break
                await asyncio.sleep(0.2)
            assert not task.done()  # still consuming
            return letters
        finally:
            stop.set()
            await task

    letters = asyncio.run(go())
    ((letter),) = [json.loads(r.value) for r in letters]
    assert (letter["reason"], letter["detail"]) == (
        "processing_error",
        "RuntimeError: poisoned scene",
    )
    assert (letter["source_topic"], letter["key"]) == (s.topic_scenes, "sc-bad")
    assert stored("sc-good") and not stored("sc-bad")
