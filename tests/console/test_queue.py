"""The alert queue: caseload only, severity tiers then oldest first, "ended — review", filters,
bulk acknowledge; the alert page audits its location read exactly as the API does."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from em_service.console.queries import rag_of, tier_of
from em_service.store import alerts, escalation
from em_service.store.tokens import Caller
from tests.api.conftest import Api
from tests.console.conftest import csrf_of
from tests.store.factories import T0, alert, ended

OFFICER_Q = Caller(name="officer-1", role="officer", caseload=frozenset({"off-1"}))
ROW = re.compile(r'data-alert-id="([^"]+)" data-status="([^"]+)" data-tier="([^"]+)"')


def rows(html: str) -> list[tuple[str, str, str]]:
    return ROW.findall(html)


def add(api: Api, *items) -> None:
    with api.store.write() as s:
        for a in items:
            alerts.apply_alert(s, a)


def test_tiers() -> None:
    assert [tier_of(t) for t in ("strap_tamper", "exclusion_breach", "curfew_breach")] == [
        "critical"
    ] * 3
    assert {tier_of(t) for t in ("inclusion_breach", "device_silent", "curfew_unverified")} == {
        "urgent"
    }
    assert tier_of("alcohol_detected") == "urgent" and tier_of("battery_low") == "warning"


def test_queue_orders_by_tier_then_oldest_and_marks_ended(officer: TestClient, api: Api) -> None:
    silent = alert("alert-q-silent", type="device_silent", occurred_at=T0 - timedelta(hours=5))
    add(
        api,
        alert("alert-q-battery", type="battery_low", occurred_at=T0 - timedelta(hours=9)),
        silent,
        ended(silent),
        alert("alert-q-tamper", type="strap_tamper", occurred_at=T0 + timedelta(hours=1)),
        alert("alert-q-theirs", type="strap_tamper", offender_id="off-2"),
    )
    page = officer.get("/console/")
    got = rows(page.text)
    assert [r[0] for r in got] == [
        "alert-off-1",  # exclusion breach at T0
        "alert-q-tamper",  # critical, later
        "alert-q-silent",  # urgent
        "alert-q-battery",  # warning, though oldest
    ]
    assert [r[2] for r in got] == ["critical", "critical", "urgent", "warning"]
    assert "off-2" not in page.text and "alert-q-theirs" not in page.text
    silent_row = page.text.split('data-alert-id="alert-q-silent"')[1].split("</tr>")[0]
    assert "ended — review" in silent_row
    assert "<title>(4) Alert queue" in page.text


def test_filters(officer: TestClient, api: Api) -> None:
    add(api, alert("alert-q-battery", type="battery_low", occurred_at=T0 - timedelta(days=3)))
    assert [r[0] for r in rows(officer.get("/console/?severity=warning").text)] == [
        "alert-q-battery"
    ]
    assert [r[0] for r in rows(officer.get("/console/?type=exclusion_breach").text)] == [
        "alert-off-1"
    ]
    assert rows(officer.get("/console/?person=off-2").text) == []
    assert len(rows(officer.get("/console/?status=open").text)) == 2
    assert officer.get("/console/?severity=bogus").status_code == 422


def test_bulk_acknowledge(officer: TestClient, api: Api) -> None:
    add(api, alert("alert-q-battery", type="battery_low"))
    token = csrf_of(officer.get("/console/").text)
    done = officer.post(
        "/console/alerts/acknowledge",
        data={
            "csrf_token": token,
            "alert_id": ["alert-off-1", "alert-q-battery"],
            "back": "/console/",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/?done=acknowledged-2"
    assert {r[1] for r in rows(officer.get(done.headers["location"]).text)} == {"acknowledged"}
    theirs = officer.post(
        "/console/alerts/acknowledge", data={"csrf_token": token, "alert_id": ["alert-off-2"]}
    )
    assert theirs.status_code == 404  # not on the caseload: as if it did not exist


def test_close_needs_a_note_and_off_site_back_links_are_ignored(
    officer: TestClient, api: Api
) -> None:
    token = csrf_of(officer.get("/console/").text)
    empty = officer.post(
        "/console/alerts/alert-off-1/close", data={"csrf_token": token, "note": " "}
    )
    assert empty.status_code == 400 and "Enter a note" in empty.text
    ack = officer.post(
        "/console/alerts/alert-off-1/acknowledge",
        data={"csrf_token": token, "back": "https://evil.example/"},
        follow_redirects=False,
    )
    assert ack.headers["location"].startswith("/console/alerts/alert-off-1")
    again = officer.post("/console/alerts/alert-off-1/acknowledge", data={"csrf_token": token})
    assert again.status_code == 409


def test_alert_page_audits_the_location_like_the_api(officer: TestClient, api: Api) -> None:
    page = officer.get("/console/alerts/alert-off-1")
    assert page.status_code == 200 and 'id="alert-map"' in page.text
    entries = api.client.get(
        "/api/v1/audit", params={"action": "alert.location.read"}, headers=api.headers("admin")
    ).json()["items"]
    assert [(e["actor"], e["purpose"], e["detail"]) for e in entries] == [
        ("officer-1", "alert handling", {"alert_id": "alert-off-1"})
    ]
    assert officer.get("/console/alerts/alert-off-2").status_code == 404


def test_notes_are_escaped(officer: TestClient, api: Api) -> None:
    token = csrf_of(officer.get("/console/").text)
    note = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    officer.post("/console/alerts/alert-off-1/close", data={"csrf_token": token, "note": note})
    page = officer.get("/console/alerts/alert-off-1").text
    assert note not in page
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    )


def test_rag_rule() -> None:
    def a(type_: str, **kw):
        with_details = {"details": kw.pop("details")} if "details" in kw else {}
        row = alert("alert-rag-01", type=type_, **with_details, **kw)
        from em_service.store.alerts import _row_values
        from em_service.store.models import AlertRow

        return AlertRow(**_row_values(row, T0))

    assert rag_of([]) == "green"
    assert rag_of([a("battery_low")]) == "green"
    assert rag_of([a("device_silent")]) == "amber"
    assert rag_of([a("exclusion_breach", details={"evidence": "possible"})]) == "amber"
    assert rag_of([a("exclusion_breach", details={"evidence": "definite"})]) == "red"
    assert rag_of([a("strap_tamper")]) == "red"
    assert rag_of([a("curfew_unverified"), a("device_silent")]) == "red"


def test_counts_are_of_every_match_not_just_the_rows_shown(officer: TestClient, api: Api) -> None:
    from em_service.console.queries import QUEUE_LIMIT

    add(api, *(alert(f"alert-many-{i:04d}", type="battery_low") for i in range(QUEUE_LIMIT + 5)))
    page = officer.get("/console/").text
    assert len(rows(page)) == QUEUE_LIMIT
    assert f"<title>({QUEUE_LIMIT + 6}) Alert queue" in page
    assert f"the first {QUEUE_LIMIT} are shown" in page


def test_escalated_open_alerts_come_first_and_are_marked(officer: TestClient, api: Api) -> None:
    with api.store.write() as s:  # stored at T0 (the escalation clock is the store's)
        for a in (
            alert("alert-q-tamper", type="strap_tamper", occurred_at=T0 - timedelta(hours=2)),
            alert("alert-q-later", type="curfew_breach", occurred_at=T0 + timedelta(hours=1)),
        ):
            alerts.apply_alert(s, a, now=T0)
    with api.store.write() as s:  # alert-off-1 (stored now) and the tamper are acknowledged
        for one in ("alert-q-tamper", "alert-off-1"):
            alerts.transition(
                s, alert_id=one, to="acknowledged", caller=OFFICER_Q, note=None, now=T0
            )
    raised = escalation.run(api.store, now=T0 + timedelta(minutes=10), after_s=600)
    assert [(e.alert_id, e.level) for e in raised] == [("alert-q-later", 1)]
    page = officer.get("/console/")
    assert [r[0] for r in rows(page.text)] == ["alert-q-later", "alert-q-tamper", "alert-off-1"]
    later = page.text.split('data-alert-id="alert-q-later"')[1].split("</tr>")[0]
    assert 'data-escalated="1"' in page.text and "escalated (level 1)" in later
    tamper = page.text.split('data-alert-id="alert-q-tamper"')[1].split("</tr>")[0]
    assert 'data-escalated="0"' in tamper and "escalated (level" not in tamper


def test_suppressed_alerts_are_not_queued_but_are_in_the_history(
    officer: TestClient, api: Api
) -> None:
    suppressed = {"suppressed": {"suspension_id": "s-1", "reason": "funeral", "severity": "high"}}
    add(api, alert("alert-q-suppressed", occurred_at=T0 + timedelta(hours=1), details=suppressed))
    page = officer.get("/console/")
    assert [r[0] for r in rows(page.text)] == ["alert-off-1"]
    assert "<title>(1) Alert queue" in page.text
    person = officer.get("/console/people/off-1").text
    history = person.split('id="history-table"')[1]
    row = history.split("alert-q-suppressed")[1].split("</tr>")[0]
    assert "suppressed (approved absence)" in row
    assert "suppressed (approved absence)" not in history.split("alert-off-1")[1].split("</tr>")[0]
