"""Headless Chromium: sign in, the pages render with no CSP violation and no serious or critical
axe-core issue, a note containing <script> renders as text, sign out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from em_service.api.main import create_app
from em_service.contracts import Location
from em_service.store import alerts
from tests.api.conftest import Api
from tests.console.browser import LiveServer, axe_violations, browser, shoot, sign_in, watch_csp
from tests.console.conftest import enrich
from tests.store.factories import T0, alert


@pytest.fixture
def live(api: Api) -> Iterator[str]:
    """The same seeded database served over HTTP by a second app instance."""
    with LiveServer(create_app(api.settings)) as server:
        yield server.url


def test_sign_in_queue_alert_and_sign_out(live: str, api: Api, tmp_path: Path) -> None:
    with browser() as b:
        page = b.new_page()
        csp = watch_csp(page)
        page.goto(f"{live}/console/sign-in")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "sign-in")
        sign_in(page, live, api.tokens["officer"])
        assert page.url == f"{live}/console/"
        page.wait_for_selector("#queue[data-live='1']")
        assert page.locator("tr.em-row").count() == 1
        assert page.title().startswith("(1) Alert queue")
        assert axe_violations(page) == []

        # Live: a tamper of off-1 (with a place) and one of off-2 land in the store.
        with api.store.write() as s:
            for a in (
                alert("alert-live-theirs", type="strap_tamper", offender_id="off-2"),
                alert(
                    "alert-live-ours",
                    type="strap_tamper",
                    occurred_at=T0 + timedelta(hours=1),
                    location=Location(lat=51.45, lon=-0.97, accuracy_m=9.0),
                ),
            ):
                alerts.apply_alert(s, a)
        live_row = 'tr.em-row[data-alert-id="alert-live-ours"]'
        page.wait_for_selector(live_row)
        assert page.locator(f"{live_row} a", has_text="Map").count() == 1
        assert page.inner_text(f"{live_row} .em-tier") == "critical"
        assert page.title().startswith("(2) Alert queue")
        assert page.locator('tr.em-row[data-person="off-2"]').count() == 0
        order = page.eval_on_selector_all("tr.em-row", "rs => rs.map(r => r.dataset.alertId)")
        assert order == ["alert-off-1", "alert-live-ours"]  # same tier: oldest first
        page.locator(f"{live_row} form button").click()
        page.wait_for_selector(f'{live_row}[data-status="acknowledged"]')
        assert page.title().startswith("(1) Alert queue")

        page.locator('tr.em-row[data-alert-id="alert-off-1"] a', has_text="Close").click()
        page.fill("#close-note", "<script>window.pwned=1</script> spoke to him")
        page.click("#close-button")
        page.wait_for_load_state("networkidle")
        assert "<script>window.pwned=1</script> spoke to him" in page.inner_text("#history")
        assert page.evaluate("window.pwned") is None
        page.wait_for_selector("path.em-alert-place", state="attached")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "alert")

        # A form whose CSRF token was removed is refused.
        page.goto(f"{live}/console/alerts/alert-live-ours")
        page.evaluate("document.querySelector('#close-note').form.csrf_token.remove()")
        page.fill("#close-note", "forged")
        page.click("#close-button")
        assert "You cannot do this" in page.inner_text("h1")
        assert "security check failed" in page.inner_text("#error-message")

        page.goto(f"{live}/console/me")
        assert page.inner_text("#me-name") == "officer-1"
        assert axe_violations(page) == []
        shoot(page, tmp_path, "who-am-i")
        page.goto(f"{live}/console/people/off-2")
        assert "Page not found" in page.inner_text("h1")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "not-found")
        page.click(".em-sign-out button")
        assert "You have signed out" in page.inner_text("h1")
        assert axe_violations(page) == []
        assert csp == []
    client = TestClient(api.app)
    got = client.get("/api/v1/alerts/alert-off-1", headers=api.headers("officer"))
    assert got.json()["status"] == "closed"
    forged = client.get("/api/v1/alerts/alert-live-ours", headers=api.headers("officer"))
    assert forged.json()["status"] == "acknowledged"  # the forged close did nothing


def test_person_page_map_grid_trail_and_export(api: Api, tmp_path: Path) -> None:
    enrich(api)
    app = create_app(api.settings)
    app.state.console_clock = api.app.state.console_clock
    with LiveServer(app) as server, browser() as b:
        live = server.url
        page = b.new_page(viewport={"width": 1280, "height": 900})
        csp = watch_csp(page)
        sign_in(page, live, api.tokens["officer"])
        page.goto(f"{live}/console/people/off-1?week=2026-10-19")
        page.wait_for_selector("path.em-zone--exclusion", state="attached")
        assert page.locator("path.em-curfew").count() == 1
        assert "Town <b>" in page.inner_text("#zone-list")
        sat = page.inner_text('#curfew-grid tr[data-day="2026-10-24"]')
        assert "19:00–07:00 next day (13 h; UTC 18:00–07:00)" in sat
        assert "Clocks go back" in page.inner_text('#curfew-grid tr[data-day="2026-10-25"]')
        page.locator("path.em-zone--exclusion").hover(position={"x": 5, "y": 5})
        assert page.inner_text(".leaflet-tooltip") == "Exclusion zone Town <b>"  # text, not HTML
        assert axe_violations(page) == []
        shoot(page, tmp_path, "person")

        page.fill("#trail-start", "2026-10-24T22:00")
        page.fill("#trail-end", "2026-10-24T23:59")
        page.fill("#trail-purpose", "CR-77/2026")
        page.click("#show-trail")
        page.wait_for_selector("path.em-gap-long", state="attached")
        counts = {g: page.locator(f"path.em-gap-{g}").count() for g in ("short", "medium", "long")}
        assert counts == {"short": 4, "medium": 1, "long": 1}
        colours = (
            page.eval_on_selector("path.em-gap-long", "p => getComputedStyle(p).stroke"),
            page.eval_on_selector("path.em-gap-short", "p => getComputedStyle(p).stroke"),
        )
        assert colours == ("rgb(212, 53, 28)", "rgb(0, 112, 60)")
        assert page.locator("path.em-trail-alert").count() == 1
        before = page.locator("path.em-accuracy").count()
        page.locator("path.em-fix").nth(5).hover()
        assert page.locator("path.em-accuracy").count() == before + 1
        page.fill("#playback", "0")
        page.dispatch_event("#playback", "input")
        assert page.inner_text("#playback-time") == "Sat 24 Oct, 22:00:00"
        assert axe_violations(page) == []
        shoot(page, tmp_path, "person-trail")

        with page.expect_download() as download:
            page.click("#export-geojson")
        saved = tmp_path / "trail.geojson"
        download.value.save_as(saved)
        assert len(json.loads(saved.read_text())["features"]) == 7
        assert csp == []
    entries = TestClient(api.app).get(
        "/api/v1/audit", params={"action": "trail.export"}, headers=api.headers("admin")
    )
    assert [e["detail"] for e in entries.json()["items"]] == [{"fixes": 7, "format": "geojson"}]
