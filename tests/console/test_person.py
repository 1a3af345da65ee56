"""The person page: status, conditions, the curfew week grid across the October DST change, the
trail (purpose required, audited as the API does, gap classes) and its audited export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient

from em_service.console.person import gap_class
from tests.api.conftest import Api
from tests.console.conftest import csrf_of, enrich


@pytest.fixture
def rich(officer: TestClient, api: Api) -> TestClient:
    enrich(api)
    return officer


def audit(api: Api, action: str) -> list[dict]:
    return api.client.get(
        "/api/v1/audit", params={"action": action}, headers=api.headers("admin")
    ).json()["items"]


def test_gap_classes() -> None:
    assert [gap_class(s) for s in (0, 119.9, 120, 599, 600, 3600)] == [
        "short",
        "short",
        "medium",
        "medium",
        "long",
        "long",
    ]


def test_status_now(rich: TestClient, api: Api) -> None:
    page = rich.get("/console/people/off-1")
    assert page.status_code == 200
    text = page.text
    assert "Sat 24 Oct 2026 22:30 (10 min ago)" in text  # last fix, local time (BST)
    assert "within 8 m" in text
    assert "inside (at the last fix)" in text  # the exclusion zone
    assert "Town &lt;b&gt;" in text and "Town <b>" not in text
    assert "In force now (Sat 19:00 to Sun 07:00); away from the address" in text
    assert "intact (no tamper reported)" in text
    entries = audit(api, "status.location.read")
    assert [(e["actor"], e["offender_id"], e["purpose"]) for e in entries] == [
        ("officer-1", "off-1", "status check")
    ]


def test_another_caseload_is_a_404_page(rich: TestClient) -> None:
    for path in ("/console/people/off-2", "/console/people/nobody"):
        page = rich.get(path)
        assert page.status_code == 404 and "Page not found" in page.text
        assert "off-2" not in page.text.split("<main")[1] or path.endswith("nobody")


def test_curfew_grid_in_local_time_across_the_october_dst_change(rich: TestClient) -> None:
    page = rich.get("/console/people/off-1?week=2026-10-21").text
    grid = page.split('id="curfew-grid"')[1].split("</table>")[0]
    rows = {r.split('"')[0]: r for r in grid.split('data-day="')[1:]}
    assert list(rows) == [f"2026-10-{d}" for d in range(19, 26)]
    assert "19:00–07:00 next day (12 h; UTC 18:00–06:00)" in rows["2026-10-23"]
    assert "19:00–07:00 next day (13 h; UTC 18:00–07:00)" in rows["2026-10-24"]
    assert "19:00–07:00 next day (12 h; UTC 19:00–07:00)" in rows["2026-10-25"]
    assert "Clocks go back 1 hour" in rows["2026-10-25"]
    for day, row in rows.items():
        cells = row.count("em-hour em-on")
        assert cells == 12, (day, cells)  # 00–06 and 19–23 local, every day


def _trail(client: TestClient, **fields) -> object:
    token = csrf_of(client.get("/console/people/off-1").text)
    return client.post("/console/people/off-1/trail", data={"csrf_token": token, **fields})


def test_trail_needs_a_purpose_and_at_most_48_hours(rich: TestClient, api: Api) -> None:
    window = {"start": "2026-10-24T22:00", "end": "2026-10-24T23:59"}
    missing = _trail(rich, **window, purpose=" ")
    assert missing.status_code == 422 and "Enter why you are viewing" in missing.text
    long = _trail(rich, start="2026-10-22T00:00", end="2026-10-24T01:00", purpose="CR-1")
    assert long.status_code == 422 and "at most 48 hours" in long.text
    assert audit(api, "trail.read") == []


def test_trail_is_audited_like_the_api_with_gap_colours(rich: TestClient, api: Api) -> None:
    page = _trail(rich, start="2026-10-24T22:00", end="2026-10-24T23:59", purpose="CR-77/2026")
    assert page.status_code == 200
    assert "7 fix(es)" in page.text
    data = json.loads(
        page.text.split('id="person-map"')[1]
        .split('data-map="')[1]
        .split('"')[0]
        .replace("&#34;", '"')
    )
    assert [p["gap"] for p in data["trail"]] == ["short"] * 4 + ["medium", "long", None]
    assert data["trail_alerts"][0]["alert_id"] == "alert-off-1"
    (entry,) = audit(api, "trail.read")
    assert entry["purpose"] == "CR-77/2026" and entry["detail"] == {"fixes": 7}
    assert entry["time_from"] == "2026-10-24T21:00:00Z"  # 22:00 BST
    assert entry["time_to"] == "2026-10-24T22:59:00Z"


def test_export_downloads_and_is_audited(rich: TestClient, api: Api) -> None:
    token = csrf_of(rich.get("/console/people/off-1").text)
    form = {"csrf_token": token, "start": "2026-10-24T22:00", "end": "2026-10-24T23:59"}
    got = rich.post(
        "/console/people/off-1/trail/export", data={**form, "purpose": "CR-9", "format": "csv"}
    )
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert len(rows) == 7 and rows[0]["ts_utc"] == "2026-10-24T21:00:00+00:00"
    geo = rich.post(
        "/console/people/off-1/trail/export", data={**form, "purpose": "CR-9", "format": "geojson"}
    )
    assert len(geo.json()["features"]) == 7
    entries = audit(api, "trail.export")
    assert sorted(e["detail"]["format"] for e in entries) == ["csv", "geojson"]
    assert {e["purpose"] for e in entries} == {"CR-9"}
    other = rich.post(
        "/console/people/off-2/trail/export", data={**form, "purpose": "CR-9", "format": "csv"}
    )
    assert other.status_code == 404


def test_a_person_with_nothing_stored_yet(officer: TestClient, api: Api) -> None:
    from em_service.store import alerts as store_alerts
    from em_service.store import tokens
    from tests.store.factories import alert

    with api.store.write() as s:
        store_alerts.apply_alert(s, alert("alert-new-person", offender_id="off-9"))
        tokens.assign_caseload(s, name="officer-1", offender_ids=["off-9"])
    page = officer.get("/console/people/off-9")
    assert page.status_code == 200
    assert "No conditions stored." in page.text and "never" in page.text


def test_conditions_the_rules_cannot_use_are_reported_not_a_500(
    officer: TestClient, api: Api
) -> None:
    import msgspec

    from em_service.contracts import Conditions
    from em_service.store import offenders
    from tests.store.factories import T0

    bowtie = [[-0.97, 51.45], [-0.96, 51.46], [-0.96, 51.45], [-0.97, 51.46], [-0.97, 51.45]]
    broken = msgspec.convert(
        {
            "offender_id": "off-1",
            "device_ids": ["tag-1"],
            "zones": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [bowtie]},
                    "properties": {"zone_id": "z-bad", "kind": "exclusion"},
                }
            ],
        },
        Conditions,
    )
    with api.store.write() as s:
        offenders.put_conditions(s, conditions=broken, changed_at=T0)
    page = officer.get("/console/people/off-1")
    assert page.status_code == 200
    assert "These conditions cannot be checked or drawn" in page.text


def test_zone_validity_and_schedule_are_listed(officer: TestClient, api: Api) -> None:
    import msgspec

    from em_service.store import offenders
    from tests.console.conftest import rich_conditions
    from tests.store.factories import T0

    c = msgspec.to_builtins(rich_conditions())
    c["zones"][0]["properties"] |= {
        "valid_to": "2026-11-30T12:00:00Z",
        "schedule": [{"days": ["sat", "sun"], "start": "20:00", "end": "02:00"}],
    }
    from em_service.contracts import Conditions

    with api.store.write() as s:
        offenders.put_conditions(s, conditions=msgspec.convert(c, Conditions), changed_at=T0)
    text = officer.get("/console/people/off-1").text
    assert "valid to 30 Nov 2026 12:00" in text
    assert "only sat sun 20:00–02:00 (local time)" in text
