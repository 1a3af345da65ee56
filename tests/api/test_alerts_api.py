"""Alerts over HTTP: lifecycle with audit, location reads audited, filters, pages, SSE replay."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from em_service.store import alerts, audit
from tests.api.conftest import Api
from tests.store.factories import T0, alert, ended


def _audit_actions(api: Api) -> list[tuple[str, str, str | None]]:
    with api.store.read() as s:
        entries, _ = audit.list_entries(s, limit=500)
        assert audit.verify(s).ok
    return [(e.actor, e.action, e.offender_id) for e in reversed(entries)]


def test_lifecycle_over_http_is_recorded_and_audited(api: Api) -> None:
    h = api.headers("officer")
    ack = api.client.post(
        "/api/v1/alerts/alert-off-1/acknowledge", headers=h, json={"note": "seen"}
    )
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    again = api.client.post("/api/v1/alerts/alert-off-1/acknowledge", headers=h)
    assert again.status_code == 409 and "is acknowledged" in again.json()["detail"]
    no_note = api.client.post("/api/v1/alerts/alert-off-1/close", headers=h, json={"note": " "})
    assert no_note.status_code == 422 and "note" in no_note.json()["detail"]
    closed = api.client.post(
        "/api/v1/alerts/alert-off-1/close", headers=h, json={"note": "left the zone at 21:40"}
    )
    body = closed.json()
    assert body["status"] == "closed"
    assert [
        (t["from_status"], t["to_status"], t["actor"], t["note"]) for t in body["transitions"]
    ] == [
        ("open", "acknowledged", "officer-1", "seen"),
        ("acknowledged", "closed", "officer-1", "left the zone at 21:40"),
    ]
    assert (
        api.client.post(
            "/api/v1/alerts/alert-off-1/close", headers=h, json={"note": "x"}
        ).status_code
        == 409
    )
    actions = [a for a in _audit_actions(api) if a[0] == "officer-1"]
    assert actions == [
        ("officer-1", "alert.acknowledge", "off-1"),
        ("officer-1", "alert.close", "off-1"),
    ]


def test_reading_an_alert_location_is_audited(api: Api) -> None:
    r = api.client.get("/api/v1/alerts/alert-off-1", headers=api.headers("officer"))
    assert r.status_code == 200
    assert r.json()["location"] == {"lat": 51.45, "lon": -0.97, "accuracy_m": 8.0}
    listed = api.client.get("/api/v1/alerts", headers=api.headers("officer")).json()
    assert "location" not in listed["items"][0] and listed["items"][0]["has_location"]
    assert ("officer-1", "alert.location.read", "off-1") in _audit_actions(api)


def test_filters_and_pagination(api: Api) -> None:
    with api.store.write() as s:
        for i in range(7):
            alerts.apply_alert(
                s,
                alert(
                    f"alert-more-{i}",
                    type="curfew_breach" if i % 2 else "battery_low",
                    offender_id="off-1",
                    occurred_at=T0 + timedelta(hours=i + 1),
                ),
            )
    h = api.headers("officer")
    page = api.client.get("/api/v1/alerts", headers=h, params={"limit": 3, "offset": 3}).json()
    assert page["total"] == 8 and [a["alert_id"] for a in page["items"]] == [
        "alert-more-3",
        "alert-more-2",
        "alert-more-1",
    ]
    curfews = api.client.get("/api/v1/alerts", headers=h, params={"type": "curfew_breach"}).json()
    assert curfews["total"] == 3
    window = {
        "since": (T0 + timedelta(hours=2)).isoformat(),
        "until": (T0 + timedelta(hours=4)).isoformat(),
    }
    assert api.client.get("/api/v1/alerts", headers=h, params=window).json()["total"] == 2
    theirs = api.client.get("/api/v1/alerts", headers=h, params={"offender_id": "off-2"}).json()
    assert theirs["total"] == 0  # a filter cannot reach past the caseload


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "pending"}, "query.status"),
        ({"since": "2026-10-24T21:00:00"}, "timezone"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "between 1970"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 10_000}, "query.limit"),
        ({"offender_id": "has space"}, "query.offender_id"),
    ],
)
def test_bad_filters_are_422_with_a_message(api: Api, params: dict, message: str) -> None:
    r = api.client.get("/api/v1/alerts", headers=api.headers("officer"), params=params)
    assert r.status_code == 422 and message in r.json()["detail"]


def _sse(text: str) -> list[dict]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "data" in fields:
            events.append({"id": int(fields["id"]), **json.loads(fields["data"])})
    return events


def test_stream_replays_from_last_event_id_for_the_caseload_only(api: Api) -> None:
    h = api.headers("officer")
    first = _sse(
        api.client.get("/api/v1/alerts/stream", headers=h, params={"after": 0, "max_s": 0.1}).text
    )
    assert [(e["kind"], e["alert"]["alert_id"]) for e in first] == [("created", "alert-off-1")]
    with api.store.write() as s:
        parent = alert("alert-off-1")
        alerts.apply_alert(s, ended(parent))
        alerts.apply_alert(s, alert("alert-off-2-b", offender_id="off-2"))
    api.client.post("/api/v1/alerts/alert-off-1/acknowledge", headers=h)
    resumed = _sse(
        api.client.get(
            "/api/v1/alerts/stream",
            headers={**h, "Last-Event-ID": str(first[-1]["id"])},
            params={"max_s": 0.1},
        ).text
    )
    assert [e["kind"] for e in resumed] == ["ended", "acknowledged"]
    assert all(e["alert"]["offender_id"] == "off-1" for e in resumed)
    assert resumed[0]["id"] > first[-1]["id"]
    fresh = api.client.get("/api/v1/alerts/stream", headers=h, params={"max_s": 0.1})
    assert fresh.status_code == 200 and _sse(fresh.text) == []  # no resume id: only new events
