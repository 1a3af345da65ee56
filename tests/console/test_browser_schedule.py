"""Headless Chromium on the admin's tag and schedule pages: a tag change refused inline (the
person's only tag), the week grid with an added window and a one-off exception checked (the
week's curfew hours shown), a bad time shown next to its field and linked from the summary.
No CSP violation, no serious or critical axe-core issue."""

from __future__ import annotations

from pathlib import Path

from em_service.api.main import create_app
from tests.api.conftest import Api
from tests.console.browser import LiveServer, axe_violations, browser, shoot, sign_in, watch_csp
from tests.console.conftest import enrich


def test_tags_and_schedule_pages(api: Api, tmp_path: Path) -> None:
    enrich(api)  # off-1: an exclusion zone and a 19:00–07:00 curfew; the week of 24 Oct 2026
    app = create_app(api.settings)
    app.state.console_clock = api.app.state.console_clock
    with LiveServer(app) as server, browser() as b:
        live = server.url
        page = b.new_page(viewport={"width": 1280, "height": 900})
        csp = watch_csp(page)
        sign_in(page, live, api.tokens["admin"])
        page.click('tr[data-person="off-1"] a[href$="/tags"]')
        assert page.inner_text("#current-tags") == "tag-1"
        page.check("#action-unassign")
        page.fill("#device_id", "tag-1")
        page.click("#change-tag")
        page.wait_for_selector("#error-summary")
        assert "only tag" in page.inner_text("#device_id-error")
        page.click('#error-summary a[href="#device_id"]')
        assert page.evaluate("document.activeElement.id") == "device_id"
        assert axe_violations(page) == []
        shoot(page, tmp_path, "admin-tags")

        page.goto(f"{live}/console/admin/people/off-1/schedule")
        assert page.input_value("#c0-sat-0-start") == "19:00"
        page.fill("#c0-sat-1-start", "12:00")  # the empty row: a second Saturday window
        page.fill("#c0-sat-1-end", "14:00")
        page.fill("#c0-x0-date", "2026-10-25")
        page.check("#c0-x0-cancelled")
        page.click("#check")
        page.wait_for_selector("#valid")
        saturday = page.inner_text('#draft-grid tr[data-day="2026-10-24"]')
        assert "12:00–14:00" in saturday and "13 h" in saturday
        assert "none" in page.inner_text('#draft-grid tr[data-day="2026-10-25"]')
        assert page.input_value("#c0-sat-2-start") == ""  # a new empty row
        assert axe_violations(page) == []
        shoot(page, tmp_path, "admin-schedule")

        page.fill("#c0-tue-0-end", "7 am")
        page.click("#check")
        page.wait_for_selector("#error-summary")
        assert "enter the end as HH:MM" in page.inner_text("#c0-tue-0-end-error")
        assert page.input_value("#c0-tue-0-end") == "7 am"
        assert axe_violations(page) == []
        shoot(page, tmp_path, "admin-schedule-error")
        assert csp == []
