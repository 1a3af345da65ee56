"""The officer's console end to end in headless Chromium against the real services (API, worker,
archiver) on the real broker: a breach produced to the readings topic appears in the already open
queue without a reload; acknowledge and close in the browser; the API and the audit agree; another
caseload stays invisible (404 page, never in the live queue)."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from em_service import kafka_io
from em_service.console.web import LONDON
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from em_service.store import Store, migrate, tokens
from tests.console.browser import axe_violations, browser, chromium_path, shoot, sign_in, watch_csp
from tests.service_env import ServiceEnv, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
CENTRE = {"off-1": (-0.970, 51.450), "off-2": (-0.990, 51.460)}
HOME = (-0.950, 51.440)


def _square(lon: float, lat: float, d: float = 0.002) -> list[list[float]]:
    return [
        [lon - d, lat - d],
        [lon + d, lat - d],
        [lon + d, lat + d],
        [lon - d, lat + d],
        [lon - d, lat - d],
    ]


def conditions(person: str) -> dict:
    """Conditions of ``person``: one exclusion zone at CENTRE and a 19:00–07:00 curfew at HOME."""
    lon, lat = CENTRE[person]
    return {
        "offender_id": person,
        "device_ids": [f"tag-{person}"],
        "zones": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [_square(lon, lat)]},
                "properties": {"zone_id": f"z-{person}", "kind": "exclusion", "name": "Town <b>"},
            }
        ],
        "curfews": [
            {
                "curfew_id": f"c-{person}",
                "geometry": {"type": "Point", "coordinates": list(HOME)},
                "radius_m": 60.0,
                "windows": [
                    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
                    | {"start": "19:00", "end": "07:00"}
                ],
            }
        ],
        "valid_from": "2026-01-01T00:00:00Z",
    }


def fixes(person: str, end: datetime, n: int, step_s: float) -> list[tuple[bytes, bytes]]:
    """``n`` GPS readings inside ``person``'s exclusion zone, the last at ``end``."""
    lon, lat = CENTRE[person]
    device = f"tag-{person}"
    out = []
    for i in range(n):
        ts = end - timedelta(seconds=step_s * (n - 1 - i))
        reading = {
            "type": "gps",
            "device_id": device,
            "ts": ts.isoformat(),
            "lat": lat + 0.0001 * (i % 3),
            "lon": lon,
            "accuracy_m": 5.0,
            "battery_pct": 71.0,
        }
        out.append((device.encode(), json.dumps(reading).encode()))
    return out


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Send and wait for the broker's acks (in a thread: Playwright's loop owns this one)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, kafka_io.send_all(bootstrap, topic, messages)).result()


