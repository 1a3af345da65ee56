"""The scenes API in-process on a real SQLite file: report (published, stored, audited),
read matches (audited with the crime reference), export evidence (audited with its head)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from em_service import kafka_io
from em_service.contracts import Scene
from em_service.scenes import evidence
from em_service.store import audit
from tests.api.conftest import Api, make_api
from tests.database import Database
from tests.store.factories import T0

BODY = {
    "crime_reference": "CR/2026/0001",
    "crime_type": "burglary_dwelling",
    "lat": 51.45,
    "lon": -0.97,
    "window_start": "2026-10-24T22:00:00+01:00",
    "window_end": "2026-10-25T07:00:00+00:00",
}


@pytest.fixture
def api(tmp_path: Path, database: Database) -> Iterator[Api]:
    yield from make_api(tmp_path, database, None)


@pytest.fixture
def kafka_api(tmp_path: Path, database: Database, kafka_bootstrap: str) -> Iterator[Api]:
    yield from make_api(tmp_path, database, kafka_bootstrap)


def _audit(api: Api, action: str) -> list:
    with api.store.read() as s:
        return audit.list_entries(s, action=action)[0]


@pytest.mark.kafka
def test_post_scene_publishes_stores_and_audits(kafka_api: Api) -> None:
    s = kafka_api.settings
    mark = asyncio.run(kafka_io.end_offsets(s.kafka_bootstrap, s.topic_scenes))
    r = kafka_api.client.post(
        "/api/v1/scenes", headers=kafka_api.headers("investigator"), json=BODY
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["topic"] == s.topic_scenes and out["radius_m"] == 100.0
    assert out["window_start"].startswith("2026-10-24T21:00:00")
    (record,) = asyncio.run(
        kafka_io.read_since(s.kafka_bootstrap, s.topic_scenes, mark or None, want=1, timeout_s=10)
    )
    scene = msgspec.json.decode(record.value, type=Scene)
    assert record.key == scene.scene_id.encode() == out["scene_id"].encode()
    assert scene.source == "api" and not scene.low_precision
    (entry,) = _audit(kafka_api, "scene.create")
    assert entry.purpose == "CR/2026/0001" and entry.actor == "investigator-1"
    # A retried POST is the same scene.
    again = kafka_api.client.post(
        "/api/v1/scenes", headers=kafka_api.headers("investigator"), json=BODY
    )
    assert again.json()["scene_id"] == out["scene_id"]
    listed = kafka_api.client.get("/api/v1/scenes", headers=kafka_api.headers("investigator"))
    assert listed.json()["total"] == 2  # the seeded sc-1 and this one


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"radius_m": 5000}, "radius_m"),
        ({"radius_m": 1}, "radius_m"),
        ({"window_end": "2026-10-24T20:00:00Z"}, "before window_start"),
        ({"window_end": "2026-12-30T20:00:00Z"}, "longer than"),
        ({"lat": 10.0, "lon": -40.0}, "outside the area"),
        ({"window_start": "2026-10-24T22:00:00"}, "timezone"),
        ({"crime_type": "arson"}, "crime_type"),
    ],
)
def test_post_scene_refuses_what_it_cannot_match(api: Api, change: dict, why: str) -> None:
    r = api.client.post("/api/v1/scenes", headers=api.headers("investigator"), json=BODY | change)
    assert r.status_code == 422, r.text
    assert why in r.json()["detail"]


def test_post_scene_without_kafka_is_503_and_stores_nothing(api: Api) -> None:
    r = api.client.post("/api/v1/scenes", headers=api.headers("admin"), json=BODY)
    assert r.status_code == 503 and set(r.json()) == {"detail"}
    listed = api.client.get("/api/v1/scenes", headers=api.headers("investigator"))
    assert listed.json()["total"] == 1  # only the seeded one


def test_matches_and_offender_view_are_audited_with_the_crime_reference(api: Api) -> None:
    h = api.headers("investigator")
    r = api.client.get("/api/v1/scenes/sc-1/matches", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {m["offender_id"]: m["confidence"] for m in body["matches"]} == {
        "off-1": "passed_by",
        "off-2": "passed_by",
    }
    assert body["exclusions"] == [] and "at_scene" in body["rule"]
    assert body["scene"]["matches"] == {"passed_by": 2}
    (entry,) = _audit(api, "scene.matches.read")
    assert entry.purpose == "CR-77"
    assert json.loads(entry.detail_json)["offenders"] == ["off-1", "off-2"]

    mine = api.client.get("/api/v1/offenders/off-1/scene-matches", headers=h).json()
    assert [(i["scene"]["scene_id"], i["match"]["confidence"]) for i in mine["items"]] == [
        ("sc-1", "passed_by")
    ]
    (entry,) = _audit(api, "offender.scene_matches.read")
    assert entry.offender_id == "off-1" and entry.purpose == "CR-77"
    assert api.client.get("/api/v1/offenders/off-9/scene-matches", headers=h).status_code == 404


@pytest.mark.parametrize(
    ("fmt", "media"), [("geojson", "application/geo+json"), ("csv", "text/csv")]
)
def test_evidence_export_verifies_and_its_head_is_in_the_audit_log(
    api: Api, fmt: str, media: str
) -> None:
    r = api.client.get(
        "/api/v1/scenes/sc-1/matches/off-1/evidence",
        headers=api.headers("investigator"),
        params={"format": fmt, "purpose": "CR-77 suspect interview"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(media)
    assert "attachment" in r.headers["content-disposition"]
    result = evidence.verify(r.content)
    assert result.ok, result.problems
    (entry,) = _audit(api, "scene.evidence.export")
    detail = json.loads(entry.detail_json)
    assert detail["head"] == result.head == r.headers["x-evidence-head"]
    assert entry.purpose == "CR-77 suspect interview" and entry.offender_id == "off-1"
    assert detail["crime_reference"] == "CR-77"
    assert entry.time_from < T0 < entry.time_to
    edited = bytearray(r.content)
    edited[len(edited) // 2] ^= 0x01
    assert not evidence.verify(bytes(edited)).ok
