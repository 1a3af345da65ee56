"""Headless Chromium on the investigator pages: the scenes list, a scene's page (purpose first,
then the circle, trails and closest approaches), the new-scene form (a map click fills the
place; errors in a GOV.UK summary), the CSV upload's per-row errors, and the 403 page of a
role that may not read scenes. No CSP violation, no serious or critical axe-core issue."""

from __future__ import annotations

import zipfile
from pathlib import Path

from em_service.api.main import create_app
from em_service.scenes import evidence
from tests.api.conftest import Api, seed_scenes
from tests.console.browser import (
    LiveServer,
    axe_violations,
    browser,
    screenshot_dir,
    shoot,
    sign_in,
    watch_csp,
)
from tests.console.conftest import enrich
from tests.console.test_scenes import BAD_CSV


def test_investigator_pages(api: Api, tmp_path: Path) -> None:
    enrich(api)  # off-1 moves on after the seeded fixes: the scene is searched again
    seed_scenes(api.store)
    with LiveServer(create_app(api.settings)) as server, browser() as b:
        live = server.url
        page = b.new_page(viewport={"width": 1280, "height": 900})
        csp = watch_csp(page)
        sign_in(page, live, api.tokens["investigator"])
        assert page.url == f"{live}/console/scenes"
        assert "matched 2 tags" in page.inner_text('tr[data-scene-id="sc-1"]')
        assert axe_violations(page) == []
        shoot(page, tmp_path, "scenes")

        page.click('tr[data-scene-id="sc-1"] a')
        assert page.locator("#scene-map").count() == 0
        assert "CR-77" in page.inner_text("#purpose-needed")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "scene-purpose")
        page.click("#record-purpose")
        page.wait_for_selector("path.em-scene", state="attached")
        assert page.locator("path.em-closest").count() == 2
        assert page.locator("tr.em-match").count() == 2
        assert "0 m at Sat 24 Oct 2026 22:00 (UTC+01:00)" in page.inner_text("#matches")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "scene")

        with page.expect_download() as download:
            page.click('tr[data-person="off-1"] a.em-pack')
        saved = tmp_path / "pack.zip"
        download.value.save_as(saved)
        result = evidence.verify(saved.read_bytes())
        assert result.ok, result.problems
        with zipfile.ZipFile(saved) as z:  # the map image, as pasted into a statement
            (screenshot_dir(tmp_path) / "scene-map-image.png").write_bytes(
                z.read("map-sc-1-off-1.png")
            )

        page.goto(f"{live}/console/scenes/new")
        page.wait_for_selector("#place-map.leaflet-container")
        page.click("#place-map", position={"x": 300, "y": 200})
        assert page.input_value("#lat") != "" and page.input_value("#lon") != ""
        page.wait_for_selector("#place-map path.em-scene", state="attached")
        page.fill("#crime_reference", "CR/2026/10/0421 <b>")
        page.select_option("#crime_type", "robbery")
        page.fill("#start_date", "2026-10-24")
        page.fill("#start_time", "22:00")
        page.fill("#end_date", "2026-10-25")
        page.fill("#end_time", "01:30")
        assert "UTC" in page.inner_text("#start_offset_hint")
        page.fill("#radius_m", "5000")
        page.click("#report-scene")
        page.wait_for_selector("#error-summary")
        assert "happens twice" in page.inner_text("#error-summary")
        assert page.is_visible("#end_date-error")
        page.select_option("#end_offset", "+00:00")
        page.click("#report-scene")
        page.wait_for_selector("#radius_m-error")  # the API's own check, shown by its field
        assert "radius_m must be in" in page.inner_text("#error-summary")
        assert page.input_value("#crime_reference") == "CR/2026/10/0421 <b>"
        assert axe_violations(page) == []
        shoot(page, tmp_path, "scene-new-errors")
        page.fill("#grid_ref", "TQ 30 80")  # a map click chooses the place: the ref is cleared
        page.click("#place-map", position={"x": 200, "y": 100})
        assert page.input_value("#grid_ref") == "" and page.input_value("#lat") != ""

        csv = tmp_path / "scenes.csv"
        csv.write_text(BAD_CSV)
        page.set_input_files("#file", str(csv))
        page.click("#upload-csv")
        page.wait_for_selector("#import-report")
        assert "Line 3: latitude" in page.inner_text("#error-summary")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "scene-import-errors")
        assert csp == []

        other = b.new_page()
        sign_in(other, live, api.tokens["officer"])
        other.goto(f"{live}/console/scenes/sc-1")
        assert "You cannot do this" in other.inner_text("h1")
        assert axe_violations(other) == []
