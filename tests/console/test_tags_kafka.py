"""A tag assigned with a date on the admin page, end to end on the real services (API, worker,
archiver) and the real broker: the new version is published through the API's path; the
worker attributes the new tag's readings to the person only from the date given (a reading
before it is from an unknown device), and a fix inside their exclusion zone after it raises
the breach, with the new tag's id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from em_service.console.web import LONDON
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from em_service.store import Store, migrate, tokens
from tests.console.browser import axe_violations, browser, chromium_path, sign_in, watch_csp
from tests.console.test_console_kafka import HOME, _square, produce
from tests.service_env import ServiceEnv

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
OLD, NEW = "tag-old", "tag-new"


def _conditions(enrolled: datetime) -> str:
    return json.dumps(
        {
            "offender_id": "off-1",
            "device_ids": [OLD],
            "zones": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [_square(*HOME)]},
                    "properties": {"zone_id": "z-square", "kind": "exclusion"},
                }
            ],
            "updated_at": enrolled.isoformat(),
        }
    )


def _fix(device: str, ts: datetime, i: int) -> tuple[bytes, bytes]:
    reading = {"type": "gps", "device_id": device, "ts": ts.isoformat()}
    reading |= {"lat": HOME[1], "lon": HOME[0] + 0.00002 * i, "accuracy_m": 5.0}
    return device.encode(), json.dumps(reading | {"battery_pct": 70.0}).encode()


def test_a_tag_assigned_from_a_date_counts_from_that_date(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    chromium_path()
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env.update(EM_CONSOLE_TILE_URL="", EM_TICK_INTERVAL_S="0.5")
    ensure_topics(env.settings, kafka_bootstrap)
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    migrate.upgrade(store)
    with store.write() as s:
        admin = tokens.create_token(s, name="admin-1", role="admin")
        officer = tokens.create_token(s, name="officer-1", role="officer", caseload=["off-1"])
    http = None
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    since = now - timedelta(minutes=30)  # the new tag is worn from then
    try:
        base = env.start_archiver_and_api()
        env.start("worker", log_name="worker")
        http = httpx.Client(base_url=base, timeout=10)
        with browser() as b:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            csp = watch_csp(page)
            sign_in(page, base, admin)
            page.fill("#enrol-id", "off-1")
            page.click("#enrol")
            page.fill("#conditions", _conditions(now - timedelta(hours=2)))
            page.click("#save")
            page.wait_for_selector("#saved")
            page.goto(f"{base}/console/admin/people/off-1/tags")
            page.check("#action-assign")
            page.fill("#device_id", NEW)
            local = since.astimezone(LONDON)
            page.fill("#date", local.strftime("%Y-%m-%d"))
            page.fill("#time", local.strftime("%H:%M"))
            page.click("#change-tag")
            page.wait_for_selector("#done")
            assert page.inner_text("#current-tags") == f"{OLD}, {NEW}"
            assert axe_violations(page) == []
            assert csp == []

        env.wait_until(
            lambda: total(scrape(env.metrics_url), "em_conditions_applied_total") >= 2,
            90,
            what="the worker to apply both versions",
        )
        before = [_fix(NEW, since - timedelta(minutes=10), 0)]
        produce(kafka_bootstrap, env.settings.topic_readings, before)
        env.wait_until(
            lambda: total(scrape(env.metrics_url), "em_unknown_device_readings_total") >= 1,
            60,
            what="the reading before the assignment to be from an unknown device",
        )
        after = [_fix(NEW, now - timedelta(seconds=20 * (3 - i)), i) for i in range(4)]
        produce(kafka_bootstrap, env.settings.topic_readings, after)
        bearer = {"Authorization": f"Bearer {officer}"}

        def breaches() -> list[dict]:
            items = http.get(
                "/api/v1/alerts", params={"offender_id": "off-1"}, headers=bearer
            ).json()["items"]
            return [a for a in items if a["type"] == "exclusion_breach"]

        env.wait_until(lambda: breaches(), 90, what="the exclusion breach of the new tag")
        (alert,) = breaches()
        assert alert["device_id"] == NEW and alert["zone_id"] == "z-square"
        assert datetime.fromisoformat(alert["occurred_at"]) >= since
        assert total(scrape(env.metrics_url), "em_unknown_device_readings_total") == 1
    finally:
        if http is not None:
            http.close()
        env.stop_all()
        store.dispose()
