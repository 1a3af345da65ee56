"""Investigator and admin pages end to end in headless Chromium against the real services (API,
worker, archiver) on the real broker: an admin enrols a person and draws an exclusion polygon on
the draft map, saves it, and a fix inside it raises an alert; an investigator reports a scene
from the form where that tag passed, sees the match with its class and closest approach,
downloads the evidence pack, and ``em-service evidence verify`` accepts it and rejects a
one-byte edit of its PNG."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import shapely

from em_service.console.web import LONDON
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from em_service.store import Store, migrate, tokens
from em_service.store.models import Offender
from tests.console.browser import axe_violations, browser, chromium_path, shoot, sign_in, watch_csp
from tests.console.test_console_kafka import HOME, produce
from tests.service_env import ServiceEnv

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
DEVICE = "tag-off-1"


def _draft() -> str:
    """A new person's first draft: their tag and a curfew address (the maps open on it)."""
    return json.dumps(
        {
            "offender_id": "off-1",
            "device_ids": [DEVICE],
            "zones": [],
            "curfews": [
                {
                    "curfew_id": "c-home",
                    "geometry": {"type": "Point", "coordinates": list(HOME)},
                    "radius_m": 60.0,
                    "windows": [{"days": ["sun"], "start": "03:00", "end": "03:01"}],
                }
            ],
        },
        indent=2,
    )


def _fixes(lon: float, lat: float, end: datetime, n: int = 4) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(n):
        ts = end - timedelta(seconds=20 * (n - 1 - i))
        reading = {"type": "gps", "device_id": DEVICE, "ts": ts.isoformat()}
        reading |= {"lat": lat, "lon": lon + 0.00002 * i, "accuracy_m": 5.0, "battery_pct": 70.0}
        out.append((DEVICE.encode(), json.dumps(reading).encode()))
    return out


def test_admin_draws_a_zone_investigator_finds_the_tag(
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
        investigator = tokens.create_token(s, name="investigator-1", role="investigator")
        officer = tokens.create_token(s, name="officer-1", role="officer", caseload=["off-1"])
    http = None
    try:
        base = env.start_archiver_and_api()
        env.start("worker", log_name="worker")
        http = httpx.Client(base_url=base, timeout=10)
        with browser() as b:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            csp = watch_csp(page)
            # Admin: enrol off-1 and draw an exclusion polygon.
            sign_in(page, base, admin)
            page.fill("#enrol-id", "off-1")
            page.click("#enrol")
            page.fill("#conditions", _draft())
            page.click("#check")
            page.wait_for_selector("#valid")
            page.fill("#zone-id", "z-drawn")
            for x, y in [(120, 80), (420, 80), (420, 300), (120, 300)]:
                page.click("#draft-map", position={"x": x, "y": y})
            page.click("#add-polygon")
            page.click("#save")
            page.wait_for_selector("#saved")
            assert axe_violations(page) == []
            with store.read() as s:
                saved = json.loads(s.get(Offender, "off-1").conditions_json)
            polygon = shapely.geometry.shape(saved["zones"][0]["geometry"])
            inside = polygon.representative_point()
            lon, lat = inside.x, inside.y

            # A fix inside the drawn zone raises an exclusion breach.
            env.wait_until(
                lambda: total(scrape(env.metrics_url), "em_conditions_applied_total") >= 1,
                90,
                what="the worker to load the drawn zone",
            )
            now = datetime.now(UTC)
            produce(kafka_bootstrap, env.settings.topic_readings, _fixes(lon, lat, now))
            bearer = {"Authorization": f"Bearer {officer}"}
            env.wait_until(
                lambda: any(
                    a["type"] == "exclusion_breach" and a.get("zone_id") == "z-drawn"
                    for a in http.get(
                        "/api/v1/alerts", params={"offender_id": "off-1"}, headers=bearer
                    ).json()["items"]
                ),
                90,
                what="the exclusion breach of the drawn zone",
            )

            # Investigator: a scene where the tag was, from the form.
            page.click(".em-sign-out button")
            sign_in(page, base, investigator)
            page.goto(f"{base}/console/scenes/new")
            start = (now - timedelta(minutes=30)).astimezone(LONDON)
            end = (now + timedelta(minutes=10)).astimezone(LONDON)
            page.fill("#crime_reference", "CR/E2E/1")
            page.select_option("#crime_type", "burglary_dwelling")
            page.fill("#start_date", start.strftime("%Y-%m-%d"))
            page.fill("#start_time", start.strftime("%H:%M"))
            page.fill("#end_date", end.strftime("%Y-%m-%d"))
            page.fill("#end_time", end.strftime("%H:%M"))
            page.fill("#lat", f"{lat:.6f}")
            page.fill("#lon", f"{lon:.6f}")
            page.click("#report-scene")
            page.wait_for_selector("#record-purpose")
            page.click("#record-purpose")

            def matched() -> bool:
                page.reload()
                return page.locator('tr.em-match[data-person="off-1"]').count() == 1

            env.wait_until(matched, 90, what="the scene's match", interval_s=1.0)
            row = page.locator('tr.em-match[data-person="off-1"]')
            assert row.get_attribute("data-confidence") in ("at_scene", "passed_by")
            assert " m at " in row.locator(".em-closest").inner_text()
            page.wait_for_selector("path.em-closest", state="attached")
            assert axe_violations(page) == []
            shoot(page, tmp_path, "scene-real")
            with page.expect_download() as download:
                row.locator("a.em-pack").click()
            pack = tmp_path / "pack.zip"
            download.value.save_as(pack)
            assert csp == []

        cli = [sys.executable, "-m", "em_service.cli", "evidence", "verify"]
        ok = subprocess.run([*cli, str(pack)], capture_output=True, text=True, check=False)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        with zipfile.ZipFile(pack) as z:
            files = [(i, z.read(i)) for i in z.infolist()]
        edited = io.BytesIO()
        with zipfile.ZipFile(edited, "w") as z:
            for info, data in files:
                if info.filename.endswith(".png"):
                    data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
                z.writestr(info, data)
        bad = tmp_path / "edited.zip"
        bad.write_bytes(edited.getvalue())
        refused = subprocess.run([*cli, str(bad)], capture_output=True, text=True, check=False)
        assert refused.returncode == 1 and ".png: contents do not match" in refused.stderr
    finally:
        if http is not None:
            http.close()
        env.stop_all()
        store.dispose()
