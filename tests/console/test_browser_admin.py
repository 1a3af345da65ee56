"""Headless Chromium on the admin pages: a zone drawn on the draft map lands in the draft and
passes the check; a self-intersecting one is shown inline (message by the field, a marker on
the map) and changes nothing; an investigator gets the 403 page. axe-core clean, no CSP report."""

from __future__ import annotations

from pathlib import Path

from em_service.api.main import create_app
from em_service.store.models import Offender
from tests.api.conftest import Api
from tests.console.browser import LiveServer, axe_violations, browser, shoot, sign_in, watch_csp
from tests.console.conftest import enrich


def _click_corners(page, corners: list[tuple[int, int]]) -> None:
    for x, y in corners:
        page.click("#draft-map", position={"x": x, "y": y})


def test_admin_draws_checks_and_sees_errors_inline(api: Api, tmp_path: Path) -> None:
    enrich(api)  # off-1 has a zone and a curfew: both maps open on them
    with api.store.read() as s:
        before = s.get(Offender, "off-1").conditions_version
    app = create_app(api.settings)
    app.state.console_clock = api.app.state.console_clock  # the week of the clocks going back
    with LiveServer(app) as server, browser() as b:
        live = server.url
        page = b.new_page(viewport={"width": 1280, "height": 900})
        csp = watch_csp(page)
        sign_in(page, live, api.tokens["admin"])
        assert page.url == f"{live}/console/admin/people"
        assert axe_violations(page) == []
        shoot(page, tmp_path, "admin-people")

        page.click('tr[data-person="off-1"] a')
        page.wait_for_selector("#draft-map.leaflet-container")
        page.fill("#zone-id", "z-drawn")
        page.fill("#zone-name", "<b>Park</b>")
        _click_corners(page, [(150, 120), (350, 120), (350, 300), (150, 300)])
        assert "4 points chosen" in page.inner_text("#draw-status")
        page.click("#add-polygon")
        page.wait_for_selector("#draft-map path.em-draft", state="attached")
        assert '"zone_id": "z-drawn"' in page.input_value("#conditions")
        page.click("#check")
        page.wait_for_selector("#valid")
        assert page.locator("#draft-map path.em-draft").count() == 3  # zone, curfew, drawn zone
        assert "13 h" in page.inner_text('#draft-grid tr[data-day="2026-10-24"]')
        assert axe_violations(page) == []
        shoot(page, tmp_path, "admin-conditions-draft")

        page.fill("#zone-id", "z-bowtie")
        _click_corners(page, [(150, 120), (350, 300), (350, 120), (150, 300)])
        page.click("#add-polygon")
        page.click("#save")
        page.wait_for_selector("#conditions-error")
        assert "Self-intersection near lon" in page.inner_text("#conditions-error")
        assert "z-bowtie" in page.inner_text("#error-summary")
        page.wait_for_selector("#draft-map path.em-problem", state="attached")
        assert "<b>Park</b>" in page.input_value("#conditions")  # kept as typed, shown as text
        assert axe_violations(page) == []
        shoot(page, tmp_path, "admin-conditions-error")

        page.goto(f"{live}/console/admin/tokens")
        page.fill("#token-name", "officer-<9>")
        page.click("#create-token")
        assert "Enter a name" in page.inner_text("#error-summary")  # shown as text
        page.fill("#token-name", "officer-9")
        page.select_option("#token-role", "officer")
        page.click("#create-token")
        assert page.inner_text("#new-token").startswith("em_")
        assert axe_violations(page) == []
        page.evaluate("document.querySelector('#new-token').textContent = 'em_' + 'x'.repeat(43)")
        shoot(page, tmp_path, "admin-tokens")  # (the token masked in the picture)
        assert csp == []

        other = b.new_page()
        sign_in(other, live, api.tokens["investigator"])
        other.goto(f"{live}/console/admin/people/off-1/conditions")
        assert "You cannot do this" in other.inner_text("h1")
        assert axe_violations(other) == []
    with api.store.read() as s:
        assert s.get(Offender, "off-1").conditions_version == before
