"""PUT conditions (admin): validated as the contract, published keyed by offender, stored."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from em_service import kafka_io
from em_service.contracts import Conditions
from em_service.store import audit, offenders
from tests.api.conftest import Api

pytestmark = pytest.mark.kafka

ZONE = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [-0.97, 51.45]},
    "properties": {"zone_id": "zone-1", "kind": "exclusion", "radius_m": 200.0},
}


def test_conditions_are_published_stored_and_audited(kafka_api: Api) -> None:
    body = {"offender_id": "off-3", "device_ids": ["tag-3"], "zones": [ZONE]}
    mark = asyncio.run(
        kafka_io.end_offsets(
            kafka_api.settings.kafka_bootstrap, kafka_api.settings.topic_conditions
        )
    )
    r = kafka_api.client.put(
        "/api/v1/offenders/off-3/conditions", headers=kafka_api.headers("admin"), json=body
    )
    assert r.status_code == 200, r.text
    assert r.json()["topic"] == kafka_api.settings.topic_conditions
    (record,) = asyncio.run(
        kafka_io.read_since(
            kafka_api.settings.kafka_bootstrap,
            kafka_api.settings.topic_conditions,
            mark or None,
            want=1,
            timeout_s=20,
        )
    )
    published = msgspec.json.decode(record.value, type=Conditions)
    assert record.key == b"off-3" and published.zones[0].properties.zone_id == "zone-1"
    assert published.updated_at is not None  # stamped by the API
    with kafka_api.store.read() as s:
        assert offenders.current_devices(s, "off-3") == ["tag-3"]
        (entry,), _ = audit.list_entries(s, action="conditions.put")
    assert (entry.actor, entry.offender_id) == ("admin-1", "off-3")
    listed = kafka_api.client.get("/api/v1/offenders", headers=kafka_api.headers("admin")).json()
    assert "off-3" in [o["offender_id"] for o in listed["items"]]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"offender_id": "off-3"}, 422, "missing required field `device_ids`"),
        ({"offender_id": "off-4", "device_ids": ["tag-4"]}, 422, "differs from the key"),
        (
            {
                "offender_id": "off-3",
                "device_ids": ["tag-3"],
                "zones": [{**ZONE, "properties": {"zone_id": "z", "kind": "exclusion"}}],
            },
            422,
            "needs radius_m",
        ),
        (
            {"offender_id": "off-3", "device_ids": ["tag-3"], "timezone": "Mars/Olympus"},
            422,
            "unknown timezone",
        ),
        ({"offender_id": "off-3", "device_ids": ["tag-3"], "colour": "red"}, 422, "unknown field"),
        ({"offender_id": "off-3", "device_ids": ["tag-1"]}, 409, "tag-1"),  # worn by off-1
    ],
)
def test_invalid_conditions_are_refused_with_a_message(
    kafka_api: Api, body, status, message
) -> None:
    r = kafka_api.client.put(
        "/api/v1/offenders/off-3/conditions", headers=kafka_api.headers("admin"), json=body
    )
    assert r.status_code == status and message in r.json()["detail"], r.text


def test_not_json_is_422(kafka_api: Api) -> None:
    r = kafka_api.client.put(
        "/api/v1/offenders/off-3/conditions",
        headers={**kafka_api.headers("admin"), "Content-Type": "application/json"},
        content=b"[1, 2",
    )
    assert r.status_code == 422 and "invalid conditions" in r.json()["detail"]
