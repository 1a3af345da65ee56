"""Caseload review: red/amber/green over 14 days with the rule on the page, reds first; per
person the alerts behind the rating by kind, open alerts by tier and only the most urgent few
(queue order) with "and N more"; in print, the sheet drops navigation."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from em_service.api.main import create_app
from em_service.console import queries
from em_service.store import Store, alerts, escalation, tokens
from em_service.store.tokens import Caller
from tests.api.conftest import Api
from tests.console.browser import LiveServer, axe_violations, browser, shoot, sign_in, watch_csp
from tests.database import Database
from tests.store.factories import T0, alert

CLOCK = T0 + timedelta(hours=1)
#: off-7's open alerts in queue order: escalated first, then critical, urgent, warning, each
#: oldest first; the first REVIEW_OPEN_SHOWN are on the review, the rest behind "and 2 more".
OFF_7_URGENCY = [
    "alert-u-silent",  # urgent but escalated (level 1)
    "alert-u-excl",  # critical, T0 - 2 h, acknowledged
    "alert-u-strap",  # critical, T0 - 1 h
    "alert-u-curfew",  # urgent, T0 - 30 min
    "alert-u-batt",  # warning, T0 - 4 h
]


def seed_urgency(store: Store) -> None:
    """off-7: five open alerts of every tier (one escalated, one acknowledged), a closed one and
    a suppressed breach; off-8: exactly ``REVIEW_OPEN_SHOWN`` open alerts."""
    suppressed = {
        "evidence": "definite",
        "suppressed": {"suspension_id": "s-1", "severity": "high"},
    }
    h = timedelta(hours=1)
    with store.write() as s:
        for a in (
            alert(
                "alert-u-silent", type="device_silent", offender_id="off-7", occurred_at=T0 - h / 4
            ),
            alert("alert-u-excl", offender_id="off-7", occurred_at=T0 - 2 * h),
            alert("alert-u-strap", type="strap_tamper", offender_id="off-7", occurred_at=T0 - h),
            alert(
                "alert-u-curfew",
                type="curfew_unverified",
                offender_id="off-7",
                occurred_at=T0 - h / 2,
            ),
            alert("alert-u-batt", type="battery_low", offender_id="off-7", occurred_at=T0 - 4 * h),
            alert(
                "alert-u-closed", type="strap_tamper", offender_id="off-7", occurred_at=T0 - 5 * h
            ),
            alert("alert-u-sup", offender_id="off-7", severity="info", details=suppressed),
            *(alert(f"alert-v-{i}", type="device_silent", offender_id="off-8") for i in range(3)),
        ):
            alerts.apply_alert(s, a, now=T0)
        caller = Caller(name="officer-1", role="officer", caseload=frozenset({"off-7"}))
        alerts.transition(s, alert_id="alert-u-excl", to="acknowledged", caller=caller, note=None)
        alerts.transition(s, alert_id="alert-u-closed", to="closed", caller=caller, note="seen")
    assert escalation.escalate_one(store, "alert-u-silent", 1, now=T0) is not None


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
    seed_urgency(api.store)
    with api.store.write() as s:
        tokens.assign_caseload(s, name="officer-1", offender_ids=["off-7", "off-8"])
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
        assert page.is_visible('tr[data-person="off-3"] .em-review-urgent')
        assert "Device silent" in page.inner_text('tr[data-person="off-3"]')
        assert page.is_visible('tr[data-person="off-7"] .em-review-more')
        shoot(page, tmp_path, "review-print")
        assert len(page.pdf()) > 1000
        assert csp == []


def test_review_shows_the_most_urgent_open_alerts_and_how_many_more(
    officer: TestClient, api: Api
) -> None:
    """A person with more open alerts than the limit: the most urgent few in queue order, the
    open counts by tier, and "and N more" to the queue filtered to them (which lists the rest);
    at exactly the limit, no link."""
    seed_urgency(api.store)
    with api.store.write() as s:
        tokens.assign_caseload(s, name="officer-1", offender_ids=["off-7", "off-8"])
    api.app.state.console_clock = lambda: CLOCK
    page = officer.get("/console/review").text
    row = page.split('data-person="off-7"')[1].split("</tr>")[0]
    assert 'data-rag="red"' in row
    shown = [chunk.split('"')[0] for chunk in row.split('href="/console/alerts/')[1:]]
    assert shown == OFF_7_URGENCY[:3]
    assert "escalated (level 1)" in row and "acknowledged" in row
    text = " ".join(re.sub(r"<[^>]+>", " ", row).split())
    assert "5 2 critical, 2 urgent, 1 warning; 4 unacknowledged" in text
    more = row.split('class="govuk-link govuk-body-s em-review-more" href="')[1]
    assert more.startswith('/console/?person=off-7">and 2 more<')
    # Behind the rating: every alert of the period but the suppressed breach, closed or not.
    reasons = (
        "Strap tamper: 2; Curfew unverified: 1; Exclusion breach (confirmed): 1; Device silent: 1"
    )
    assert f"5 {reasons}" in text
    assert "alert-u-sup" not in row
    rest = officer.get("/console/?person=off-7").text
    assert all(f"/console/alerts/{a}" in rest for a in OFF_7_URGENCY[3:])
    exactly = page.split('data-person="off-8"')[1].split("</tr>")[0]
    assert exactly.count('href="/console/alerts/') == 3 and "em-review-more" not in exactly


def test_review_query_top_open_alerts_on_both_engines(database: Database) -> None:
    """The windowed read (top few per person in queue order, counts alongside) on SQLite and
    PostgreSQL alike."""
    store = database.store()
    try:
        seed_urgency(store)
        with store.read() as s:
            rows = {
                r.offender_id: r
                for r in queries.review(s, people=["off-7", "off-8", "off-9"], now=CLOCK)
            }
    finally:
        store.dispose()
    off7, off8, off9 = rows["off-7"], rows["off-8"], rows["off-9"]
    assert [a.alert_id for a in off7.most_urgent] == OFF_7_URGENCY[:3]
    assert off7.open_by_tier == {"critical": 2, "urgent": 2, "warning": 1}
    assert (off7.open_alerts, off7.unacknowledged, off7.more) == (5, 4, 2)
    assert off7.rag == "red" and off7.rated_alerts == 5
    assert [(k.type, k.confirmed, k.count) for k in off7.reasons] == [
        ("strap_tamper", None, 2),  # reds first, the most numerous first
        ("curfew_unverified", None, 1),
        ("exclusion_breach", True, 1),
        ("device_silent", None, 1),
    ]
    assert (off8.open_alerts, off8.more, len(off8.most_urgent), off8.rag) == (3, 0, 3, "amber")
    assert (off9.open_alerts, off9.most_urgent, off9.reasons, off9.rag) == (0, [], [], "green")