def test_officer_console_on_the_real_broker(kafka_bootstrap: str, tmp_path: Path) -> None:
    chromium_path()  # skip (or fail on CI) before starting services
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    archiver_metrics = free_port()
    env.env.update(
        EM_ARCHIVER_METRICS_PORT=str(archiver_metrics),
        EM_CONSOLE_TILE_URL="",
        EM_TICK_INTERVAL_S="0.5",
        EM_SSE_POLL_INTERVAL_S="0.1",
    )
    ensure_topics(env.settings, kafka_bootstrap)
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    migrate.upgrade(store)
    with store.write() as s:
        officer = tokens.create_token(s, name="officer-1", role="officer", caseload=["off-1"])
        other = tokens.create_token(s, name="officer-2", role="officer", caseload=["off-2"])
        admin = tokens.create_token(s, name="admin-1", role="admin")
    store.dispose()
    base = f"http://127.0.0.1:{env.api_port}"
    http = httpx.Client(base_url=base, timeout=10)

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    try:
        env.start("api", log_name="api")
        env.wait_until(lambda: http.get("/healthz").status_code == 200, 30, what="the API")
        for person in ("off-1", "off-2"):
            put = http.put(
                f"/api/v1/offenders/{person}/conditions",
                json=conditions(person),
                headers=bearer(admin),
            )
            assert put.status_code == 200, put.text
        env.start("worker", log_name="worker")
        env.start("archiver", log_name="archiver")
        env.wait_until(
            lambda: total(scrape(env.metrics_url), "em_conditions_applied_total") >= 2,
            90,
            what="the worker to load both conditions",
        )
        env.wait_until(
            lambda: (
                total(
                    scrape(f"http://127.0.0.1:{archiver_metrics}/metrics"),
                    "em_archiver_assigned_partitions",
                )
                > 0
            ),
            90,
            what="the archiver to join its group",
        )
        with browser() as b:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            csp = watch_csp(page)
            sign_in(page, base, officer)
            page.wait_for_selector("#queue[data-live='1']", timeout=15_000)
            loaded = page.evaluate("performance.timeOrigin")

            # Someone else's breach first, then ours: only ours may ever appear.
            now = datetime.now(UTC)
            topic = env.settings.topic_readings
            produce(kafka_bootstrap, topic, fixes("off-2", now - timedelta(seconds=70), 4, 10))
            produce(kafka_bootstrap, topic, fixes("off-1", now - timedelta(seconds=70), 4, 10))
            produced = time.monotonic()
            row = 'tr.em-row[data-person="off-1"][data-type="exclusion_breach"]'
            page.wait_for_selector(row, timeout=30_000)
            seen_s = time.monotonic() - produced
            print(f"console: breach produced → row drawn in {seen_s:.2f} s")
            assert seen_s < 5.0, f"took {seen_s:.2f} s"
            assert page.evaluate("performance.timeOrigin") == loaded, "the page was reloaded"
            assert "em-new" in (page.get_attribute(row, "class") or "")  # highlighted
            assert page.locator(f"{row} a", has_text="off-1").get_attribute("href") == (
                "/console/people/off-1"
            )
            assert page.title().startswith("(")
            alert_id = page.get_attribute(row, "data-alert-id")

            # off-2's breach reached the store (officer-2 sees it) but never officer-1's queue.
            env.wait_until(
                lambda: (
                    http.get(
                        "/api/v1/alerts", params={"offender_id": "off-2"}, headers=bearer(other)
                    ).json()["total"]
                    > 0
                ),
                30,
                what="off-2's alert in the store",
            )
            time.sleep(1.0)
            assert page.locator('tr.em-row[data-person="off-2"]').count() == 0
            assert axe_violations(page) == []
            shoot(page, tmp_path, "alert-queue")

            page.click(f"{row} form button")
            page.wait_for_selector(f'{row}[data-status="acknowledged"]')
            page.goto(f"{base}/console/alerts/{alert_id}")
            page.fill("#close-note", "Called him; he left the zone at once.")
            page.click("#close-button")
            page.wait_for_selector("#history li:nth-child(2)")
            assert axe_violations(page) == []
            shoot(page, tmp_path, "alert-closed")

            # The person page: zone on the map, curfew grid across the DST change, the trail.
            page.goto(f"{base}/console/people/off-1?week=2026-10-19")
            page.wait_for_selector("path.em-zone--exclusion", state="attached")
            sat = page.inner_text('#curfew-grid tr[data-day="2026-10-24"]')
            assert "19:00–07:00 next day (13 h; UTC 18:00–07:00)" in sat
            start = (now - timedelta(hours=1)).astimezone(LONDON).strftime("%Y-%m-%dT%H:%M")
            end = (now + timedelta(minutes=5)).astimezone(LONDON).strftime("%Y-%m-%dT%H:%M")
            page.fill("#trail-start", start)
            page.fill("#trail-end", end)
            page.fill("#trail-purpose", "Breach follow-up")
            page.click("#show-trail")
            page.wait_for_selector("path.em-gap-short", state="attached")
            assert page.locator("path.em-gap-short").count() == 3  # 4 fixes 10 s apart
            with page.expect_download() as download:
                page.click("#export-csv")
            lines = Path(download.value.path()).read_text().splitlines()
            assert len(lines) == 5 and lines[0].startswith("offender_id,")

            off2 = http.get(
                "/api/v1/alerts", params={"offender_id": "off-2"}, headers=bearer(other)
            )
            other_alert = off2.json()["items"][0]["alert_id"]
            for path in (f"/console/alerts/{other_alert}", "/console/people/off-2"):
                response = page.goto(f"{base}{path}")
                assert response is not None and response.status == 404, path
                assert "Page not found" in page.inner_text("h1")
            assert csp == []

        got = http.get(f"/api/v1/alerts/{alert_id}", headers=bearer(officer)).json()
        assert got["status"] == "closed"
        assert [(t["to_status"], t["actor"]) for t in got["transitions"]] == [
            ("acknowledged", "officer-1"),
            ("closed", "officer-1"),
        ]
        assert got["transitions"][1]["note"] == "Called him; he left the zone at once."
        entries = http.get(
            "/api/v1/audit", params={"actor": "officer-1", "limit": 100}, headers=bearer(admin)
        ).json()["items"]
        actions = [
            (e["action"], json.loads(json.dumps(e["detail"])).get("alert_id")) for e in entries
        ]
        assert ("alert.acknowledge", alert_id) in actions and ("alert.close", alert_id) in actions
        assert ("console.sign_in", None) in actions
        exports = [e for e in entries if e["action"] == "trail.export"]
        assert [(e["purpose"], e["detail"]) for e in exports] == [
            ("Breach follow-up", {"fixes": 4, "format": "csv"})
        ]
    finally:
        http.close()
        env.stop_all()
