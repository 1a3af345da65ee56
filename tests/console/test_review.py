"""Caseload review: red/amber/green over 14 days with the rule on the page, reds first; in
print, the sheet keeps every person's alerts and drops navigation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from em_service.api.main import create_app
from em_service.store import alerts, tokens
from tests.api.conftest import Api
from tests.console.browser import LiveServer, axe_violations, browser, shoot, sign_in, watch_csp
from tests.store.factories import T0, alert


def seed_review(api: Api) -> None:
    with api.store.write() as s:
        tokens.assign_caseload(s, name="officer-1", offender_ids=["off-3", "off-4", "off-5"])
        for a in (
            alert("alert-r-silent", type="device_silent", offender_id="off-3"),
            alert("alert-r-batt", type="battery_low", offender_id="off-4"),
            alert(  # more than 14 days before the clock: does not count
                "alert-r-old",
                type="strap_tamper",
                offender_id="off-5",
                occurred_at=T0 - timedelta(days=20),
            ),
        ):
            alerts.apply_alert(s, a)
    api.app.state.console_clock = lambda: T0 + timedelta(hours=1)


def test_review_is_red_amber_green_with_the_rule(officer: TestClient, api: Api) -> None:
    seed_review(api)
    page = officer.get("/console/review").text
    order = [chunk.split('"')[0] for chunk in page.split('data-person="')[1:]]
    assert order == ["off-1", "off-3", "off-4", "off-5"]
    rags = [chunk.split('data-rag="')[1].split('"')[0] for chunk in page.split('data-person="')[1:]]
    assert rags == ["red", "amber", "green", "green"]
    assert "any confirmed breach" in page and "device silence" in page
    assert "1 red, 1 amber, 2 green." in page
    assert "off-2" not in page


def test_a_suppressed_breach_neither_rates_nor_counts(officer: TestClient, api: Api) -> None:
    """A breach inside an approved absence (severity info, ``details.suppressed``) is in the
    person's history but makes nobody red, is not behind a rating and is no open alert."""
    suppressed = {
        "evidence": "definite",
        "suppressed": {"suspension_id": "s-1", "reason": "hospital", "severity": "high"},
    }
    with api.store.write() as s:
        tokens.assign_caseload(s, name="officer-1", offender_ids=["off-6"])
        alerts.apply_alert(
            s,
            alert("alert-r-sup", offender_id="off-6", severity="info", details=suppressed),
        )
    api.app.state.console_clock = lambda: T0 + timedelta(hours=1)
    page = officer.get("/console/review").text
    row = page.split('data-person="off-6"')[1].split("</tr>")[0]
    assert 'data-rag="green"' in row and "alert-r-sup" not in row and ">0<" in row
    person = officer.get("/console/people/off-6").text
    assert "alert(s) not closed" not in person and "alert-r-sup" in person


def test_review_prints_as_the_sheet(api: Api, tmp_path: Path) -> None:
    sign = api.tokens["officer"]
    seed_review(api)
    app = create_app(api.settings)
    app.state.console_clock = api.app.state.console_clock
    with LiveServer(app) as server, browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 900})
        csp = watch_csp(page)
        sign_in(page, server.url, sign)
        page.goto(f"{server.url}/console/review")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "review")
        page.emulate_media(media="print")
        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        assert not page.is_visible(".govuk-service-navigation")
        assert page.is_visible('tr[data-person="off-3"] .em-review-detail')
        assert "Device silent" in page.inner_text('tr[data-person="off-3"]')
        shoot(page, tmp_path, "review-print")
        assert len(page.pdf()) > 1000
        assert csp == []
