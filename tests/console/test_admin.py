"""Admin pages in-process: everyone's conditions, enrolment, and the conditions editor (checked
by ``conditions.validate.check``, saved through the API's own path, errors placed inline)."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from em_service import kafka_io
from em_service.console.admin import problem_place
from em_service.store import audit
from em_service.store.models import Offender
from tests.api.conftest import Api, make_api
from tests.console.conftest import csrf_of, sign_in
from tests.database import Database
from tests.store.factories import READING, T0

LON, LAT = READING
D = 0.002
SQUARE = [[LON - D, LAT - D], [LON + D, LAT - D], [LON + D, LAT + D], [LON - D, LAT + D]]
BOWTIE = [[LON - D, LAT - D], [LON + D, LAT + D], [LON + D, LAT - D], [LON - D, LAT + D]]


def doc(ring: list, person: str = "off-1") -> dict:
    return {
        "offender_id": person,
        "device_ids": ["tag-1"] if person == "off-1" else ["tag-9"],
        "zones": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                "properties": {"zone_id": "z-drawn", "kind": "exclusion", "name": "<i>Park</i>"},
            }
        ],
        "curfews": [],
    }


@pytest.fixture
def admin(api: Api) -> TestClient:
    assert sign_in(api.client, api.tokens["admin"]).status_code == 303
    return api.client


def _save(client: TestClient, body: dict | str, action: str = "save", person: str = "off-1"):
    url = f"/console/admin/people/{person}/conditions"
    token = csrf_of(client.get(url).text)
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        url,
        data={"csrf_token": token, "conditions": text, "action": action},
        follow_redirects=False,
    )


def _version(api: Api, person: str = "off-1") -> str | None:
    with api.store.read() as s:
        row = s.get(Offender, person)
        return row.conditions_version if row else None


def test_people_list_and_editor(admin: TestClient) -> None:
    page = admin.get("/console/admin/people")
    assert page.status_code == 200
    assert 'data-person="off-1"' in page.text and 'data-person="off-2"' in page.text
    editor = admin.get("/console/admin/people/off-1/conditions")
    assert editor.status_code == 200 and 'id="draft-map"' in editor.text
    assert '"offender_id": "off-1"' in html.unescape(editor.text)


@pytest.mark.parametrize("role", ["officer", "investigator", "ops"])
def test_other_roles_get_the_403_page(api: Api, role: str) -> None:
    assert sign_in(api.client, api.tokens[role]).status_code == 303
    for path in ("/console/admin/people", "/console/admin/people/off-1/conditions"):
        page = api.client.get(path)
        assert page.status_code == 403 and "for admins" in page.text


def test_self_intersection_is_shown_inline_and_changes_nothing(api: Api, admin: TestClient) -> None:
    before = _version(api)
    r = _save(admin, doc(BOWTIE))
    assert r.status_code == 422
    assert 'id="conditions-error"' in r.text and "Self-intersection near lon" in r.text
    maps = json.loads(
        r.text.split('id="draft-map"', 1)[1]
        .split('data-map="', 1)[1]
        .split('"', 1)[0]
        .replace("&#34;", '"')
    )
    assert maps["problem"]["item"] == "z-drawn" and abs(maps["problem"]["lon"] - LON) < D
    assert "&lt;i&gt;Park&lt;/i&gt;" in r.text and "<i>Park</i>" not in r.text
    assert _version(api) == before
    with api.store.read() as s:
        assert audit.list_entries(s, action="conditions.put")[0] == []


def test_the_error_is_shown_next_to_the_shape_and_linked_from_the_summary(
    admin: TestClient,
) -> None:
    body = doc(SQUARE)
    body["zones"].append(
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[*BOWTIE, BOWTIE[0]]]},
            "properties": {"zone_id": "z-bad", "kind": "inclusion"},
        }
    )
    r = _save(admin, body, action="check")
    assert r.status_code == 422
    assert '<a href="#shape-zones-1">' in r.text
    shape = r.text.split('id="shape-zones-1"')[1].split("</li>")[0]
    assert "govuk-form-group--error" in shape.split(">", 1)[0]
    assert "Self-intersection near lon" in shape and "marked on the draft map at lat" in shape
    ok = r.text.split('id="shape-zones-0"')[1].split("</li>")[0]
    assert "error" not in ok and "&lt;i&gt;Park&lt;/i&gt;" in ok
    missing = _save(admin, {**doc(SQUARE), "curfews": [{"curfew_id": "c1"}]}, action="check")
    assert missing.status_code == 422 and '<a href="#shape-curfews-0">' in missing.text


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("{not json", "conditions contract"),
        (json.dumps(doc(SQUARE, person="off-2")), "differs from the key"),
    ],
)
def test_other_errors_are_the_checks_own(admin: TestClient, body: str, why: str) -> None:
    r = _save(admin, body, action="check")
    assert r.status_code == 422 and why in r.text


def test_check_only_checks(api: Api, admin: TestClient) -> None:
    before = _version(api)
    body = doc(SQUARE) | {
        "curfews": [
            {
                "curfew_id": "c-home",
                "geometry": {"type": "Point", "coordinates": [LON + 0.02, LAT]},
                "radius_m": 60.0,
                "windows": [{"days": ["sat"], "start": "19:00", "end": "07:00"}],
            }
        ]
    }
    api.app.state.console_clock = lambda: T0  # Sat 24 Oct 2026: the clocks go back that night
    r = _save(admin, body, action="check")
    assert r.status_code == 200 and "passes every check" in r.text
    grid = r.text.split('id="draft-grid"', 1)[1].split("</table>", 1)[0]
    assert "19:00–07:00 next day (13 h; UTC 18:00–07:00)" in grid
    assert _version(api) == before


def test_save_without_kafka_is_refused_and_nothing_is_stored(api: Api, admin: TestClient) -> None:
    before = _version(api)
    r = _save(admin, doc(SQUARE))
    assert r.status_code == 503 and "not published" in r.text
    assert _version(api) == before


def test_enrol_opens_an_empty_editor(admin: TestClient) -> None:
    r = admin.get("/console/admin/enrol", params={"offender_id": "off-new"}, follow_redirects=False)
    assert r.headers["location"] == "/console/admin/people/off-new/conditions"
    page = admin.get(r.headers["location"])
    assert "none (not enrolled yet)" in page.text and '"offender_id": "off-new"' in html.unescape(
        page.text
    )
    assert admin.get("/console/admin/enrol", params={"offender_id": "../x"}).status_code == 400


def test_problem_place() -> None:
    p = problem_place(
        "invalid conditions: z1: invalid geometry: Self-intersection near lon -0.965000, lat 51.455001"
    )
    assert p["item"] == "z1" and (p["lon"], p["lat"]) == (-0.965, 51.455001)
    assert "item" not in problem_place("conditions are 2000000 bytes; the limit is 1048576")


@pytest.fixture
def kafka_api(tmp_path: Path, sqlite_db: Database, kafka_bootstrap: str) -> Iterator[Api]:
    yield from make_api(tmp_path, sqlite_db, kafka_bootstrap, console_tile_url="")


@pytest.mark.kafka
def test_save_publishes_stores_and_audits(kafka_api: Api) -> None:
    from em_service.contracts import Conditions

    client, s = kafka_api.client, kafka_api.settings
    assert sign_in(client, kafka_api.tokens["admin"]).status_code == 303
    mark = asyncio.run(kafka_io.end_offsets(s.kafka_bootstrap, s.topic_conditions))
    r = _save(client, doc(SQUARE))
    assert r.status_code == 303, r.text
    version = r.headers["location"].rsplit("saved=", 1)[1]
    assert _version(kafka_api) == version
    (record,) = asyncio.run(
        kafka_io.read_since(
            s.kafka_bootstrap, s.topic_conditions, mark or None, want=1, timeout_s=10
        )
    )
    published = msgspec.json.decode(record.value, type=Conditions)
    assert record.key == b"off-1" and published.zones[0].properties.zone_id == "z-drawn"
    with kafka_api.store.read() as session:
        (entry,) = audit.list_entries(session, action="conditions.put")[0]
    assert entry.actor == "admin-1" and json.loads(entry.detail_json)["version"] == version
    page = client.get(r.headers["location"])
    assert f"version {version}" in page.text
