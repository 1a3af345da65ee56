"""A version the worker refuses, produced straight to the conditions topic (another tool, or a
rule added by an upgrade), is visible end to end on the real broker: the worker counts it
(``em_conditions_rejected_total``) and keeps the previous version in force; the archiver, with
the same check, records it; the officer's API shows ``conditions_rejected`` with the reason and
which version is in force. A newer valid version clears it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from em_service import kafka_io
from em_service.conditions.validate import version_id
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from em_service.store import Store, migrate, tokens
from tests.conditions.cases import REFUSED, VALID_ZONE, doc
from tests.service_env import ServiceEnv, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
T0 = datetime(2026, 11, 21, 10, tzinfo=UTC)


def _version(offender_id: str, device_id: str, day: int, zones: list) -> bytes:
    stamp = f"2026-11-{day:02d}T00:00:00Z"
    return json.dumps(doc(offender_id, device_id, zones=zones, updated_at=stamp)).encode()


def _fixes(device_id: str, n: int) -> list[tuple[bytes, bytes]]:
    """``n`` fixes a minute apart in the middle of :data:`VALID_ZONE`."""
    return [
        (
            device_id.encode(),
            json.dumps(
                {
                    "type": "gps",
                    "device_id": device_id,
                    "ts": (T0 + timedelta(minutes=i)).isoformat(),
                    "lat": 51.455,
                    "lon": -0.973,
                    "accuracy_m": 5.0,
                    "seq": i,
                }
            ).encode(),
        )
        for i in range(n)
    ]


def test_a_rejected_version_is_shown_with_the_version_still_in_force(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env.update(
        EM_RULE_CLOCK="event",
        EM_TICK_INTERVAL_S="1",
        EM_MAX_PAST_AGE_S=str(20 * 365 * 86400),
        EM_ARCHIVER_METRICS_PORT=str(free_port()),
    )
    ensure_topics(env.settings, kafka_bootstrap)
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    migrate.upgrade(store)
    with store.write() as s:
        token = tokens.create_token(
            s, name="officer-1", role="officer", caseload=["off-x", "off-new"]
        )
    store.dispose()
    s = env.settings
    v1 = _version("off-x", "tag-x", 1, [VALID_ZONE])
    v2 = _version("off-x", "tag-x", 2, REFUSED["bowtie"][0])
    new = _version("off-new", "tag-new", 2, REFUSED["335_km"][0])
    asyncio.run(
        kafka_io.send_all(
            kafka_bootstrap, s.topic_conditions, [(b"off-x", v1), (b"off-x", v2), (b"off-new", new)]
        )
    )
    api = f"http://127.0.0.1:{env.api_port}/api/v1/offenders"
    auth = {"Authorization": f"Bearer {token}"}

    def offender(offender_id: str) -> dict:
        r = httpx.get(f"{api}/{offender_id}", headers=auth, timeout=5)
        return r.json() if r.status_code == 200 else {}

    def worker(name: str) -> float:
        return total(scrape(env.metrics_url), name)

    try:
        env.start("worker", log_name="worker")
        env.start("archiver", log_name="archiver")
        env.start("api", log_name="api")
        env.wait_until(
            lambda: worker("em_conditions_rejected_total") >= 2, 60, "the worker to refuse two"
        )
        assert worker("em_conditions_applied_total") == 1
        assert worker("em_conditions_rejected_total") == 2

        shown = env.wait_until(
            lambda: (o := offender("off-x")).get("conditions_rejected") and o, 60, "off-x rejected"
        )
        assert shown["status"] == "conditions_rejected"
        assert shown["conditions_version"] == version_id(v1)
        assert shown["conditions_updated_at"] == "2026-11-01T00:00:00Z"
        rejected = shown["conditions_rejected"]
        assert rejected["version"] == version_id(v2)
        assert rejected["updated_at"] == "2026-11-02T00:00:00Z"
        assert "zone-1: invalid geometry: Self-intersection" in rejected["reason"]
        assert shown["device_ids"] == ["tag-x"]

        fresh = env.wait_until(lambda: offender("off-new"), 30, "off-new listed")
        assert fresh["status"] == "conditions_rejected" and fresh["conditions_version"] is None
        assert "absurd size: 335.6 km across" in fresh["conditions_rejected"]["reason"]
        assert fresh["device_ids"] == []

        # The worker still applies v1: fixes in its zone open an exclusion breach.
        mark = asyncio.run(kafka_io.end_offsets(kafka_bootstrap, s.topic_alerts))
        asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_readings, _fixes("tag-x", 15)))
        records = asyncio.run(
            kafka_io.read_since(kafka_bootstrap, s.topic_alerts, mark or None, want=1, timeout_s=60)
        )
        opened = [json.loads(r.value) for r in records]
        assert [(a["offender_id"], a["type"], a["zone_id"]) for a in opened] == [
            ("off-x", "exclusion_breach", "zone-1")
        ]

        # A newer valid version clears the rejection.
        v3 = _version("off-x", "tag-x", 3, [])
        asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_conditions, [(b"off-x", v3)]))
        cleared = env.wait_until(
            lambda: (o := offender("off-x")).get("conditions_version") == version_id(v3) and o,
            60,
            "v3 in force",
        )
        assert cleared["conditions_rejected"] is None
        # the breach v1 opened is still open (once the archiver has stored its alert)
        env.wait_until(lambda: offender("off-x")["status"] == "in_breach", 30, "in breach")
        env.wait_until(lambda: worker("em_conditions_applied_total") == 2, 30, "v3 applied")
    finally:
        env.stop_all()
