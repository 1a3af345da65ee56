"""Poison pills on the real broker: a schema-valid fix that cannot be projected (lat 0, lon 88 is
infinite in EPSG:27700) while a scene is open, and a scene at the same place. The real worker
dead-letters the fix and stays up, the breach after it is alerted, the real archiver never
stores the fix, and its scene consumer dead-letters the scene."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select

from em_service import kafka_io
from em_service.contracts import Scene
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from em_service.store import Store
from em_service.store.models import Fix
from tests.service_env import ServiceEnv, free_port
from tests.tracking.test_engine import HOME_X, HOME_Y, ZONE_X, ZONE_Y, _conditions, _fix
from tests.trails import ll

pytestmark = pytest.mark.kafka


def test_an_unprojectable_fix_is_dead_lettered_and_the_worker_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    archiver_port = free_port()
    env.env["EM_ARCHIVER_METRICS_PORT"] = str(archiver_port)
    env.env["EM_ARCHIVER_RETENTION_INTERVAL_S"] = "3600"
    s = env.settings
    ensure_topics(s, kafka_bootstrap)
    now = datetime.now(UTC)
    lon, lat = ll(HOME_X, HOME_Y)
    scene = Scene(  # open: its window ended an hour ago
        scene_id="sc-open",
        crime_reference="CR/open",
        crime_type="burglary_dwelling",
        lat=lat,
        lon=lon,
        window_start=now - timedelta(hours=2),
        window_end=now - timedelta(hours=1),
        reported_at=now - timedelta(minutes=30),
        radius_m=100.0,
    )
    home = _fix(now - timedelta(minutes=9), HOME_X, HOME_Y)
    poison = encode(msgspec.structs.replace(home, lat=0.0, lon=88.0))  # schema-valid
    fixes = [encode(_fix(now - timedelta(minutes=10), HOME_X, HOME_Y)), poison]
    fixes += [encode(_fix(now - timedelta(minutes=m), ZONE_X, ZONE_Y)) for m in range(8, 2, -1)]

    poison_scene = msgspec.structs.replace(scene, scene_id="sc-poison", lat=0.0, lon=88.0)
    scenes = [(b"sc-poison", encode(poison_scene)), (b"sc-open", encode(scene))]

    async def publish_context() -> None:
        await kafka_io.send_all(
            kafka_bootstrap, s.topic_conditions, [(b"off-1", _conditions(curfews=[]))]
        )
        await kafka_io.send_all(kafka_bootstrap, s.topic_scenes, scenes)

    asyncio.run(publish_context())
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    try:
        worker = env.start("worker", log_name="worker")
        archiver = env.start("archiver", log_name="archiver")
        asyncio.run(
            kafka_io.send_all(kafka_bootstrap, s.topic_readings, [(b"tag-1", f) for f in fixes])
        )

        def breach() -> list[dict]:
            records = asyncio.run(
                kafka_io.read_since(kafka_bootstrap, s.topic_alerts, None, want=1, timeout_s=1)
            )
            return [a for r in records if (a := json.loads(r.value))["type"] == "exclusion_breach"]

        (alert,) = env.wait_until(breach, 90, what="the breach after the poison to be alerted")
        letters = asyncio.run(
            kafka_io.read_since(kafka_bootstrap, s.topic_dlq, None, want=2, timeout_s=60)
        )
        url = f"http://127.0.0.1:{archiver_port}/metrics"

        def archived() -> dict:
            samples = scrape(url)
            done = total(
                samples, "em_archiver_records_total", topic="readings", outcome="fixes_offered"
            )
            return samples if done >= len(fixes) - 1 else {}

        archive_samples = env.wait_until(archived, 90, what="the archiver to store the fixes")
        worker_samples = scrape(env.metrics_url)
        assert worker.poll() is None and archiver.poll() is None, env.log("worker")
    finally:
        env.stop_all()
    assert alert["offender_id"] == "off-1" and alert["zone_id"] == "z-1"
    by_topic = {(d := json.loads(r.value))["source_topic"]: d for r in letters}
    assert len(letters) == 2 and set(by_topic) == {s.topic_readings, s.topic_scenes}
    fix_letter, scene_letter = by_topic[s.topic_readings], by_topic[s.topic_scenes]
    assert (fix_letter["reason"], fix_letter["source_offset"], fix_letter["key"]) == (
        "unprojectable",
        1,
        "tag-1",
    )
    assert (scene_letter["reason"], scene_letter["key"]) == ("unprojectable", "sc-poison")
    assert (
        total(worker_samples, "em_records_failed_total", consumer="worker", reason="unprojectable")
        == 1
    )
    assert (
        total(
            archive_samples, "em_records_failed_total", consumer="archiver", reason="unprojectable"
        )
        == 1
    )
    try:
        with store.read() as ses:
            stored = [(f.lat, f.lon, f.x_m, f.y_m) for f in ses.scalars(select(Fix))]
    finally:
        store.dispose()
    assert len(stored) == len(fixes) - 1
    assert all(math.isfinite(x) and math.isfinite(y) for *_, x, y in stored)
    assert (0.0, 88.0) not in {(la, lo) for la, lo, *_ in stored}
