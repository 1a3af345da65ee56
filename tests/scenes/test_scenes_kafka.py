"""End to end on the real broker: a scene on the scenes topic → the archiver searches the
archive (a real SQLite file) → matches stored → ``scene_proximity`` alerts on the alerts topic."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from em_service import kafka_io
from em_service.contracts import Alert, Scene
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.scenes import store as scene_store
from em_service.scenes.alerting import scene_alert_id
from em_service.scenes.config import SceneSettings
from em_service.scenes.feed import follow_scenes
from em_service.scenes.live import LiveMatcher
from em_service.store.models import AlertRow
from tests.database import Database
from tests.scenes.helpers import W0, enrol, readings, scene_msg, stand, walk
from tests.scenes.test_importer import write_police_csv
from tests.scenes.test_retro import H
from tests.service_env import ServiceEnv, free_port

pytestmark = pytest.mark.kafka


def test_scene_on_the_topic_is_matched_stored_and_alerted(
    kafka_bootstrap: str, tmp_path: Path, database: Database
) -> None:
    store = database.store()
    enrol(
        store,
        {
            "off-at": readings("tag-at", stand(W0 + 2 * H, 20, 30.0, 0.0)),
            "off-pass": readings(
                "tag-pass", walk(W0 + 2 * H, (-1320.0, 30.0), (1080.0, 30.0), 90, 11)
            ),
            "off-late": readings("tag-late", stand(W0 + 15 * H, 30, 10.0, 0.0)),
        },
    )
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env |= database.env()
    env.env["EM_ARCHIVER_METRICS_PORT"] = str(free_port())
    env.env["EM_SCENES_REMATCH_DELAY_S"] = "0"
    # The archive holds fixed-date fixes (2026): the archiver's retention must keep them
    # whatever the date the test runs (it runs at start, against the wall clock).
    env.env["EM_TRAIL_RETENTION_DAYS"] = str(100 * 365)
    s = env.settings
    ensure_topics(s, kafka_bootstrap)
    mark = asyncio.run(kafka_io.end_offsets(kafka_bootstrap, s.topic_alerts))
    scene = scene_msg("sc-kafka", start=W0, end=W0 + 12 * H)

    def matches() -> dict[str, str]:
        with store.read() as ses:
            return {
                r.offender_id: r.confidence for r in scene_store.matches_of_scene(ses, "sc-kafka")
            }

    def archived_alerts() -> set[str]:
        with store.read() as ses:
            return set(
                ses.scalars(AlertRow.__table__.select().with_only_columns(AlertRow.alert_id))
            )

    try:
        env.start("archiver", log_name="archiver")
        asyncio.run(
            kafka_io.send_all(kafka_bootstrap, s.topic_scenes, [(b"sc-kafka", encode(scene))])
        )
        env.wait_until(lambda: len(matches()) == 2, 60, what="matches stored")
        assert matches() == {"off-at": "at_scene", "off-pass": "passed_by"}

        records = asyncio.run(
            kafka_io.read_since(kafka_bootstrap, s.topic_alerts, mark, want=2, timeout_s=30)
        )
        alerts = [msgspec.json.decode(r.value, type=Alert) for r in records]
        expected = {
            scene_alert_id("off-at", "at_scene", scene),
            scene_alert_id("off-pass", "passed_by", scene),
        }
        assert {a.alert_id for a in alerts} == expected
        assert {r.key for r in records} == {b"off-at", b"off-pass"}
        # The archiver stores its own alerts like any other; the outbox is empty.
        env.wait_until(lambda: archived_alerts() >= expected, 30, what="alerts archived")
        with store.read() as ses:
            assert scene_store.pending_alerts(ses) == []

        # A live alert from the worker (late fixes) is recorded, not re-sent, and re-matched.
        live = Alert(
            alert_id=scene_alert_id("off-late", "near_scene", scene),
            type="scene_proximity",
            severity="low",
            offender_id="off-late",
            occurred_at=W0 + 13 * H,
            detected_at=W0 + 14 * H,
            scene_id="sc-kafka",
            details={"confidence": "near_scene", "origin": "live", "closest_approach_m": 2.0},
        )
        asyncio.run(
            kafka_io.send_all(kafka_bootstrap, s.topic_alerts, [(b"off-late", encode(live))])
        )
        env.wait_until(lambda: "off-late" in matches(), 30, what="live match recorded")
        with store.read() as ses:
            row = scene_store.get_match(ses, "sc-kafka", "off-late")
            assert row.origin == "live" and row.alerted_rank == 1
        after = asyncio.run(
            kafka_io.read_since(kafka_bootstrap, s.topic_alerts, mark, want=4, timeout_s=3)
        )
        assert len(after) == 3  # the two retro alerts and the live one: nothing re-sent
    finally:
        env.stop_all()
        store.dispose()
    assert "Traceback" not in env.log("archiver")


def test_live_feed_follows_the_scenes_topic(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Open scenes are held, closed ones not, a tombstone withdraws one, garbage is skipped."""
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    topic = env.settings.topic_scenes
    ensure_topics(env.settings, kafka_bootstrap)
    now = W0 + 24 * H
    old = scene_msg("sc-old", start=W0 - 40 * 24 * H, end=W0 - 39 * 24 * H)
    records = [
        (b"sc-a", encode(scene_msg("sc-a"))),
        (b"sc-b", encode(scene_msg("sc-b", dx_m=500.0))),
        (b"sc-old", encode(old)),
        (b"sc-bad", b"{not a scene"),
        (b"sc-b", None),  # withdrawn
    ]

    async def go() -> list[str]:
        live = LiveMatcher(SceneSettings())
        ready = asyncio.Event()
        await kafka_io.send_all(kafka_bootstrap, topic, records)
        task = asyncio.create_task(
            follow_scenes(live, kafka_bootstrap, topic, ready, clock=lambda: now)
        )
        try:
            await asyncio.wait_for(ready.wait(), 30)
            return [s for s in ("sc-a", "sc-b", "sc-old") if s in live]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert asyncio.run(go()) == ["sc-a"]


def test_cli_import_publishes_to_the_scenes_topic(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    ensure_topics(env.settings, kafka_bootstrap)
    path = tmp_path / "street.csv"
    bad = write_police_csv(path)
    run = subprocess.run(
        [sys.executable, "-m", "em_service.cli", "scenes", "import", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env.env},
        timeout=60,
        check=False,
    )
    assert run.returncode == 1 and f"{len(bad)} bad rows" in run.stdout, run.stderr
    records = asyncio.run(
        kafka_io.read_since(kafka_bootstrap, env.settings.topic_scenes, None, want=4, timeout_s=20)
    )
    scenes = [msgspec.json.decode(r.value, type=Scene) for r in records]
    assert len(scenes) == 4 and all(s.low_precision for s in scenes)
    assert {r.key for r in records} == {s.scene_id.encode() for s in scenes}
