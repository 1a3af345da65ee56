"""The API in-process (TestClient runs the lifespan) on a real SQLite file, seeded with two
offenders on two officers' caseloads, their alerts and fixes, and one token per role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from em_service.api.main import create_app
from em_service.contracts import Location, Scene
from em_service.settings import Settings
from em_service.store import Store, alerts, offenders, tokens, trail
from tests.database import Database
from tests.store.factories import READING, T0, alert, conditions, gps

ROLES = ("officer", "investigator", "ops", "admin", "force-feed")


@dataclass
class Api:
    """A running app with its store and a bearer token per principal."""

    client: TestClient
    app: FastAPI
    store: Store
    settings: Settings
    tokens: dict[str, str]

    def headers(self, who: str | None) -> dict[str, str]:
        if who is None:
            return {}
        if who == "bogus":
            return {"Authorization": "Bearer em_not-a-real-token"}
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def seed(store: Store) -> dict[str, str]:
    """Create principals (officer: caseload off-1; officer-2: off-2), offenders, alerts, fixes."""
    with store.write() as s:
        made = {role: tokens.create_token(s, name=f"{role}-1", role=role) for role in ROLES}
        made["officer-2"] = tokens.create_token(s, name="officer-2", role="officer")
        tokens.assign_caseload(s, name="officer-1", offender_ids=["off-1"])
        tokens.assign_caseload(s, name="officer-2", offender_ids=["off-2"])
        for offender, device in (("off-1", "tag-1"), ("off-2", "tag-2")):
            offenders.put_conditions(
                s, conditions=conditions(offender, [device]), changed_at=T0 - timedelta(days=1)
            )
            alerts.apply_alert(
                s,
                alert(
                    f"alert-{offender}",
                    offender_id=offender,
                    location=Location(lat=51.45, lon=-0.97, accuracy_m=8.0),
                ),
            )
            trail.insert_fixes(
                s,
                readings=[gps(device, T0 + timedelta(minutes=i)) for i in range(5)],
                crs="EPSG:27700",
            )
    seed_scenes(store)
    return made


#: A scene at the seeded fixes (scenes API): off-1 and off-2 pass by it.
SCENE = Scene(
    scene_id="sc-1",
    crime_reference="CR-77",
    crime_type="burglary_dwelling",
    lat=READING[1],
    lon=READING[0],
    window_start=T0 - timedelta(hours=1),
    window_end=T0 + timedelta(hours=1),
    reported_at=T0 + timedelta(hours=2),
)


def seed_scenes(store: Store) -> None:
    """Store :data:`SCENE` and search the archive for it (em_service/scenes)."""
    from em_service.scenes import retro
    from em_service.scenes.config import SceneSettings

    retro.run(store, SCENE, SceneSettings(), crs="EPSG:27700", now=T0 + timedelta(hours=2))


def make_api(
    tmp_path: Path, database: Database, kafka_bootstrap: str | None, **overrides: Any
) -> Iterator[Api]:
    tag = uuid.uuid4().hex[:8]
    store = database.store()
    made = seed(store)
    store.dispose()
    settings = Settings(
        database_url=database.url,
        database_migrate_url=database.migrate_url,
        state_dir=tmp_path,
        kafka_bootstrap=kafka_bootstrap or "127.0.0.1:9",  # discard port: nothing answers
        topic_conditions=f"t{tag}.conditions",
        topic_scenes=f"t{tag}.scenes",
        app_id=f"em-test-{tag}",
        conditions_publish_timeout_s=10.0 if kafka_bootstrap else 1.0,
        sse_poll_interval_s=0.05,
        **overrides,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield Api(client, app, app.state.store, settings, made)


@pytest.fixture
def api(tmp_path: Path, database: Database) -> Iterator[Api]:
    """The API without Kafka (publishing conditions answers 503)."""
    yield from make_api(tmp_path, database, None)


@pytest.fixture
def kafka_api(tmp_path: Path, database: Database, kafka_bootstrap: str) -> Iterator[Api]:
    """The API with the session broker and its own conditions topic."""
    yield from make_api(tmp_path, database, kafka_bootstrap)
