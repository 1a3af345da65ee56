"""Trails: GeoJSON ([lon, lat]), purpose required and audited with the time range."""

from __future__ import annotations

from datetime import timedelta

import pytest

from em_service.store import audit
from tests.api.conftest import Api
from tests.store.factories import T0

WINDOW = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}


def test_trail_is_geojson_and_its_read_is_audited(api: Api) -> None:
    r = api.client.get(
        "/api/v1/offenders/off-1/trail",
        headers=api.headers("investigator"),
        params={**WINDOW, "purpose": "CR-2026-0042 burglary"},
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["type"] == "FeatureCollection"
    track, *points = doc["features"]
    assert track["geometry"]["type"] == "LineString" and len(track["geometry"]["coordinates"]) == 5
    assert track["properties"]["fixes"] == 5
    assert [p["geometry"]["coordinates"] for p in points] == [[-0.97, 51.45]] * 5  # lon, lat
    assert all(p["properties"]["device_id"] == "tag-1" for p in points)
    with api.store.read() as s:
        (entry,), _ = audit.list_entries(s, action="trail.read")
    assert (entry.actor, entry.role, entry.offender_id, entry.purpose) == (
        "investigator-1",
        "investigator",
        "off-1",
        "CR-2026-0042 burglary",
    )
    assert (entry.time_from, entry.time_to) == (T0, T0 + timedelta(hours=1))


def test_empty_window_has_no_track(api: Api) -> None:
    later = {
        "from": (T0 + timedelta(days=1)).isoformat(),
        "to": (T0 + timedelta(days=2)).isoformat(),
    }
    r = api.client.get(
        "/api/v1/offenders/off-1/trail",
        headers=api.headers("investigator"),
        params={**later, "purpose": "CR-1"},
    )
    assert r.status_code == 200 and r.json()["features"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (WINDOW, "query.purpose: Field required"),
        ({**WINDOW, "purpose": "  "}, "query.purpose"),
        ({"from": WINDOW["to"], "to": WINDOW["from"], "purpose": "CR-1"}, "'to' must be after"),
        (
            {"from": T0.isoformat(), "to": (T0 + timedelta(days=8)).isoformat(), "purpose": "CR-1"},
            "longer than",
        ),
        ({"from": "2026-10-24T21:00:00", "to": WINDOW["to"], "purpose": "CR-1"}, "timezone"),
    ],
)
def test_bad_trail_requests(api: Api, params: dict, message: str) -> None:
    r = api.client.get(
        "/api/v1/offenders/off-1/trail", headers=api.headers("investigator"), params=params
    )
    assert r.status_code == 422 and message in r.json()["detail"], r.text
    with api.store.read() as s:
        assert audit.list_entries(s, action="trail.read")[1] == 0  # nothing read, nothing logged
